/*
 * driver - a main() for the fuzz targets when there is no libFuzzer (gcc,
 * the normal/ASan/TSan builds of the suite). It replays every seed it is
 * given, then runs a bounded number of deterministic mutations of them (bit
 * flips, byte sets, insertions, deletions, truncations, duplications, splices
 * across seeds), so ctest exercises every target quickly and reproducibly.
 *
 *   fuzz_xxx [-n ITERATIONS] [-s SEED] [-m MAXLEN] PATH...
 *
 * A directory is read as a corpus (its regular files, in name order); a file
 * is replayed alone, which is how a crash file is reproduced. Before dying on
 * a crash or a sanitizer report, the input at fault is written to
 * ./crash-<target>-<iteration> so it can be replayed or minimised.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

/* Present in sanitizer runtimes only; weak so plain builds link without them. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

struct seed {
    uint8_t *data;
    size_t len;
};

static struct seed *seeds;
static size_t n_seeds, cap_seeds;

/* The input being run, for the crash handlers. */
static const uint8_t *cur_data;
static size_t cur_len;
static const char *prog = "fuzz";
static unsigned long cur_iter;
static char crash_path[256];

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: fixed seed in, same sequence out, on every platform. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rng_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next() % n);
}

/* Write the current input to crash_path, with async-signal-safe calls only. */
static void save_current(void)
{
    if (cur_data == NULL)
        return;
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < cur_len) {
        ssize_t n = write(fd, cur_data + off, cur_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    static const char msg[] = "driver: input at fault written to ";
    if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, crash_path, strlen(crash_path)) < 0 ||
        write(2, "\n", 1) < 0)
        return;
}

