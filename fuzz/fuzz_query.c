/* fuzz_query.c: the pixel's query-string decoder (GET /p.gif?...). */
#include "proto/beacon.h"
#include "proto/query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hn_batch batch;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size buffers: ASan sees any read or write past them */
    char *qs = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
    if (size) memcpy(qs, data, size);
    int ok = hn_beacon_decode_query(&batch, qs, size, scratch, size);
    if (ok < 0 || ok > 1) abort();
    free(qs);
    free(scratch);
    return 0;
}
