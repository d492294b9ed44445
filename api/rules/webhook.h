/*
 * webhook.h: the webhook sender of an api process (docs/RULES.md §4).
 *
 * The unit of work is a row of webhook_deliveries (sql/007_rules.sql), the
 * outbox that rules and lifecycle events write in the transaction that
 * decided them (and NOTIFY herenow_webhooks). One thread per api process
 * takes due rows (FOR UPDATE SKIP LOCKED, a lease in locked_until), POSTs
 * them signed on its own event base, at most HERENOW_WEBHOOK_SENDERS at a
 * time, and records each outcome: delivered, retried later with backoff,
 * or failed (and the rule disabled after HERENOW_WEBHOOK_DISABLE_AFTER
 * failed deliveries in a row). Delivery is at least once: a receiver
 * dedupes by Herenow-Delivery.
 */
#ifndef HN_WEBHOOK_H
#define HN_WEBHOOK_H

#include "common/buf.h"
#include "common/config.h"

typedef struct hn_webhooks hn_webhooks;

/* Starts the sender thread; NULL when HERENOW_WEBHOOKS=off. cfg must
 * outlive it. */
hn_webhooks *hn_webhooks_start(const hn_config *cfg);
/* Stops and frees it (NULL is fine). Deliveries in flight are left to
 * their lease: another sender (or this one's next start) retries them. */
void hn_webhooks_stop(hn_webhooks *wh);

/* The senders' metrics (Prometheus text), summed over the process. */
void hn_webhooks_metrics(hn_buf *out);

/* Pure parts, for the unit tests. */

/* out (65 bytes): hex HMAC-SHA256(secret, ts + "." + body). */
void    hn_webhook_sign(const char *secret, const char *ts, const char *body, size_t len,
                        char out[65]);
/* The wait before attempt+1: base × 2^(attempt−1) × (0.8 + 0.4 × r), r in
 * [0, 1); capped at one day. */
int64_t hn_webhook_backoff_ms(int64_t base, int attempt, double r);

#endif
