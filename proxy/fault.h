/*
 * fault - fault injection points for tests. Only the slotgate-fault binary
 * (CMake target, built with SG_FAULT_INJECTION) has them: there, the
 * environment variable SG_FAULT names the failures to inject, e.g.
 * SG_FAULT=client_ssl_new,redis_ssl_new,format. In the real slotgate every
 * point is the constant 0 and compiles away.
 */
#ifndef SG_FAULT_H
#define SG_FAULT_H

#ifdef SG_FAULT_INJECTION
#include <stdlib.h>
#include <string.h>

static inline int sg_fault(const char *name)
{
    const char *f = getenv("SG_FAULT");
    return f != NULL && strstr(f, name) != NULL;
}
#else
static inline int sg_fault(const char *name)
{
    (void)name;
    return 0;
}
#endif

#define sg_fault_client_ssl_new() sg_fault("client_ssl_new")
#define sg_fault_ssl_new() sg_fault("redis_ssl_new")
#define sg_fault_format() sg_fault("format")

#endif
