/* fuzz_record.c: the record decoder (stream entries, read by the drain and
 * the live hub): a batch's records are decoded and every field is used the
 * way the drain uses it (props as JSON). */
#include "common/buf.h"
#include "proto/mpcheck.h"
#include "proto/record.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hn_decoder *dec;

static int on_record(const hn_record *r, void *ctx) {
    hn_buf *b = ctx;
    char id[37];
    hn_event_id_format(r->event_id, id);
    hn_buf_append(b, id, 36);
    hn_buf_append(b, r->b.s.p, r->b.s.len);
    hn_buf_append(b, r->b.u.p, r->b.u.len);
    hn_buf_append(b, r->country.p, r->country.len);
    hn_props_json(b, r->b.props, r->b.nprops);
    return HN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (dec == NULL) dec = hn_decoder_create();
    char *copy = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++) copy[i] = (char)data[i];
    hn_buf b = {0};
    char err[160];
    hn_record_decode_batch(dec, copy, size, on_record, &b, err, sizeof(err));
    hn_buf_free(&b);
    free(copy);
    return 0;
}
