/*
 * datakey.c: see datakey.h.
 */
#include "common/datakey.h"

#include "common/json.h"
#include "common/log.h"
#include "common/pct.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEY_LEN   32
#define NONCE_LEN 12
#define TAG_LEN   16
#define MAX_KEYS  64

typedef struct dkey {
    char          id[HN_DK_ID_MAX + 1];
    size_t        idlen;
    unsigned char k[KEY_LEN];
} dkey;

static struct {
    dkey          keys[MAX_KEYS];
    int           n;                    /* 0: no keys */
    unsigned char index[KEY_LEN];
} ring;

static _Atomic uint64_t failures;

static bool id_char(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* "<id> <64 hex>" → id, key; false when the line is not that. */
static bool parse_line(char *s, char *id, unsigned char *k) {
    size_t i = 0;
    while (s[i] && id_char((unsigned char)s[i])) i++;
    if (i == 0 || i > HN_DK_ID_MAX || (s[i] != ' ' && s[i] != '\t')) return false;
    memcpy(id, s, i);
    id[i] = '\0';
    while (s[i] == ' ' || s[i] == '\t') i++;
    for (int b = 0; b < KEY_LEN; b++) {
        int hi = hn_hexval((unsigned char)s[i]), lo = hi < 0 ? -1 : hn_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) return false;
        k[b] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') i++;
    return s[i] == '\0';
}

int hn_dk_init(const char *path, char *err, size_t cap) {
    hn_dk_shutdown();
    if (path == NULL || path[0] == '\0') return HN_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, cap, "HERENOW_DATA_KEY_FILE %s: %s", path, strerror(errno));
        return HN_ERR;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IRWXO)) {
        snprintf(err, cap, "HERENOW_DATA_KEY_FILE %s: mode %04o lets others read it (chmod 640)", path,
                 (unsigned)(st.st_mode & 07777));
        fclose(f);
        return HN_ERR;
    }
    char line[512], id[HN_DK_ID_MAX + 1];
    unsigned char k[KEY_LEN];
    bool has_index = false;
    int ln = 0, rc = HN_OK;
    while (fgets(line, sizeof(line), f)) {
        ln++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0') continue;
        if (!parse_line(s, id, k)) {
            snprintf(err, cap, "HERENOW_DATA_KEY_FILE %s line %d: want \"<id> <64 hex digits>\" (id: 1..16 of A-Z a-z 0-9 _ -)",
                     path, ln);
            rc = HN_ERR;
            break;
        }
        if (strcmp(id, "index") == 0) {
            memcpy(ring.index, k, KEY_LEN);
            has_index = true;
            continue;
        }
        bool twice = false;
        for (int i = 0; i < ring.n; i++) twice |= strcmp(ring.keys[i].id, id) == 0;
        if (twice || ring.n == MAX_KEYS) {
            snprintf(err, cap, "HERENOW_DATA_KEY_FILE %s line %d: %s", path, ln,
                     twice ? "the key id is given twice" : "more than 64 keys");
            rc = HN_ERR;
            break;
        }
        dkey *d = &ring.keys[ring.n++];
        snprintf(d->id, sizeof(d->id), "%s", id);
        d->idlen = strlen(id);
        memcpy(d->k, k, KEY_LEN);
    }
    fclose(f);
    OPENSSL_cleanse(k, sizeof(k));
    if (rc == HN_OK && ring.n == 0) {
        snprintf(err, cap, "HERENOW_DATA_KEY_FILE %s: no key (want \"<id> <64 hex digits>\" lines)", path);
        rc = HN_ERR;
    }
    if (rc != HN_OK) {
        hn_dk_shutdown();
        return HN_ERR;
    }
    if (!has_index) {
        static const char label[] = "herenow blind index v1";
        unsigned int n = KEY_LEN;
        HMAC(EVP_sha256(), ring.keys[0].k, KEY_LEN, (const unsigned char *)label, sizeof(label) - 1,
             ring.index, &n);
    }
    return HN_OK;
}

void hn_dk_shutdown(void) {
    OPENSSL_cleanse(&ring, sizeof(ring));
    ring.n = 0;
}

bool hn_dk_enabled(void) { return ring.n > 0; }

int hn_dk_count(void) { return ring.n; }

const char *hn_dk_current(void) { return ring.n ? ring.keys[ring.n - 1].id : ""; }

void hn_dk_ids(char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < ring.n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", ring.keys[i].id);
}

static const dkey *find(const char *id, size_t n) {
    for (int i = 0; i < ring.n; i++)
        if (ring.keys[i].idlen == n && memcmp(ring.keys[i].id, id, n) == 0) return &ring.keys[i];
    return NULL;
}

bool hn_dk_has(const char *id, size_t n) { return find(id, n) != NULL; }

bool hn_dk_is_sealed(const char *v, size_t n) {
    return n > HN_DK_PREFIX_LEN && memcmp(v, HN_DK_PREFIX, HN_DK_PREFIX_LEN) == 0;
}

