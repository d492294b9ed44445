/*
 * jsonread.h: reading JSON text (RFC 8259) without building a tree: check
 * that an input is one well-formed value, walk the members of an object,
 * and decode one string or number on demand. json.h is the writer.
 *
 * For request bodies: the api's chat routes ({"text": "…"}) and the
 * collector's seed-compatible routes (proto/seed.h). Pure: no I/O, no
 * global state, no allocation; values point into the caller's input.
 */
#ifndef HN_JSONREAD_H
#define HN_JSONREAD_H

#include "common/hn.h"

#define HN_JREAD_DEPTH 32          /* nesting of objects and arrays */

typedef enum hn_jtype {
    HN_J_STR = 1, HN_J_NUM, HN_J_BOOL, HN_J_NULL, HN_J_OBJ, HN_J_ARR
} hn_jtype;

/* One value: its type and its text in the input (a string with its quotes,
 * an object with its braces). */
typedef struct hn_jval {
    hn_jtype    type;
    bool        b;                 /* HN_J_BOOL: true or false */
    const char *p;
    size_t      len;
} hn_jval;

/* true when p[0..len) is exactly one well-formed JSON value, whitespace
 * around it allowed, nesting at most HN_JREAD_DEPTH. */
bool hn_jread_check(const char *p, size_t len);

/* Calls fn for each member of the object p[0..len) (one value, checked
 * with hn_jread_check first), in order; a key given twice comes twice. fn
 * returns HN_OK to go on; anything else stops the walk and is returned.
 * HN_ERR when the input is not a well-formed object. */
typedef int (*hn_jread_member_fn)(void *ctx, const hn_jval *key, const hn_jval *val);
int hn_jread_members(const char *p, size_t len, hn_jread_member_fn fn, void *ctx);

/* The same for the elements of the array p[0..len): fn gets each element
 * and its index, in order. HN_ERR when the input is not a well-formed
 * array. */
typedef int (*hn_jread_element_fn)(void *ctx, int index, const hn_jval *val);
int hn_jread_elements(const char *p, size_t len, hn_jread_element_fn fn, void *ctx);

/* Decodes the string value s into out (cap bytes; s->len always suffices:
 * escapes never grow). A \u escape of a lone surrogate decodes to the
 * byte 0xff, which no UTF-8 check passes. The decoded length, or -1 when
 * cap is too small. out is not NUL-terminated. */
long hn_jread_str(const hn_jval *s, char *out, size_t cap);

/* true when the string value s decodes to exactly name. */
bool hn_jread_str_is(const hn_jval *s, const char *name);

/* The number value v: 1 with *i set when it is an integer (no fraction,
 * no exponent) that fits in int64; else 2 with *d set (finite); 0 when it
 * is beyond the range of a double, or longer than 63 characters. */
int hn_jread_num(const hn_jval *v, int64_t *i, double *d);

#endif
