/*
 * itest_no_leftovers - runs after every other integration test (ctest
 * fixture cleanup) and fails if any redis-server or slotgate process whose
 * command line names the integration scratch directory is still running.
 * Zombies do not count: their command line is empty and they hold no port.
 * A process that is found is reported and then killed, so that one failure
 * does not leak into the next run.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SG_ITEST_SCRATCH
#error "SG_ITEST_SCRATCH must be defined"
#endif

/* A redis-server (first word), or slotgate (first word, or run by a
 * wrapper such as valgrind: "... slotgate --config ..."). */
static int is_ours_argv0(const char *cmdline)
{
    if (strstr(cmdline, "slotgate --config "))
        return 1;
    size_t n = strcspn(cmdline, " ");
    const char *base = cmdline;
    for (size_t i = 0; i < n; i++)
        if (cmdline[i] == '/')
            base = cmdline + i + 1;
    size_t bl = n - (size_t)(base - cmdline);
    return (bl == 12 && strncmp(base, "redis-server", 12) == 0) ||
           (bl == 8 && strncmp(base, "slotgate", 8) == 0);
}

int main(void)
{
    const char *dir = SG_ITEST_SCRATCH "/";
    DIR *d = opendir("/proc");
    if (!d) {
        perror("opendir /proc");
        return 1;
    }
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        char path[64], buf[8192];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (buf[i] == 0)
                buf[i] = ' ';
        buf[len] = 0;
        if (strstr(buf, dir) && is_ours_argv0(buf)) {
            fprintf(stderr, "leftover process %ld: %s\n", pid, buf);
            found++;
            kill((pid_t)pid, SIGCONT);
            kill((pid_t)pid, SIGKILL);
        }
    }
    closedir(d);
    if (found) {
        fprintf(stderr, "FAIL: %d process(es) from %s still running\n", found, dir);
        return 1;
    }
    printf("no redis-server or slotgate left under %s\n", dir);
    return 0;
}
