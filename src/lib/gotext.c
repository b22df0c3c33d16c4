/* slipway: Go-compatible text helpers; see gotext.h. */
#include "gotext.h"

int32_t
sw_utf8_decode(const char *str, size_t n, int *width)
{
  const unsigned char *s = (const unsigned char *)str;
  unsigned char c = s[0];
  int32_t r;
  int len, i;

  *width = 1;
  if (c < 0x80)
    return c;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    r = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    r = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    r = c & 0x07;
  } else {
    return SW_RUNE_ERROR;
  }
  if ((size_t)len > n)
    return SW_RUNE_ERROR;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return SW_RUNE_ERROR;
    r = (r << 6) | (s[i] & 0x3F);
  }
  /* overlong forms, surrogates and values past U+10FFFF are invalid */
  if ((len == 3 && r < 0x800) || (len == 4 && (r < 0x10000 || r > 0x10FFFF)) ||
      (r >= 0xD800 && r <= 0xDFFF))
    return SW_RUNE_ERROR;
  *width = len;
  return r;
}

void
sw_utf8_put(sw_buf_t *b, int32_t r)
{
  char out[4];

  if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
    r = SW_RUNE_ERROR;
  if (r < 0x80) {
    sw_buf_putc(b, (char)r);
  } else if (r < 0x800) {
    out[0] = (char)(0xC0 | (r >> 6));
    out[1] = (char)(0x80 | (r & 0x3F));
    sw_buf_append(b, out, 2);
  } else if (r < 0x10000) {
    out[0] = (char)(0xE0 | (r >> 12));
    out[1] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[2] = (char)(0x80 | (r & 0x3F));
    sw_buf_append(b, out, 3);
  } else {
    out[0] = (char)(0xF0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[3] = (char)(0x80 | (r & 0x3F));
    sw_buf_append(b, out, 4);
  }
}

bool
sw_go_isspace(int32_t r)
{
  switch (r) {
  case '\t':
  case '\n':
  case '\v':
  case '\f':
  case '\r':
  case ' ':
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000:
    return true;
  default:
    return r >= 0x2000 && r <= 0x200A;
  }
}

bool
sw_go_isdigit(int32_t r)
{
  return r >= '0' && r <= '9';
}

bool
sw_go_isletter(int32_t r)
{
  if (r < 0x80)
    return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
  if (r < 0x100)
    return r == 0xAA || r == 0xB5 || r == 0xBA || (r >= 0xC0 && r != 0xD7 && r != 0xF7);
  return !sw_go_isspace(r) && r != SW_RUNE_ERROR && !(r >= 0x2010 && r <= 0x206F) &&
         !(r >= 0x3000 && r <= 0x303F) && !(r >= 0xE000 && r <= 0xF8FF) && r < 0xFFF0;
}

/* unicode.IsPrint, close enough: the non-printable ranges that occur in practice. */
static bool
go_isprint(int32_t r)
{
  if (r < 0x20 || r == 0x7F)
    return false;
  if (r < 0x7F)
    return true;
  if (r < 0xA1 || r == 0xAD)
    return false;
  if (sw_go_isspace(r))
    return false;
  if ((r >= 0x200B && r <= 0x200F) || (r >= 0x202A && r <= 0x202E) ||
      (r >= 0x2060 && r <= 0x206F) || r == 0xFEFF || (r >= 0xFFF0 && r <= 0xFFFB) || r == 0xFFFE ||
      r == 0xFFFF || (r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000 || (r >= 0xD800 && r <= 0xDFFF) ||
      r == 0x061C || r == 0x180E)
    return false;
  return true;
}

void
sw_go_quote_buf(sw_buf_t *b, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;

  sw_buf_putc(b, '"');
  while (i < len) {
    int w;
    int32_t r = sw_utf8_decode(s + i, len - i, &w);

    if (r == SW_RUNE_ERROR && w == 1) {
      unsigned char c = (unsigned char)s[i];
      sw_buf_printf(b, "\\x%c%c", hex[c >> 4], hex[c & 15]);
      i++;
      continue;
    }
    if (r == '"' || r == '\\') {
      sw_buf_putc(b, '\\');
      sw_buf_putc(b, (char)r);
    } else if (go_isprint(r)) {
      sw_buf_append(b, s + i, (size_t)w);
    } else {
      switch (r) {
      case '\a':
        sw_buf_puts(b, "\\a");
        break;
      case '\b':
        sw_buf_puts(b, "\\b");
        break;
      case '\f':
        sw_buf_puts(b, "\\f");
        break;
      case '\n':
        sw_buf_puts(b, "\\n");
        break;
      case '\r':
        sw_buf_puts(b, "\\r");
        break;
      case '\t':
        sw_buf_puts(b, "\\t");
        break;
      case '\v':
        sw_buf_puts(b, "\\v");
        break;
      default:
        if (r < ' ' || r == 0x7F)
          sw_buf_printf(b, "\\x%c%c", hex[r >> 4], hex[r & 15]);
        else if (r < 0x10000)
          sw_buf_printf(b, "\\u%04x", (unsigned)r);
        else
          sw_buf_printf(b, "\\U%08x", (unsigned)r);
      }
    }
    i += (size_t)w;
  }
  sw_buf_putc(b, '"');
}

char *
sw_go_quote(const char *s)
{
  sw_buf_t b = {0};

  sw_go_quote_buf(&b, s, strlen(s));
  return sw_buf_steal(&b);
}
