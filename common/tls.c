/*
 * tls.c: see tls.h.
 *
 * Session tickets: OpenSSL would make one ticket key per context at random
 * and keep it for the context's life. The keys here live in the hn_tls
 * instead, so that a certificate reload keeps resumption working, and are
 * rotated: a new key once the current one is rotate_s old (looked at when a
 * ticket is issued), the previous one still opens tickets (which are then
 * renewed), anything older means a full handshake. Every process has its
 * own keys: behind a load balancer, a visitor resumes on the node that
 * issued the ticket (docs/OPERATIONS.md).
 */
#include "common/tls.h"
#include "common/log.h"
#include "common/prom.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Mozilla's "intermediate" list for TLS 1.2 (forward secrecy, AEAD only);
 * TLS 1.3's suites are OpenSSL's defaults, all of them modern. */
#define TLS12_CIPHERS                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                       \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                       \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

typedef struct ticket_key {
    unsigned char name[16], aes[32], hmac[32];
    uint64_t      born_ms;           /* monotonic */
    bool          set;
} ticket_key;

struct hn_tls {
    pthread_mutex_t   lock;          /* ctx, info and keys */
    SSL_CTX          *ctx;
    char             *cert_file, *key_file;
    uint64_t          rotate_ms;
    ticket_key        keys[2];       /* [0] issues tickets, [1] only opens them */
    hn_tls_cert_info  info;
    uint64_t          reload_failures;
};

/* The latest OpenSSL error as a short reason ("key values mismatch"). */
static const char *ossl_reason(void) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

static int64_t asn1_epoch(const ASN1_TIME *t) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return (int64_t)timegm(&tm);
}

