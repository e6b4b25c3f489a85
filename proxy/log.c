/*
 * log - stderr logger. The level is a C11 atomic so a reload can change it
 * while workers log; each line is formatted into a stack buffer first and
 * then handed to one fprintf(), which POSIX stdio locks per call, so
 * concurrent lines come out whole.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SG_LOG_LINE_MAX 2048

static atomic_int sg_log_level_current = SG_LOG_INFO;

static const char *const sg_log_names[] = {"error", "warn", "info", "debug"};
static const char *const sg_log_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void sg_log_set_level(int level)
{
    if (level < SG_LOG_ERROR)
        level = SG_LOG_ERROR;
    if (level > SG_LOG_DEBUG)
        level = SG_LOG_DEBUG;
    atomic_store_explicit(&sg_log_level_current, level, memory_order_relaxed);
}

int sg_log_get_level(void)
{
    return atomic_load_explicit(&sg_log_level_current, memory_order_relaxed);
}

int sg_log_enabled(int level)
{
    return level <= sg_log_get_level();
}

int sg_log_level_from_name(const char *name)
{
    for (int i = SG_LOG_ERROR; i <= SG_LOG_DEBUG; i++)
        if (strcasecmp(name, sg_log_names[i]) == 0)
            return i;
    return -1;
}

const char *sg_log_level_name(int level)
{
    if (level < SG_LOG_ERROR || level > SG_LOG_DEBUG)
        return "?";
    return sg_log_names[level];
}

/*
 * Formats the message, drops one trailing newline if the caller supplied
 * it, and writes "2024-01-02T03:04:05.678Z LEVEL message\n" in one call.
 * Messages longer than the buffer are cut, never split across lines.
 */
void sg_log(int level, const char *fmt, ...)
{
    if (!sg_log_enabled(level))
        return;
    if (level < SG_LOG_ERROR)
        level = SG_LOG_ERROR;
    if (level > SG_LOG_DEBUG)
        level = SG_LOG_DEBUG;

    char msg[SG_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
    } else {
        size_t len = strlen(msg);
        if (len > 0 && msg[len - 1] == '\n')
            msg[len - 1] = '\0';
    }

    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000L, sg_log_tags[level], msg);
}