static void on_fatal_signal(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void add_seed(const uint8_t *data, size_t len)
{
    if (n_seeds == cap_seeds) {
        cap_seeds = cap_seeds ? 2 * cap_seeds : 64;
        seeds = realloc(seeds, cap_seeds * sizeof(*seeds));
        if (seeds == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        perror("malloc");
        exit(2);
    }
    if (len > 0)
        memcpy(copy, data, len);
    seeds[n_seeds].data = copy;
    seeds[n_seeds].len = len;
    n_seeds++;
}

static int read_file(const char *path, size_t max_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(max_len + 1);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    size_t len = fread(buf, 1, max_len + 1, f);
    fclose(f);
    if (len > max_len) {
        fprintf(stderr, "%s: %s: longer than %zu bytes, cut\n", prog, path, max_len);
        len = max_len;
    }
    add_seed(buf, len);
    free(buf);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_dir(const char *dir, size_t max_len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL)
                exit(2);
            names = grown;
        }
        size_t l = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (names[n] == NULL)
            exit(2);
        snprintf(names[n], l, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && read_file(names[i], max_len) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Run one input from an exact-size heap copy, as libFuzzer does. */
static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        exit(2);
    if (len > 0)
        memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    cur_data = NULL;
    cur_len = 0;
    free(copy);
}

/* Bytes that tend to matter to parsers: lengths, limits, the protocols' markers. */
static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x0d, 0x10, 0x12,
                                      0x1a, 0x20, 0x22, 0x2a, 0x24, 0x2b, 0x2d, 0x3a, 0x30,
                                      0x39, 0x7f, 0x80, 0xfe, 0xff, 'S',  'G',  '{',  '}'};

/*
 * Apply one mutation to buf (len bytes, capacity cap); returns the new length.
 * Kept simple and cheap: the coverage-guided work is libFuzzer's job.
 */
static size_t mutate_once(uint8_t *buf, size_t len, size_t cap)
{
    switch (rng_below(8)) {
    case 0: /* flip a bit */
        if (len > 0)
            buf[rng_below(len)] ^= (uint8_t)(1u << rng_below(8));
        return len;
    case 1: /* set a byte to something interesting or random */
        if (len > 0)
            buf[rng_below(len)] =
                rng_below(2) ? interesting[rng_below(sizeof(interesting))] : (uint8_t)rng_next();
        return len;
    case 2: { /* insert a few bytes */
        size_t n = 1 + rng_below(4);
        if (len + n > cap)
            return len;
        size_t at = rng_below(len + 1);
        memmove(buf + at + n, buf + at, len - at);
        for (size_t i = 0; i < n; i++)
            buf[at + i] =
                rng_below(2) ? interesting[rng_below(sizeof(interesting))] : (uint8_t)rng_next();
        return len + n;
    }
    case 3: { /* delete a range */
        if (len == 0)
            return len;
        size_t at = rng_below(len);
        size_t n = 1 + rng_below(len - at < 16 ? len - at : 16);
        memmove(buf + at, buf + at + n, len - at - n);
        return len - n;
    }
    case 4: /* truncate */
        return rng_below(len + 1);
    case 5: { /* duplicate a short range somewhere else */
        uint8_t tmp[64];
        if (len == 0)
            return len;
        size_t at = rng_below(len);
        size_t n = 1 + rng_below(len - at < sizeof(tmp) ? len - at : sizeof(tmp));
        if (len + n > cap)
            return len;
        memcpy(tmp, buf + at, n);
        size_t to = rng_below(len + 1);
        memmove(buf + to + n, buf + to, len - to);
        memcpy(buf + to, tmp, n);
        return len + n;
    }
    case 6: { /* splice: a piece of another seed in place of the tail */
        const struct seed *o = &seeds[rng_below(n_seeds)];
        if (o->len == 0)
            return len;
        size_t from = rng_below(o->len);
        size_t at = rng_below(len + 1);
        size_t n = o->len - from;
        if (at + n > cap)
            n = cap - at;
        memcpy(buf + at, o->data + from, n);
        return at + n;
    }
    default: { /* insert a piece of another seed */
        const struct seed *o = &seeds[rng_below(n_seeds)];
        if (o->len == 0)
            return len;
        size_t from = rng_below(o->len);
        size_t n = 1 + rng_below(o->len - from);
        if (len + n > cap)
            return len;
        size_t at = rng_below(len + 1);
        memmove(buf + at + n, buf + at, len - at);
        memcpy(buf + at, o->data + from, n);
        return len + n;
    }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: %s [-n ITERATIONS] [-s SEED] [-m MAXLEN] PATH...\n", prog);
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long iterations = 20000;
    unsigned long long seed = 0x5107647e;
    size_t max_len = 64 * 1024;
    int opt;

    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
    while ((opt = getopt(argc, argv, "n:s:m:")) != -1) {
        switch (opt) {
        case 'n':
            iterations = strtoul(optarg, NULL, 0);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'm':
            max_len = strtoul(optarg, NULL, 0);
            break;
        default:
            usage();
        }
    }
    if (optind >= argc || max_len == 0)
        usage();

    int only_files = 1;
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, argv[i], strerror(errno));
            return 2;
        }
        int rc = S_ISDIR(st.st_mode) ? read_dir(argv[i], max_len) : read_file(argv[i], max_len);
        if (rc != 0)
            return 2;
        if (S_ISDIR(st.st_mode))
            only_files = 0;
    }
    if (n_seeds == 0) {
        fprintf(stderr, "%s: no seeds\n", prog);
        return 2;
    }

    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    if (__sanitizer_set_death_callback != NULL)
        __sanitizer_set_death_callback(save_current);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n_seeds; i++) {
        snprintf(crash_path, sizeof(crash_path), "crash-%s-seed%zu", prog, i);
        run_one(seeds[i].data, seeds[i].len);
    }
    if (only_files)
        iterations = 0; /* replaying given files: nothing else */

    rng_state = seed ? seed : 1;
    uint8_t *buf = malloc(max_len);
    if (buf == NULL)
        return 2;
    for (cur_iter = 0; cur_iter < iterations; cur_iter++) {
        const struct seed *s = &seeds[rng_below(n_seeds)];
        size_t len = s->len < max_len ? s->len : max_len;
        memcpy(buf, s->data, len);
        size_t rounds = 1 + rng_below(4);
        for (size_t r = 0; r < rounds; r++)
            len = mutate_once(buf, len, max_len);
        snprintf(crash_path, sizeof(crash_path), "crash-%s-%lu", prog, cur_iter);
        run_one(buf, len);
    }
    free(buf);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %zu seeds replayed, %lu mutations (seed %#llx) in %.2f s: ok\n", prog, n_seeds,
           iterations, seed, secs);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    free(seeds);
    return 0;
}
