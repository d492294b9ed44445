/* sdnotify.c: see sdnotify.h. */
#include "common/sdnotify.h"

#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

bool hn_sd_enabled(void) {
    const char *p = getenv("NOTIFY_SOCKET");
    return p && (p[0] == '/' || p[0] == '@');
}

int hn_sd_notify(const char *state) {
    const char *p = getenv("NOTIFY_SOCKET");
    if (p == NULL || (p[0] != '/' && p[0] != '@')) return HN_OK;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(p);
    if (n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return HN_ERR;
    }
    memcpy(sa.sun_path, p, n);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';   /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return HN_ERR;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)strlen(state) ? HN_OK : HN_ERR;
}

int hn_sd_ready(const char *why) {
    char msg[256];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", why);
    if (hn_sd_notify(msg) == HN_OK) return HN_OK;
    hn_warn("event=sd_notify_failed err='%s'", strerror(errno));
    return HN_ERR;
}
