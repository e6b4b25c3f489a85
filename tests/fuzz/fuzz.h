/*
 * fuzz - what every fuzz target shares: the libFuzzer entry point each one
 * defines, and SG_FUZZ_CHECK, which turns a violated property into abort()
 * so libFuzzer (or the smoke driver) reports it with the input that did it.
 */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SG_FUZZ_CHECK(cond)                                                               \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/*
 * An exact-size heap copy of the input, so that reading one byte past it
 * is an ASan report (libFuzzer's own buffer may have slack). NULL only
 * when there is no memory.
 */
static inline uint8_t *sg_fuzz_exact_copy(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    if (p != NULL && size > 0)
        memcpy(p, data, size);
    return p;
}

#endif