static void fmt_day(int64_t epoch, char *out, size_t cap) {
    time_t tt = (time_t)epoch;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void cert_info(X509 *x, hn_tls_cert_info *out) {
    memset(out, 0, sizeof(*out));
    out->not_before = asn1_epoch(X509_get0_notBefore(x));
    out->not_after = asn1_epoch(X509_get0_notAfter(x));
    X509_NAME_oneline(X509_get_subject_name(x), out->subject, sizeof(out->subject));
    X509_NAME_oneline(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
}

static int readable(const char *what, const char *path, char *err, size_t cap) {
    FILE *f = path && *path ? fopen(path, "r") : NULL;
    if (f == NULL) {
        snprintf(err, cap, "%s %s: %s", what, path && *path ? path : "(empty)",
                 path && *path ? strerror(errno) : "not set");
        return HN_ERR;
    }
    fclose(f);
    return HN_OK;
}

/* ---- session tickets -------------------------------------------------------------------- */

static void key_new(ticket_key *k) {
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
        k->set = false;      /* no ticket rather than a weak one */
        return;
    }
    k->born_ms = hn_mono_ms();
    k->set = true;
}

static int hmac_init(EVP_MAC_CTX *hctx, ticket_key *k) {
    OSSL_PARAM p[3];
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, sizeof(k->hmac));
    p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    p[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, p) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: enc 1, seal a new ticket with the current key
 * (1: done, 0: no ticket); enc 0, open one (0: unknown key, full
 * handshake; 1: fine; 2: fine, issue a fresh ticket). */
static int on_ticket(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc) {
    hn_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (t == NULL) return 0;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    if (enc) {
        if (!t->keys[0].set || hn_mono_ms() - t->keys[0].born_ms >= t->rotate_ms) {
            ticket_key k;
            key_new(&k);
            if (k.set) {            /* no randomness: the old key goes on */
                t->keys[1] = t->keys[0];
                t->keys[0] = k;
            }
            OPENSSL_cleanse(&k, sizeof(k));
        }
        ticket_key *k = &t->keys[0];
        if (k->set && RAND_bytes(iv, 16) == 1 &&
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 &&
            hmac_init(hctx, k) == 0) {
            memcpy(name, k->name, 16);
            rc = 1;
        }
    } else {
        for (int i = 0; i < 2; i++) {
            ticket_key *k = &t->keys[i];
            if (!k->set || memcmp(name, k->name, 16) != 0) continue;
            /* the previous key, or the current one gone stale: renew */
            bool stale = i == 1 || hn_mono_ms() - k->born_ms >= t->rotate_ms;
            if (hmac_init(hctx, k) == 0 &&
                EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1)
                rc = stale ? 2 : 1;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* ALPN: http/1.1 when the client offers it; a client offering only other
 * protocols gets no ALPN answer (and HTTP/1.1 anyway). */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
    static const unsigned char ours[] = "\x08http/1.1";
    (void)ssl; (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- the context -------------------------------------------------------------------------- */

/* A server context from the files, or NULL with the reason. t NULL: for a
 * check only (no ticket callback). */
static SSL_CTX *make_ctx(hn_tls *t, const char *cert_file, const char *key_file,
                         uint64_t rotate_ms, hn_tls_cert_info *info, char *err, size_t cap) {
    if (readable("HERENOW_TLS_CERT", cert_file, err, cap) != HN_OK ||
        readable("HERENOW_TLS_KEY", key_file, err, cap) != HN_OK)
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, cap, "TLS: SSL_CTX_new: %s", ossl_reason());
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, cap, "HERENOW_TLS_CERT %s: not a PEM certificate chain (%s)", cert_file,
                 ossl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, cap, "HERENOW_TLS_KEY %s: not the certificate's private key (%s)", key_file,
                 ossl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, cap, "HERENOW_TLS_KEY %s does not match HERENOW_TLS_CERT %s (%s)", key_file,
                 cert_file, ossl_reason());
        goto fail;
    }
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    hn_tls_cert_info ci;
    cert_info(leaf, &ci);
    if (info) *info = ci;            /* doctor shows the dates of an expired one too */
    char day[40];
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
        fmt_day(ci.not_after, day, sizeof(day));
        snprintf(err, cap, "HERENOW_TLS_CERT %s: expired on %s (%s)", cert_file, day, ci.subject);
        goto fail;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        fmt_day(ci.not_before, day, sizeof(day));
        snprintf(err, cap, "HERENOW_TLS_CERT %s: not valid before %s (%s; is the clock right?)",
                 cert_file, day, ci.subject);
        goto fail;
    }

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        snprintf(err, cap, "TLS: cipher list: %s", ossl_reason());
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* idle keep-alive, chat downlinks and live streams hold no 34 KB of
     * buffers each while they wait */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (t) {
        SSL_CTX_set_app_data(ctx, t);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
        SSL_CTX_set_timeout(ctx, (long)(2 * rotate_ms / 1000));
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

hn_tls *hn_tls_create(const char *cert_file, const char *key_file, int ticket_rotate_s,
                      char *err, size_t cap) {
    hn_tls *t = hn_xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->rotate_ms = (uint64_t)(ticket_rotate_s > 0 ? ticket_rotate_s : 3600) * 1000;
    t->cert_file = hn_xstrdup(cert_file ? cert_file : "");
    t->key_file = hn_xstrdup(key_file ? key_file : "");
    t->ctx = make_ctx(t, t->cert_file, t->key_file, t->rotate_ms, &t->info, err, cap);
    if (t->ctx == NULL) {
        hn_tls_free(t);
        return NULL;
    }
    return t;
}

void hn_tls_free(hn_tls *t) {
    if (t == NULL) return;
    if (t->ctx) SSL_CTX_free(t->ctx);    /* connections still open hold their own reference */
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    pthread_mutex_destroy(&t->lock);
    free(t->cert_file);
    free(t->key_file);
    free(t);
}

int hn_tls_reload(hn_tls *t, char *err, size_t cap) {
    hn_tls_cert_info info;
    SSL_CTX *ctx = make_ctx(t, t->cert_file, t->key_file, t->rotate_ms, &info, err, cap);
    if (ctx == NULL) return HN_ERR;
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    t->info = info;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old);
    return HN_OK;
}

void hn_tls_reload_logged(hn_tls *t) {
    if (t == NULL) return;
    char err[512];
    if (hn_tls_reload(t, err, sizeof(err)) != HN_OK) {
        __atomic_fetch_add(&t->reload_failures, 1, __ATOMIC_RELAXED);
        hn_error("event=tls_reload_failed err='%s' (the certificate loaded before stays)", err);
        return;
    }
    hn_tls_cert_info ci;
    hn_tls_info(t, &ci);
    char day[40];
    fmt_day(ci.not_after, day, sizeof(day));
    hn_info("event=tls_reloaded subject='%s' not_after='%s'", ci.subject, day);
}

void hn_tls_metrics(hn_tls *t, hn_buf *out) {
    if (t == NULL) return;
    hn_tls_cert_info ci;
    hn_tls_info(t, &ci);
    hn_prom_family(out, "herenow_tls_cert_not_after_seconds", HN_PROM_GAUGE,
                   "When the HTTPS port's certificate (the leaf in use) expires, unix seconds.");
    hn_prom_u64(out, "herenow_tls_cert_not_after_seconds", NULL, (uint64_t)ci.not_after);
    hn_prom_counter(out, "herenow_tls_reload_failures_total",
                    "SIGHUP reloads of the certificate that failed (the previous one stays in use).",
                    __atomic_load_n(&t->reload_failures, __ATOMIC_RELAXED));
}

void hn_tls_info(hn_tls *t, hn_tls_cert_info *out) {
    pthread_mutex_lock(&t->lock);
    *out = t->info;
    pthread_mutex_unlock(&t->lock);
}

struct bufferevent *hn_tls_bev(hn_tls *t, struct event_base *base) {
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (ssl == NULL) return NULL;
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) return NULL;   /* (libevent frees ssl: BEV_OPT_CLOSE_ON_FREE) */
    /* a client closing without close_notify is the common case, not an error */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

bool hn_tls_is_tls(struct bufferevent *bev) {
    return bev && bufferevent_openssl_get_ssl(bev) != NULL;
}

int hn_tls_check_files(const char *cert_file, const char *key_file, hn_tls_cert_info *out,
                       char *err, size_t cap) {
    SSL_CTX *ctx = make_ctx(NULL, cert_file, key_file, 0, out, err, cap);
    if (ctx == NULL) return HN_ERR;
    SSL_CTX_free(ctx);
    return HN_OK;
}
