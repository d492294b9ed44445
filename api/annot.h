/*
 * annot.h: notes, tags and bans as the live rows show them (docs/RULES.md
 * §5): the checks the notes routes share (tag, email, characters), and a
 * per-widget cache of the widget's annotated subjects for the live list and
 * session details.
 *
 * The cache: one immutable table per widget (subject → tags, notes count,
 * ban), loaded from PostgreSQL, shared by the workers (reference counted),
 * reloaded when hn:annot:version moved (every change through any api bumps
 * it; read at most every 100 ms per widget, at once after a change through
 * this process) or after HN_ANNOT_TTL_MS. A failed load (PostgreSQL away)
 * is not tried again for 5 s: the rows then carry what was loaded before,
 * or no annotations. A widget without annotations has an empty
 * table: its live rows get the constant members and no lookup.
 */
#ifndef HN_API_ANNOT_H
#define HN_API_ANNOT_H

#include "api/api.h"

#define HN_ANNOT_TTL_MS 30000

/* [a-z0-9][a-z0-9_-]{0,31} */
bool   hn_tag_ok(const char *t, size_t len);
/* Lower-cases s in place; true when it looks like an address: 3..254
 * bytes of valid UTF-8, one '@' not at either end, no space or control. */
bool   hn_email_norm(char *s);
/* characters (code points) of valid UTF-8 */
size_t hn_chars(const char *s, size_t len);

/* routes_notes.c: INCR hn:annot:version (best effort); hn:bans:{w} rewritten
 * from PostgreSQL (as the connection's transaction sees it) and the
 * collectors told (HN_OK, or answered into rs). */
void   hn_annot_bump(hn_api_worker *w, int64_t widget_id);
int    hn_bans_sync(hn_api_worker *w, hn_api_resp *rs, int64_t widget_id);
/* routes_notes.c, on connections of the caller's own (the rules engine's
 * thread): when hn:bans:version is gone (a Redis that lost its data) and
 * visitor_bans has rows, every widget's hn:bans:{w} written again and the
 * collectors told. HN_OK (nothing to do, or done); HN_ERR and err on a
 * failure. */
int    hn_bans_resync(PGconn *pg, hn_rcl *rc, char *err, size_t cap);

/* Every annotated subject of widget $1: subject_kind, subject, tags (JSON
 * array), notes (count), block_tracking (NULL: not banned). */
extern const char hn_annot_sql[];

typedef struct hn_annot hn_annot;
typedef struct hn_annot_ent hn_annot_ent;

/* The widget's table, current within the rules above; NULL when neither
 * it nor PostgreSQL is reachable (then rows carry no annotations). Release
 * it with hn_annot_release. */
hn_annot *hn_annot_get(hn_api_worker *w, int64_t widget_id);
void      hn_annot_release(hn_annot *a);
/* The next hn_annot_get of the widget reads hn:annot:version again (after a
 * change made by this process). */
void      hn_annot_invalidate(int64_t widget_id);
bool      hn_annot_empty(const hn_annot *a);
/* true when some subject of the widget has tag */
bool      hn_annot_any_tag(const hn_annot *a, const char *tag);

/* What one session matches: by its visitor id and by its email. */
typedef struct hn_annot_view {
    const hn_annot_ent *v, *e;
} hn_annot_view;

hn_annot_view hn_annot_find(const hn_annot *a, const char *visitor, const char *email);
bool hn_annot_has_tag(hn_annot_view m, const char *tag);
bool hn_annot_banned(hn_annot_view m);
/* "tags": […], "notes": n, "banned": b (the union of both subjects) */
void hn_annot_put(hn_buf *b, bool *first, hn_annot_view m);

#endif
