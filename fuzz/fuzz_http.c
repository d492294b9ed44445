/* fuzz_http.c: what the collector's HTTP ingress does with request headers
 * a client controls: X-Forwarded-For walked against trusted proxies, the
 * Origin against a CORS list, the User-Agent through uap-core's 1162
 * regexes (PCRE2 JIT, with a match limit). The first byte picks which. */
#include "collector/httpmap.h"
#include "common/net.h"
#include "common/ip.h"
#include "collector/uap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hn_cidrs proxies;
static hn_uap *uap;
static hn_uap_ctx *ua;

static void setup(void) {
    char err[256];
    if (hn_cidrs_parse("127.0.0.0/8, 10.0.0.0/8, ::1/128, fd00::/8", &proxies, err, sizeof(err)) != HN_OK)
        abort();
    const char *path = getenv("HERENOW_UA_REGEXES");
    uap = hn_uap_load(path && *path ? path : HN_UAP_DEFAULT_PATH, err, sizeof(err));
    if (uap == NULL) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    ua = hn_uap_ctx_create(uap, 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (uap == NULL) setup();
    if (size < 1) return 0;
    char *s = malloc(size);            /* the rest, NUL-terminated like a header value */
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: {
        hn_ip ip;
        if (!hn_ip_parse("127.0.0.1", 9, &ip)) abort();
        hn_http_forwarded_for(&proxies, s, &ip);
        char out[64];
        hn_ip_format(&ip, out, sizeof(out));
        break;
    }
    case 1: {
        char *nl = strchr(s, '\n');     /* "list\norigin" */
        if (nl) *nl = '\0';
        (void)hn_origin_allowed(s, nl ? nl + 1 : "");
        break;
    }
    default: {
        hn_ua_full out;
        hn_uap_parse(ua, s, strlen(s), &out);
        break;
    }
    }
    free(s);
    return 0;
}
