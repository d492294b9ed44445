/*
 * sdnotify.h: systemd's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram of "KEY=VALUE\n…" to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). With
 * Type=notify, systemd starts the units ordered after a daemon only once it
 * has sent READY=1, and knows a stop from STOPPING=1.
 *
 * Both daemons send READY=1 the first time their /readyz would answer 200
 * (checked every 100 ms until then), STATUS= with it, and STOPPING=1 when a
 * stop begins. Nothing is sent, and nothing costs, when NOTIFY_SOCKET is
 * unset.
 */
#ifndef HN_SDNOTIFY_H
#define HN_SDNOTIFY_H

#include "common/hn.h"

/* Whether the process was started with a notification socket. */
bool hn_sd_enabled(void);
/* Sends state (e.g. "READY=1\nSTATUS=ready"); HN_OK when sent or when
 * there is no socket, HN_ERR (errno set) when the send failed. */
int hn_sd_notify(const char *state);
/* READY=1 with STATUS=why; a failed send is logged (the caller tries again
 * at its next check). HN_OK when sent (or no socket). */
int hn_sd_ready(const char *why);

#endif
