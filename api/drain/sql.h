/*
 * sql.h: the statements of the drain's transaction and maintenance (pg.c
 * runs them; sql.c holds their text).
 *
 *   setup           per connection: session settings and the temp tables
 *                   (hn_agg, hn_hourly, hn_dimsb, hn_ids, hn_sess)
 *   copy_*          COPY … FROM STDIN of batch.c's texts
 *   existing        which of a redelivered batch's ids (hn_ids) are written
 *   erase_lock, erasures  the erasure lock taken shared, then the tombstones
 *                   after seq $1 (sql/009_erasures.sql)
 *   sessions        upsert sessions from hn_agg, RETURNING into hn_sess
 *   rollup, dims    hourly rollups, visitor sets, daily breakdowns
 *   referrer_moved  sessions whose first page view (and referrer) moved
 *   reject          one row of drain_rejects ($1 stream, $2 entry, $3 reason, $4 raw)
 *   sweep           sessions without `end`, past the live window ($1 seconds)
 *   partitions      hn_ensure_partitions($1, $2 days since the epoch)
 *   retention       hn_apply_retention() + hn_apply_chat_retention()
 *                   + hn_apply_concurrency_retention() + hn_apply_erasure_retention()
 *   copy_chat, chat the chat records (hn_chat) → conversations and messages,
 *                   in the order of the NULL-terminated list (sql_chat.c)
 */
#ifndef HN_DRAIN_SQL_H
#define HN_DRAIN_SQL_H

extern const char hn_drain_sql_setup[];
extern const char hn_drain_sql_copy_pv[];
extern const char hn_drain_sql_copy_ev[];
extern const char hn_drain_sql_copy_agg[];
extern const char hn_drain_sql_copy_hourly[];
extern const char hn_drain_sql_copy_dims[];
extern const char hn_drain_sql_copy_ids[];
extern const char hn_drain_sql_existing[];
extern const char hn_drain_sql_erasures[];
extern const char hn_drain_sql_erase_lock[];
extern const char hn_drain_sql_sessions[];
extern const char hn_drain_sql_rollup[];
extern const char hn_drain_sql_dims[];
extern const char hn_drain_sql_referrer_moved[];
extern const char hn_drain_sql_reject[];
extern const char hn_drain_sql_sweep[];
extern const char hn_drain_sql_partitions[];
extern const char hn_drain_sql_retention[];
extern const char hn_drain_sql_copy_chat[];
extern const char *const hn_drain_sql_chat[];

#endif