/* The id's length in a sealed value (0: none). */
static size_t id_len(const char *v, size_t n) {
    size_t i = HN_DK_PREFIX_LEN;
    while (i < n && i - HN_DK_PREFIX_LEN <= HN_DK_ID_MAX && id_char((unsigned char)v[i])) i++;
    if (i == n || v[i] != ':' || i == HN_DK_PREFIX_LEN || i - HN_DK_PREFIX_LEN > HN_DK_ID_MAX) return 0;
    return i - HN_DK_PREFIX_LEN;
}

void hn_dk_id_of(const char *v, size_t n, char *out) {
    size_t l = hn_dk_is_sealed(v, n) ? id_len(v, n) : 0;
    memcpy(out, v + HN_DK_PREFIX_LEN, l);
    out[l] = '\0';
}

void hn_dk_seal(hn_buf *out, const char *p, size_t n) {
    if (ring.n == 0) {
        hn_buf_append(out, p, n);
        return;
    }
    const dkey *d = &ring.keys[ring.n - 1];
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    unsigned char *raw = hn_xmalloc(raw_len);
    if (RAND_bytes(raw, NONCE_LEN) != 1) {
        hn_error("event=datakey_rand_failed");
        abort();
    }
    size_t h0 = out->len;
    hn_buf_printf(out, HN_DK_PREFIX "%s", d->id);   /* the associated data: prefix and id */
    size_t hl = out->len - h0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, ok = c != NULL && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, d->k, raw) == 1 &&
                    EVP_EncryptUpdate(c, NULL, &l, (const unsigned char *)out->p + h0, (int)hl) == 1 &&
                    EVP_EncryptUpdate(c, raw + NONCE_LEN, &l, (const unsigned char *)p, (int)n) == 1 &&
                    EVP_EncryptFinal_ex(c, raw + NONCE_LEN + l, &l) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + n) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        hn_error("event=datakey_seal_failed");
        abort();
    }
    hn_buf_append(out, ":", 1);
    hn_buf_reserve(out, 4 * ((raw_len + 2) / 3) + 1);
    out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->p + out->len, raw, (int)raw_len);
    free(raw);
}

static bool b64_char(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

int hn_dk_open(hn_buf *out, const char *v, size_t n) {
    if (!hn_dk_is_sealed(v, n)) {
        hn_buf_append(out, v, n);
        return HN_OK;
    }
    size_t il = id_len(v, n), hl = HN_DK_PREFIX_LEN + il;
    const dkey *d = il ? find(v + HN_DK_PREFIX_LEN, il) : NULL;
    const char *b = v + hl + 1;
    size_t bl = il ? n - hl - 1 : 0;
    if (d == NULL || bl % 4 != 0 || bl < 4 * ((NONCE_LEN + TAG_LEN + 2) / 3)) goto fail;
    for (size_t i = 0; i < bl; i++)
        if (!b64_char((unsigned char)b[i])) goto fail;
    unsigned char *raw = hn_xmalloc(bl / 4 * 3 + 1);
    int rl = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)bl);
    if (rl >= 0) rl -= (b[bl - 1] == '=') + (b[bl - 2] == '=');
    if (rl < NONCE_LEN + TAG_LEN) {
        free(raw);
        goto fail;
    }
    size_t cl = (size_t)rl - NONCE_LEN - TAG_LEN, o = out->len;
    hn_buf_reserve(out, cl + 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, d->k, raw) == 1 &&
                    EVP_DecryptUpdate(c, NULL, &l, (const unsigned char *)v, (int)hl) == 1 &&
                    EVP_DecryptUpdate(c, (unsigned char *)out->p + o, &l, raw + NONCE_LEN, (int)cl) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + cl) == 1 &&
                    EVP_DecryptFinal_ex(c, (unsigned char *)out->p + o + l, &l) == 1;
    EVP_CIPHER_CTX_free(c);
    free(raw);
    if (!ok) {
        OPENSSL_cleanse(out->p + o, cl);
        goto fail;
    }
    out->len = o + cl;
    return HN_OK;
fail:
    atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
    return HN_ERR;
}

/* The end of the JSON string that starts at j[i] == '"' (the index of its
 * closing quote, n when unterminated); *esc: it has escapes. */
static size_t string_end(const char *j, size_t n, size_t i, bool *esc) {
    *esc = false;
    for (i++; i < n; i++) {
        if (j[i] == '\\') {
            *esc = true;
            i++;
        } else if (j[i] == '"') {
            return i;
        }
    }
    return n;
}

int hn_dk_open_json(hn_buf *out, const char *j, size_t n) {
    int rc = HN_OK;
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (j[i] != '"') continue;
        bool esc;
        size_t e = string_end(j, n, i, &esc);
        if (e == n) break;
        if (!esc && hn_dk_is_sealed(j + i + 1, e - i - 1)) {
            hn_buf plain = {0};
            if (hn_dk_open(&plain, j + i + 1, e - i - 1) == HN_OK) {
                hn_buf_append(out, j + from, i - from);
                hn_json_str(out, plain.p ? plain.p : "", plain.len);
                from = e + 1;
            } else {
                rc = HN_ERR;
            }
            if (plain.p) OPENSSL_cleanse(plain.p, plain.len);
            hn_buf_free(&plain);
        }
        i = e;
    }
    hn_buf_append(out, j + from, n - from);
    return rc;
}

