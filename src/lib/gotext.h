/* slipway: text helpers that behave as Go's standard library does, so that the frontend reads
 * and prints strings exactly as BuildKit (written in Go) does: UTF-8 decoding with U+FFFD for a
 * bad byte (utf8.DecodeRune), unicode.IsSpace / IsLetter / IsDigit, and strconv.Quote. */
#ifndef SW_GOTEXT_H
#define SW_GOTEXT_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_RUNE_ERROR 0xFFFD

/* Decode one rune from S (N > 0 bytes available); *width gets 1..4. An invalid or truncated
 * sequence decodes as SW_RUNE_ERROR with width 1, as Go's utf8.DecodeRune does. */
int32_t sw_utf8_decode(const char *s, size_t n, int *width);
/* Append the UTF-8 encoding of R (invalid runes encode as U+FFFD). */
void sw_utf8_put(sw_buf_t *b, int32_t r);

bool sw_go_isspace(int32_t r);
bool sw_go_isletter(int32_t r); /* exact for Latin-1, approximate above (non-space = letter) */
bool sw_go_isdigit(int32_t r);  /* ASCII digits only */

/* Go's strconv.Quote of LEN bytes at S, appended to B. */
void sw_go_quote_buf(sw_buf_t *b, const char *s, size_t len);
/* Same, as a new string. */
char *sw_go_quote(const char *s);

#endif
