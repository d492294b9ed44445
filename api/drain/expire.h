/*
 * expire.h: unanswered chat invitations expire (docs/CHAT.md §5). Worker 0
 * of each api process's drain runs it between batches, over the worker's
 * own PostgreSQL and Redis connections (expire.c says how it stays exactly
 * once however many api processes run).
 */
#ifndef HN_DRAIN_EXPIRE_H
#define HN_DRAIN_EXPIRE_H

#include "api/drain/worker.h"

/* Conversations expired per look, at most: a backlog goes over the next
 * cycles, one look each. */
#define HN_DRAIN_EXPIRE_BATCH 200

/* How often the drain looks for invitations older than ttl_s: ttl/10,
 * between 0.5 and 10 s (0: never, ttl_s 0 turns expiry off). */
uint64_t hn_drain_expire_every_ms(int64_t ttl_s);

/* When the time has come (d->last_expire_ms): expires up to
 * HN_DRAIN_EXPIRE_BATCH invitations older than cfg->chat_invite_ttl_s in
 * one transaction, with their session hashes and `expire` entries on
 * hn:chat:{w}. Returns the conversations expired, or -1 when PostgreSQL or
 * Redis failed (logged; nothing is kept, the next look tries again). Needs
 * d->pg and d->rc connected. */
int hn_drain_expire(hn_drain_worker *d);

#endif
