/*
 * datakey.h: encryption at rest of what identifies a person (docs/OPERATIONS.md,
 * "Data at rest"): visitor names, emails, phones and conversation messages
 * are stored in PostgreSQL sealed with AES-256-GCM (OpenSSL) under the keys
 * of HERENOW_DATA_KEY_FILE.
 *
 *   the key file      one "<id> <64 hex digits>" line per key (id: 1..16 of
 *                     A-Z a-z 0-9 _ -); the last line's key seals, every key
 *                     opens; "index <64 hex>" is the blind-index key (else
 *                     one derived from the first key, which must then stay
 *                     first: the database refuses another); # comments
 *   a sealed value    "hnenc:v1:<id>:" + base64(nonce[12] ciphertext tag[16]),
 *                     the text up to the last ':' as associated data
 *   an email key      what equality lookups compare (bans and notes by
 *                     email): "hmac:" + hex HMAC-SHA-256(index key, the
 *                     address lower-cased); without keys, the address
 *                     lower-cased (ASCII)
 *
 * One key ring per process, loaded at start (hn_dk_init) before any thread
 * and read-only after: every function here may be called from any thread.
 * Without a key file nothing is sealed and values pass through as they are;
 * a value stored before the keys came (plain text) is opened as itself, so
 * a database moves to encryption with `herenowctl key rotate`.
 */
#ifndef HN_DATAKEY_H
#define HN_DATAKEY_H

#include "common/buf.h"

#define HN_DK_PREFIX     "hnenc:v1:"
#define HN_DK_PREFIX_LEN 9
#define HN_DK_ID_MAX     16

/* Loads the key file (NULL or "": no keys, nothing sealed). HN_ERR with a
 * one-line reason in err: unreadable, readable by others than its owner
 * and group, a malformed line (named by number), an id twice, no key. */
int  hn_dk_init(const char *path, char *err, size_t cap);
void hn_dk_shutdown(void);
bool hn_dk_enabled(void);
int  hn_dk_count(void);
/* The sealing key's id ("" without keys). */
const char *hn_dk_current(void);
/* The ids of the ring, in file order, comma-separated (for messages). */
void hn_dk_ids(char *out, size_t cap);
bool hn_dk_has(const char *id, size_t n);

/* true when v is a sealed value's text (by its prefix; not checked). */
bool hn_dk_is_sealed(const char *v, size_t n);
/* The id of a sealed value ("" when v is not one); out >= HN_DK_ID_MAX + 1. */
void hn_dk_id_of(const char *v, size_t n, char *out);

/* Appends p sealed under the current key, or p itself without keys. */
void hn_dk_seal(hn_buf *out, const char *p, size_t n);
/* Appends v opened; a value that is not sealed is appended as it is.
 * HN_ERR (nothing appended, counted) when v's key is not in the ring or v
 * is damaged or was altered. */
int  hn_dk_open(hn_buf *out, const char *v, size_t n);
/* Appends JSON text j with every string that is a sealed value replaced by
 * its opened text (a JSON string, escaped); HN_ERR when one did not open
 * (that string is appended as it was). */
int  hn_dk_open_json(hn_buf *out, const char *j, size_t n);
/* The same for one CSV record (a line of PostgreSQL's COPY … FORMAT csv):
 * of the fields whose bit is set in cols (field i: bit i; the others are
 * copied as they are, whatever they hold), those that are sealed values,
 * or JSON holding some, are opened; a field opened is written quoted, with
 * a leading = + - @ tab or CR guarded by a ' as the export's SQL does. */
int  hn_dk_open_csv(hn_buf *out, const char *line, size_t n, uint64_t cols);

/* Appends JSON text j with every string that starts "hnenc:" written with its
 * ':' escaped (\u003a): the same JSON value, which hn_dk_open_json leaves
 * alone. For JSON made of what visitors sent, beside sealed values that
 * will be opened (webhook bodies). */
void hn_dk_defuse_json(hn_buf *out, const char *j, size_t n);

/* Appends the email key of the address e (see above). */
void hn_dk_email_key(hn_buf *out, const char *e, size_t n);
bool hn_dk_is_email_key(const char *v, size_t n);
/* A fingerprint of the index key ("idx:" + 32 hex; "" without keys): what
 * the database keeps to refuse a start whose email keys would differ from
 * the stored ones. out >= HN_DK_INDEX_CHECK_LEN + 1. */
#define HN_DK_INDEX_CHECK_LEN 36
void hn_dk_index_check(char *out);

/* Frees b after overwriting what it held (opened text). */
void hn_dk_buf_wipe(hn_buf *b);

/* Values that did not open since start (herenow_data_open_failures_total). */
uint64_t hn_dk_failures(void);

#endif
