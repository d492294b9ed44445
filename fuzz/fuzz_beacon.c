/* fuzz_beacon.c: the msgpack beacon decoder (UDP datagrams, POST bodies).
 * Property: it never crashes or reads out of bounds, and every beacon it
 * accepts packs back (hn_beacon_pack) into bytes it accepts again.
 * HN_FUZZ_EXPECT_ACCEPT=1 (the replay of the seeds in make test): an input
 * with no accepted beacon aborts, so that the seeds are known to be valid. */
#include "proto/beacon.h"
#include "proto/mpcheck.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hn_decoder *dec, *dec2;
static hn_batch batch, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (dec == NULL) {
        dec = hn_decoder_create();
        dec2 = hn_decoder_create();
    }
    int ok = hn_beacon_decode_msgpack(dec, &batch, (const char *)data, size);
    if (ok < 0 || ok > batch.n || batch.n > HN_BATCH_MAX) abort();
    static int expect = -1;
    if (expect < 0) expect = getenv("HN_FUZZ_EXPECT_ACCEPT") != NULL;
    if (expect && ok == 0) abort();
    for (int i = 0; i < batch.n; i++) {
        if (batch.reason[i] != HN_R_OK) continue;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        hn_beacon_pack(&pk, &batch.b[i]);
        if (hn_beacon_decode_msgpack(dec2, &again, sb.data, sb.size) != 1) abort();
        msgpack_sbuffer_destroy(&sb);
    }
    return 0;
}
