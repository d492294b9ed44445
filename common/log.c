/* log.c: see log.h. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hn_log_min = HN_LOG_INFO;

static int   log_fd = 2;
static char *log_path;

static const char *names[] = {"debug", "info", "warn", "error"};

int hn_log_setup(const char *level, const char *path) {
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, names[i]) == 0) hn_log_min = i;
    free(log_path);
    log_path = (path && *path) ? hn_xstrdup(path) : NULL;
    return hn_log_reopen();
}

int hn_log_reopen(void) {
    if (log_path == NULL) return HN_OK;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        hn_error("event=log_open_failed path='%s' errno=%d err='%s'", log_path, errno,
                 strerror(errno));
        return HN_ERR;
    }
    int old = log_fd;
    log_fd = fd;
    if (old > 2) close(old);
    return HN_OK;
}

void hn_log_write(int level, const char *fmt, ...) {
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(log_fd, line, len);
    (void)w;
}
