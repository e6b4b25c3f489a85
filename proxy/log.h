/*
 * log - the proxy's one logger: a line per event on stderr, prefixed with an
 * ISO 8601 UTC timestamp and the level. A single global level (set from
 * log.level in the config) filters everything; any thread may log, and
 * each line is written by a single stdio call so lines never interleave.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

enum sg_log_level { SG_LOG_ERROR = 0, SG_LOG_WARN = 1, SG_LOG_INFO = 2, SG_LOG_DEBUG = 3 };

/* Set / read the global level; out-of-range values are clamped. */
void sg_log_set_level(int level);
int sg_log_get_level(void);

/* Non-zero when a message at level would be written. */
int sg_log_enabled(int level);

/* "error" / "warn" / "info" / "debug" to a level, or -1 when unknown. */
int sg_log_level_from_name(const char *name);
/* The inverse; "?" for an out-of-range level. */
const char *sg_log_level_name(int level);

/*
 * Write one line at level if the global level lets it through. The message
 * is truncated at 2 KiB; a trailing newline in fmt is not needed.
 */
void sg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The macros skip argument evaluation when the level is filtered out. */
#define sg_log_at_(level, ...)            \
    do {                                  \
        if (sg_log_enabled(level))        \
            sg_log((level), __VA_ARGS__); \
    } while (0)
#define sg_log_error(...) sg_log_at_(SG_LOG_ERROR, __VA_ARGS__)
#define sg_log_warn(...) sg_log_at_(SG_LOG_WARN, __VA_ARGS__)
#define sg_log_info(...) sg_log_at_(SG_LOG_INFO, __VA_ARGS__)
#define sg_log_debug(...) sg_log_at_(SG_LOG_DEBUG, __VA_ARGS__)

#endif
