/*
 * log.h: key=value log lines (brubeck style), one per event:
 *   ts=2026-11-24T01:02:03.456Z level=warn event=redis_error err='...'
 * The macros test the level before any formatting happens. The file given by
 * hn_log_open is reopened by hn_log_reopen (call it on SIGHUP, from the
 * event loop, not from the signal handler). Thread-safe: each line is one
 * write(2).
 */
#ifndef HN_LOG_H
#define HN_LOG_H

#include "common/hn.h"

typedef enum { HN_LOG_DEBUG = 0, HN_LOG_INFO, HN_LOG_WARN, HN_LOG_ERROR } hn_log_level;

extern int hn_log_min;

int  hn_log_setup(const char *level, const char *path);   /* HN_OK / HN_ERR */
int  hn_log_reopen(void);
void hn_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hn_log(level, ...) \
    do { if ((level) >= hn_log_min) hn_log_write((level), __VA_ARGS__); } while (0)
#define hn_debug(...) hn_log(HN_LOG_DEBUG, __VA_ARGS__)
#define hn_info(...)  hn_log(HN_LOG_INFO, __VA_ARGS__)
#define hn_warn(...)  hn_log(HN_LOG_WARN, __VA_ARGS__)
#define hn_error(...) hn_log(HN_LOG_ERROR, __VA_ARGS__)

#endif
