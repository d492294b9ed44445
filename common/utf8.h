/*
 * utf8.h: strict UTF-8 validation, for every string that reaches the store
 * (beacon and record fields, JSON output).
 */
#ifndef HN_UTF8_H
#define HN_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool hn_utf8_valid(const char *s, size_t len);

#endif