static void csv_quoted(hn_buf *out, const char *s, size_t n) {
    hn_buf_append(out, "\"", 1);
    if (n && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL) hn_buf_append(out, "'", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') hn_buf_append(out, "\"", 1);
        hn_buf_append(out, s + i, 1);
    }
    hn_buf_append(out, "\"", 1);
}

int hn_dk_open_csv(hn_buf *out, const char *line, size_t n, uint64_t cols) {
    int rc = HN_OK;
    hn_buf v = {0}, plain = {0};
    size_t i = 0;
    for (unsigned field = 0;; field++) {
        /* one field: [start, i) raw, its value unquoted into v */
        size_t start = i;
        hn_buf_reset(&v);
        if (i < n && line[i] == '"') {
            for (i++; i < n; i++) {
                if (line[i] == '"') {
                    if (i + 1 < n && line[i + 1] == '"') {
                        hn_buf_append(&v, "\"", 1);
                        i++;
                    } else {
                        i++;
                        break;
                    }
                } else {
                    hn_buf_append(&v, line + i, 1);
                }
            }
        }
        while (i < n && line[i] != ',' && line[i] != '\n' && line[i] != '\r') hn_buf_append(&v, line + i++, 1);
        hn_buf_reset(&plain);
        int r = HN_OK;
        bool mine = field < 64 && (cols >> field & 1);
        bool sealed = mine && hn_dk_is_sealed(v.p, v.len);
        bool json = mine && !sealed && v.len && v.p[0] == '{' &&
                    memmem(v.p, v.len, "\"" HN_DK_PREFIX, HN_DK_PREFIX_LEN + 1);
        if (sealed) r = hn_dk_open(&plain, v.p, v.len);
        else if (json) r = hn_dk_open_json(&plain, v.p, v.len);
        if ((sealed || json) && r == HN_OK) {
            csv_quoted(out, plain.p ? plain.p : "", plain.len);
        } else {
            if (r != HN_OK) rc = HN_ERR;
            hn_buf_append(out, line + start, i - start);
        }
        if (i >= n || line[i] != ',') break;
        hn_buf_append(out, ",", 1);
        i++;
    }
    hn_buf_append(out, line + i, n - i);        /* the line's end */
    if (plain.p) OPENSSL_cleanse(plain.p, plain.cap);
    hn_buf_free(&plain);
    hn_buf_free(&v);
    return rc;
}

void hn_dk_defuse_json(hn_buf *out, const char *j, size_t n) {
    static const char pat[] = "\"hnenc:";
    size_t from = 0;
    for (const char *p = j; (p = memmem(p, n - (size_t)(p - j), pat, sizeof(pat) - 1)) != NULL; p += sizeof(pat) - 1) {
        hn_buf_append(out, j + from, (size_t)(p - j) + 6 - from);      /* up to "hnenc */
        hn_buf_append(out, "\\u003a", 6);
        from = (size_t)(p - j) + sizeof(pat) - 1;
    }
    hn_buf_append(out, j + from, n - from);
}

void hn_dk_email_key(hn_buf *out, const char *e, size_t n) {
    char *low = hn_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) low[i] = (char)(e[i] >= 'A' && e[i] <= 'Z' ? e[i] + 32 : e[i]);
    if (ring.n == 0) {
        hn_buf_append(out, low, n);
    } else {
        unsigned char mac[32];
        unsigned int ml = sizeof(mac);
        HMAC(EVP_sha256(), ring.index, KEY_LEN, (const unsigned char *)low, n, mac, &ml);
        hn_buf_append(out, "hmac:", 5);
        for (unsigned i = 0; i < ml; i++) hn_buf_printf(out, "%02x", mac[i]);
    }
    free(low);
}

bool hn_dk_is_email_key(const char *v, size_t n) { return n == 69 && memcmp(v, "hmac:", 5) == 0; }

void hn_dk_index_check(char *out) {
    static const char label[] = "herenow blind index check v1";
    unsigned char mac[32];
    unsigned int ml = sizeof(mac);
    out[0] = '\0';
    if (ring.n == 0) return;
    HMAC(EVP_sha256(), ring.index, KEY_LEN, (const unsigned char *)label, sizeof(label) - 1, mac, &ml);
    memcpy(out, "idx:", 4);
    for (unsigned i = 0; i < 16; i++) snprintf(out + 4 + 2 * i, 3, "%02x", mac[i]);
}

void hn_dk_buf_wipe(hn_buf *b) {
    if (b->p) OPENSSL_cleanse(b->p, b->cap);
    hn_buf_free(b);
}

uint64_t hn_dk_failures(void) { return atomic_load_explicit(&failures, memory_order_relaxed); }
