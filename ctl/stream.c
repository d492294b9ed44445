/*
 * stream.c: herenowctl stream dump — the records in a stream shard (proto/keys.h) as JSON
 * lines, for operators looking at what the collector wrote (and for tests);
 * stream key — a shard's key name (for scripts).
 * Read-only: it uses XRANGE, never the consumer group.
 */
#include "ctl/ctl.h"

#include "common/buf.h"
#include "common/json.h"
#include "proto/keys.h"
#include "proto/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hn_ctl_stream_usage(FILE *f) {
    fprintf(f, "stream dump [--shard N] [--limit N]\n"
               "    print the records of shard N (default: every shard up to\n"
               "    HERENOW_STREAM_SHARDS) as one JSON object per line, oldest first\n"
               "stream count [--shard N]\n"
               "    print the number of records (not entries: an entry holds a batch)\n"
               "stream key [--shard N]\n"
               "    print the Redis key of shard N (default 0) for HERENOW_STREAM_SHARDS\n");
}

typedef struct dump_ctx {
    hn_buf   out;
    bool     print;
    uint64_t n, limit;
} dump_ctx;

static void field_str(hn_buf *b, bool *first, const char *k, hn_str v) {
    if (v.len == 0) return;
    hn_json_key(b, first, k);
    hn_json_str(b, v.p, v.len);
}

static void field_u64(hn_buf *b, bool *first, const char *k, uint64_t v) {
    hn_json_key(b, first, k);
    hn_buf_printf(b, "%llu", (unsigned long long)v);
}

static int on_record(const hn_record *r, void *arg) {
    dump_ctx *d = arg;
    if (d->limit && d->n >= d->limit) return HN_OK;
    d->n++;
    if (!d->print) return HN_OK;
    hn_buf *b = &d->out;
    bool first = true;
    char id[37];
    hn_event_id_format(r->event_id, id);
    hn_buf_reset(b);
    hn_buf_append(b, "{", 1);
    hn_json_key(b, &first, "event_id");
    hn_json_str(b, id, 36);
    field_u64(b, &first, "recv_ts", r->recv_ts);
    field_u64(b, &first, "widget", r->widget_id);
    field_u64(b, &first, "transport", r->transport);
    field_str(b, &first, "t", r->b.t);
    field_str(b, &first, "k", r->b.k);
    field_str(b, &first, "s", r->b.s);
    field_u64(b, &first, "q", r->b.q);
    field_str(b, &first, "u", r->b.u);
    field_str(b, &first, "ti", r->b.ti);
    field_str(b, &first, "r", r->b.r);
    field_str(b, &first, "n", r->b.n);
    if (r->b.fields & HN_F_E) field_u64(b, &first, "e", r->b.e);
    field_str(b, &first, "l", r->b.l);
    field_str(b, &first, "nm", r->b.nm);
    field_str(b, &first, "em", r->b.em);
    field_str(b, &first, "ip", r->ip);
    field_str(b, &first, "ua", r->ua);
    field_str(b, &first, "vh", r->visitor);
    if (r->b.nprops) {
        hn_json_key(b, &first, "d");
        hn_props_json(b, r->b.props, r->b.nprops);
    }
    hn_buf_append(b, "}\n", 2);
    fwrite(b->p, 1, b->len, stdout);
    return HN_OK;
}

static int dump_shard(hn_rcl *rc, hn_decoder *dec, uint64_t shard, unsigned nshards,
                      dump_ctx *d) {
    char start[64] = "-", key[HN_KEY_CAP];
    hn_key_stream(key, (unsigned)shard, nshards);
    for (;;) {
        redisReply *r = hn_rcl_command(rc, "XRANGE %s %s + COUNT 500", key, start);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            hn_ctl_errorf("stream: XRANGE failed: %s",
                          r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : hn_rcl_errstr(rc));
            if (r) freeReplyObject(r);
            return HN_ERR;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
            redisReply *fv = e->element[1];
            for (size_t j = 0; j + 1 < fv->elements; j += 2) {
                if (strcmp(fv->element[j]->str, HN_STREAM_FIELD) != 0) continue;
                char err[256];
                if (hn_record_decode_batch(dec, fv->element[j + 1]->str, fv->element[j + 1]->len,
                                           on_record, d, err, sizeof(err)) != HN_OK)
                    hn_ctl_errorf("stream: entry %s: %s", e->element[0]->str, err);
            }
            snprintf(start, sizeof(start), "(%s", e->element[0]->str);
        }
        freeReplyObject(r);
        if (n < 500) return HN_OK;
    }
}

int hn_ctl_stream(const hn_config *cfg, int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "dump") != 0 && strcmp(argv[1], "count") != 0 &&
                     strcmp(argv[1], "key") != 0)) {
        hn_ctl_errorf("stream: want 'dump', 'count' or 'key' (see --help)");
        return HN_CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "key") == 0) {
        /* no Redis: the name is a pure function of the shard and N */
        uint64_t n = 0;
        hn_ctl_flag f[] = {{"shard", HN_CTL_U64, &n, 0, 1023, false}};
        if (hn_ctl_parse_flags("stream key", argc - 2, argv + 2, f, 1) != HN_OK) return HN_CTL_EXIT_USAGE;
        if (n >= (uint64_t)cfg->stream_shards) {
            hn_ctl_errorf("stream key: shard %llu, but HERENOW_STREAM_SHARDS is %lld",
                          (unsigned long long)n, (long long)cfg->stream_shards);
            return HN_CTL_EXIT_USAGE;
        }
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)n, (unsigned)cfg->stream_shards);
        printf("%s\n", key);
        return HN_CTL_EXIT_OK;
    }
    bool dump = strcmp(argv[1], "dump") == 0;
    uint64_t shard = 0, limit = 0;
    hn_ctl_flag flags[] = {
        {"shard", HN_CTL_U64, &shard, 0, 1023, false},
        {"limit", HN_CTL_U64, &limit, 1, UINT64_MAX, false},
    };
    if (hn_ctl_parse_flags(dump ? "stream dump" : "stream count", argc - 2, argv + 2, flags,
                           dump ? 2 : 1) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    hn_rcl *rc = hn_ctl_redis_connect(cfg);
    if (rc == NULL) return HN_CTL_EXIT_FAIL;
    hn_decoder *dec = hn_decoder_create();
    dump_ctx d = {.print = dump, .limit = limit};
    hn_buf_init(&d.out, 4096);
    int rc_exit = HN_CTL_EXIT_OK;
    uint64_t from = flags[0].seen ? shard : 0;
    uint64_t to = flags[0].seen ? shard + 1 : (uint64_t)cfg->stream_shards;
    for (uint64_t s = from; s < to; s++)
        if (dump_shard(rc, dec, s, (unsigned)cfg->stream_shards, &d) != HN_OK) rc_exit = HN_CTL_EXIT_FAIL;
    if (!dump) printf("%llu\n", (unsigned long long)d.n);
    hn_buf_free(&d.out);
    hn_decoder_destroy(dec);
    hn_rcl_free(rc);
    return rc_exit;
}
