/* slipway: reading Python project metadata as text, never running it (see recipe.h): a minimal
 * TOML reader (pyproject.toml, lock files), setup.cfg values, and string literals of setup.py,
 * manage.py and settings modules. Pure and fuzzed: every input ends in bounded time. */
#include "recipe.h"

#include <ctype.h>

typedef struct {
  char *key;
  char *str;  /* a scalar (strings unquoted, others as written) */
  char **arr; /* the strings of an array (never NULL for an array) */
} entry_t;

struct sw_toml {
  entry_t *v;
  size_t n, cap;
  char **aot; /* array-of-tables names with their counts: "name\tN" */
};

typedef struct {
  const char *path;
  const char *p, *end;
  int line;
  sw_toml_t *t;
  int depth;
} lexer_t;

#define MAX_DEPTH 32

static int
fail(lexer_t *l, sw_error_t *err, const char *what)
{
  return sw_error_code(err, SW_EXIT_USAGE, 0, "%s:%d: %s", l->path, l->line, what);
}

static void
skip_blank(lexer_t *l)
{
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
    l->p++;
}

/* Blanks, newlines and comments (inside arrays). */
static void
skip_space(lexer_t *l)
{
  while (l->p < l->end) {
    if (*l->p == '\n') {
      l->line++;
      l->p++;
    } else if (*l->p == ' ' || *l->p == '\t' || *l->p == '\r') {
      l->p++;
    } else if (*l->p == '#') {
      while (l->p < l->end && *l->p != '\n')
        l->p++;
    } else {
      break;
    }
  }
}

static void
skip_to_eol(lexer_t *l)
{
  while (l->p < l->end && *l->p != '\n')
    l->p++;
}

static entry_t *
add_entry(sw_toml_t *t, const char *key)
{
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  entry_t *e = &t->v[t->n++];
  memset(e, 0, sizeof(*e));
  e->key = xstrdup(key);
  return e;
}

static void
put_utf8(sw_buf_t *b, unsigned long cp)
{
  if (cp < 0x80) {
    sw_buf_putc(b, (char)cp);
  } else if (cp < 0x800) {
    sw_buf_putc(b, (char)(0xC0 | (cp >> 6)));
    sw_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    sw_buf_putc(b, (char)(0xE0 | (cp >> 12)));
    sw_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    sw_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    cp = cp > 0x10FFFF ? 0xFFFD : cp;
    sw_buf_putc(b, (char)(0xF0 | (cp >> 18)));
    sw_buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
    sw_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    sw_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
  }
}

/* A string of any of TOML's four kinds; l->p is at the opening quote. */
static int
lex_string(lexer_t *l, char **out, sw_error_t *err)
{
  char q = *l->p;
  bool multi = l->end - l->p >= 3 && l->p[1] == q && l->p[2] == q;
  l->p += multi ? 3 : 1;
  if (multi && l->p < l->end && *l->p == '\n') {
    l->p++;
    l->line++;
  } else if (multi && l->end - l->p >= 2 && l->p[0] == '\r' && l->p[1] == '\n') {
    l->p += 2;
    l->line++;
  }
  sw_buf_t b = {0};
  for (;;) {
    if (l->p >= l->end || (!multi && *l->p == '\n')) {
      sw_buf_free(&b);
      return fail(l, err, "unterminated string");
    }
    char c = *l->p;
    if (c == q && (!multi || (l->end - l->p >= 3 && l->p[1] == q && l->p[2] == q))) {
      l->p += multi ? 3 : 1;
      break;
    }
    if (c == '\n')
      l->line++;
    if (c == '\\' && q == '"' && l->p + 1 < l->end) {
      char e = l->p[1];
      l->p += 2;
      switch (e) {
      case 'n':
        sw_buf_putc(&b, '\n');
        break;
      case 't':
        sw_buf_putc(&b, '\t');
        break;
      case 'r':
        sw_buf_putc(&b, '\r');
        break;
      case '"':
      case '\\':
        sw_buf_putc(&b, e);
        break;
      case 'u':
      case 'U': {
        int n = e == 'u' ? 4 : 8;
        unsigned long cp = 0;
        for (int i = 0; i < n; i++, l->p++) {
          if (l->p >= l->end || !isxdigit((unsigned char)*l->p)) {
            sw_buf_free(&b);
            return fail(l, err, "bad \\u escape");
          }
          char h = *l->p;
          cp = cp * 16 +
               (unsigned long)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
        }
        put_utf8(&b, cp);
        break;
      }
      case '\n':
      case ' ':
      case '\t':
      case '\r':
        /* A line-ending backslash in a multi-line string trims the blanks that follow. */
        if (e == '\n')
          l->line++;
        while (l->p < l->end && isspace((unsigned char)*l->p)) {
          if (*l->p == '\n')
            l->line++;
          l->p++;
        }
        break;
      default:
        sw_buf_putc(&b, e);
      }
      continue;
    }
    sw_buf_putc(&b, c);
    l->p++;
  }
  *out = sw_buf_steal(&b);
  return 0;
}

static bool
bare_key_char(char c)
{
  return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* A dotted key ("a.\"b c\".d"), appended to PREFIX. */
static int
lex_key(lexer_t *l, const char *prefix, char **out, sw_error_t *err)
{
  sw_buf_t b = {0};
  if (prefix && *prefix)
    sw_buf_puts(&b, prefix);
  for (;;) {
    skip_blank(l);
    if (b.len)
      sw_buf_putc(&b, '.');
    if (l->p < l->end && (*l->p == '"' || *l->p == '\'')) {
      char *s = NULL;
      if (lex_string(l, &s, err) < 0) {
        sw_buf_free(&b);
        return -1;
      }
      sw_buf_puts(&b, s);
      free(s);
    } else {
      const char *s = l->p;
      while (l->p < l->end && bare_key_char(*l->p))
        l->p++;
      if (l->p == s) {
        sw_buf_free(&b);
        return fail(l, err, "expected a key");
      }
      sw_buf_append(&b, s, (size_t)(l->p - s));
    }
    skip_blank(l);
    if (l->p < l->end && *l->p == '.') {
      l->p++;
      continue;
    }
    break;
  }
  *out = sw_buf_steal(&b);
  return 0;
}

static int parse_value(lexer_t *l, const char *key, sw_error_t *err);

/* Elements: strings go to the array's list; tables to KEY.N.…; anything else is skipped. */
static int
parse_array(lexer_t *l, const char *key, sw_error_t *err)
{
  entry_t *e = add_entry(l->t, key);
  size_t idx = (size_t)(e - l->t->v);
  l->t->v[idx].arr = xcalloc(1, sizeof(char *));
  l->p++;
  for (size_t n = 0;; n++) {
    skip_space(l);
    if (l->p >= l->end)
      return fail(l, err, "unterminated array");
    if (*l->p == ']') {
      l->p++;
      return 0;
    }
    if (*l->p == '"' || *l->p == '\'') {
      char *s = NULL;
      if (lex_string(l, &s, err) < 0)
        return -1;
      sw_strv_push_take(&l->t->v[idx].arr, s); /* add_entry may have moved v */
    } else {
      _cleanup_free_ char *sub = xasprintf("%s.%zu", key, n);
      if (parse_value(l, sub, err) < 0)
        return -1;
    }
    skip_space(l);
    if (l->p < l->end && *l->p == ',')
      l->p++;
    else if (l->p < l->end && *l->p != ']')
      return fail(l, err, "expected `,` or `]` in an array");
  }
}

static int parse_keyval(lexer_t *l, const char *prefix, sw_error_t *err);

static int
parse_inline_table(lexer_t *l, const char *key, sw_error_t *err)
{
  l->p++;
  for (;;) {
    skip_blank(l);
    if (l->p >= l->end || *l->p == '\n')
      return fail(l, err, "unterminated inline table");
    if (*l->p == '}') {
      l->p++;
      return 0;
    }
    if (parse_keyval(l, key, err) < 0)
      return -1;
    skip_blank(l);
    if (l->p < l->end && *l->p == ',')
      l->p++;
    else if (l->p < l->end && *l->p != '}')
      return fail(l, err, "expected `,` or `}` in an inline table");
  }
}

static int
parse_value(lexer_t *l, const char *key, sw_error_t *err)
{
  if (++l->depth > MAX_DEPTH)
    return fail(l, err, "values nested too deep");
  int rc = 0;
  if (l->p >= l->end) {
    rc = fail(l, err, "expected a value");
  } else if (*l->p == '"' || *l->p == '\'') {
    char *s = NULL;
    rc = lex_string(l, &s, err);
    if (rc == 0)
      add_entry(l->t, key)->str = s;
  } else if (*l->p == '[') {
    rc = parse_array(l, key, err);
  } else if (*l->p == '{') {
    rc = parse_inline_table(l, key, err);
  } else {
    const char *s = l->p;
    while (l->p < l->end && !strchr(",]}#\n", *l->p))
      l->p++;
    const char *e = l->p;
    while (e > s && isspace((unsigned char)e[-1]))
      e--;
    if (e == s)
      rc = fail(l, err, "expected a value");
    else
      add_entry(l->t, key)->str = xstrndup(s, (size_t)(e - s));
  }
  l->depth--;
  return rc;
}

static int
parse_keyval(lexer_t *l, const char *prefix, sw_error_t *err)
{
  _cleanup_free_ char *key = NULL;
  if (lex_key(l, prefix, &key, err) < 0)
    return -1;
  if (l->p >= l->end || *l->p != '=')
    return fail(l, err, "expected `=` after a key");
  l->p++;
  skip_blank(l);
  return parse_value(l, key, err);
}

/* `[[name]]`: the next index of that array of tables. */
static size_t
aot_next(sw_toml_t *t, const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; t->aot && t->aot[i]; i++)
    if (strncmp(t->aot[i], name, n) == 0 && t->aot[i][n] == '\t') {
      size_t k = strtoul(t->aot[i] + n + 1, NULL, 10) + 1;
      free(t->aot[i]);
      t->aot[i] = xasprintf("%s\t%zu", name, k);
      return k;
    }
  sw_strv_push_take(&t->aot, xasprintf("%s\t0", name));
  return 0;
}

/* `[package.deps]` after `[[package]]` is a table of the last `package` element. */
static char *
in_current_aot(const sw_toml_t *t, const char *name)
{
  for (size_t i = 0; t->aot && t->aot[i]; i++) {
    size_t n = strcspn(t->aot[i], "\t");
    if (strncmp(name, t->aot[i], n) == 0 && name[n] == '.')
      return xasprintf("%.*s.%s.%s", (int)n, name, t->aot[i] + n + 1, name + n + 1);
  }
  return xstrdup(name);
}

static int
parse_header(lexer_t *l, char **prefix, sw_error_t *err)
{
  bool aot = l->end - l->p >= 2 && l->p[1] == '[';
  l->p += aot ? 2 : 1;
  _cleanup_free_ char *name = NULL;
  if (lex_key(l, NULL, &name, err) < 0)
    return -1;
  if (l->p >= l->end || *l->p != ']' || (aot && (l->end - l->p < 2 || l->p[1] != ']')))
    return fail(l, err, "expected `]` after a table name");
  l->p += aot ? 2 : 1;
  free(*prefix);
  *prefix = aot ? xasprintf("%s.%zu", name, aot_next(l->t, name)) : in_current_aot(l->t, name);
  return 0;
}

int
sw_toml_parse(const char *path, const char *text, size_t len, sw_toml_t **out, sw_error_t *err)
{
  sw_toml_t *t = xcalloc(1, sizeof(*t));
  lexer_t l = {.path = path, .p = text, .end = text + len, .line = 1, .t = t};
  _cleanup_free_ char *prefix = xstrdup("");
  while (l.p < l.end) {
    skip_space(&l);
    if (l.p >= l.end)
      break;
    int rc = *l.p == '[' ? parse_header(&l, &prefix, err) : parse_keyval(&l, prefix, err);
    if (rc < 0) {
      sw_toml_free(t);
      return -1;
    }
    skip_blank(&l);
    if (l.p < l.end && *l.p == '#')
      skip_to_eol(&l);
    if (l.p < l.end && *l.p == '\r')
      l.p++;
    if (l.p < l.end && *l.p != '\n') {
      sw_toml_free(t);
      return fail(&l, err, "expected the end of the line");
    }
  }
  *out = t;
  return 0;
}

void
sw_toml_free(sw_toml_t *t)
{
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n; i++) {
    free(t->v[i].key);
    free(t->v[i].str);
    sw_strv_free(t->v[i].arr);
  }
  free(t->v);
  sw_strv_free(t->aot);
  free(t);
}

static const entry_t *
find(const sw_toml_t *t, const char *key)
{
  for (size_t i = 0; t && i < t->n; i++)
    if (strcmp(t->v[i].key, key) == 0)
      return &t->v[i];
  return NULL;
}

const char *
sw_toml_get(const sw_toml_t *t, const char *key)
{
  const entry_t *e = find(t, key);
  return e ? e->str : NULL;
}

char *const *
sw_toml_array(const sw_toml_t *t, const char *key)
{
  const entry_t *e = find(t, key);
  return e ? e->arr : NULL;
}

bool
sw_toml_has(const sw_toml_t *t, const char *key)
{
  size_t n = strlen(key);
  for (size_t i = 0; t && i < t->n; i++)
    if (strncmp(t->v[i].key, key, n) == 0 && (t->v[i].key[n] == '\0' || t->v[i].key[n] == '.'))
      return true;
  return false;
}

char **
sw_toml_children(const sw_toml_t *t, const char *key)
{
  size_t n = strlen(key);
  char **out = xcalloc(1, sizeof(char *));
  for (size_t i = 0; t && i < t->n; i++) {
    const char *k = t->v[i].key;
    if (strncmp(k, key, n) != 0 || k[n] != '.')
      continue;
    _cleanup_free_ char *child = xstrndup(k + n + 1, strcspn(k + n + 1, "."));
    if (!sw_strv_contains(out, child))
      sw_strv_push(&out, child);
  }
  return out;
}

/* ---- setup.cfg ---- */

char *
sw_ini_get(const char *text, size_t len, const char *section, const char *key)
{
  bool in_section = false, in_value = false;
  sw_buf_t b = {0};
  size_t pos = 0;
  while (pos < len) {
    const char *s = text + pos;
    const char *nl = memchr(s, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - s) : len - pos;
    pos += n + (nl ? 1 : 0);
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
      n--;
    bool indented = n && (s[0] == ' ' || s[0] == '\t');
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
      lead++;
    if (in_value && indented && lead < n && s[lead] != '#' && s[lead] != ';') {
      sw_buf_append(&b, "\n", 1);
      sw_buf_append(&b, s + lead, n - lead);
      continue;
    }
    if (in_value && (lead == n || (indented && (s[lead] == '#' || s[lead] == ';'))))
      continue; /* blank or comment lines inside a multi-line value */
    if (in_value)
      break;
    if (n && s[0] == '[') {
      const char *close = memchr(s, ']', n);
      in_section = close && (size_t)(close - s - 1) == strlen(section) &&
                   strncmp(s + 1, section, strlen(section)) == 0;
      continue;
    }
    if (!in_section || indented || n == 0 || s[0] == '#' || s[0] == ';')
      continue;
    size_t k = 0;
    while (k < n && s[k] != '=' && s[k] != ':')
      k++;
    if (k >= n)
      continue;
    size_t ke = k;
    while (ke && (s[ke - 1] == ' ' || s[ke - 1] == '\t'))
      ke--;
    if (ke != strlen(key) || strncmp(s, key, ke) != 0)
      continue;
    size_t v = k + 1;
    while (v < n && (s[v] == ' ' || s[v] == '\t'))
      v++;
    sw_buf_append(&b, s + v, n - v);
    in_value = true;
  }
  if (!in_value) {
    sw_buf_free(&b);
    return NULL;
  }
  return sw_buf_steal(&b);
}

/* ---- Python string literals ---- */

/* A Python string literal at *pp (optional r/b/u prefix; no f-strings): 1 and *out, or 0. */
static int
py_string(const char **pp, const char *end, char **out)
{
  const char *p = *pp;
  bool raw = false;
  while (p + 1 < end && *p && strchr("rRuU", *p)) {
    raw = raw || *p == 'r' || *p == 'R';
    p++;
  }
  if (p >= end || (*p != '"' && *p != '\''))
    return 0;
  char q = *p;
  bool triple = end - p >= 3 && p[1] == q && p[2] == q;
  p += triple ? 3 : 1;
  sw_buf_t b = {0};
  while (p < end) {
    if (*p == q && (!triple || (end - p >= 3 && p[1] == q && p[2] == q))) {
      *pp = p + (triple ? 3 : 1);
      *out = sw_buf_steal(&b);
      return 1;
    }
    if (*p == '\n' && !triple)
      break;
    if (*p == '\\' && !raw && p + 1 < end) {
      sw_buf_putc(&b, p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : p[1]);
      p += 2;
      continue;
    }
    sw_buf_putc(&b, *p++);
  }
  sw_buf_free(&b);
  return 0;
}

static const char *
py_skip(const char *p, const char *end)
{
  while (p < end) {
    if (isspace((unsigned char)*p)) {
      p++;
    } else if (*p == '#') {
      while (p < end && *p != '\n')
        p++;
    } else {
      break;
    }
  }
  return p;
}

/* Where `KEY` stands as a whole word followed by `=` (not `==`); NULL if nowhere. *after is
 * past the `=`. Keys at the start of a line or after `(`/`,`/blank qualify. */
static const char *
find_assignment(const char *text, size_t len, const char *key, const char **after)
{
  size_t kn = strlen(key);
  const char *end = text + len;
  for (const char *p = text; p && p + kn <= end;
       p = memmem(p + 1, (size_t)(end - p - 1), key, kn)) {
    if (memcmp(p, key, kn) != 0)
      continue;
    if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.'))
      continue;
    const char *q = p + kn;
    while (q < end && (*q == ' ' || *q == '\t'))
      q++;
    if (q >= end || *q != '=' || (q + 1 < end && q[1] == '='))
      continue;
    *after = py_skip(q + 1, end);
    return p;
  }
  return NULL;
}

int
sw_setuppy_list(const char *text, size_t len, const char *key, char ***out)
{
  const char *end = text + len, *p = NULL;
  if (find_assignment(text, len, key, &p) == NULL)
    return 0;
  if (p >= end || (*p != '[' && *p != '('))
    return -1;
  char close = *p == '[' ? ']' : ')';
  char **v = xcalloc(1, sizeof(char *));
  p = py_skip(p + 1, end);
  for (;;) {
    if (p < end && *p == close) {
      *out = v;
      return 1;
    }
    char *s = NULL;
    if (!py_string(&p, end, &s))
      break;
    sw_strv_push_take(&v, s);
    p = py_skip(p, end);
    if (p < end && *p == ',')
      p = py_skip(p + 1, end);
    else if (p >= end || *p != close)
      break;
  }
  sw_strv_free(v);
  return -1;
}

char *
sw_py_assigned_string(const char *text, size_t len, const char *key)
{
  const char *p = NULL, *end = text + len;
  if (find_assignment(text, len, key, &p) == NULL)
    return NULL;
  char *s = NULL;
  return py_string(&p, end, &s) ? s : NULL;
}

char *
sw_py_setdefault_string(const char *text, size_t len, const char *name)
{
  const char *end = text + len;
  size_t nn = strlen(name);
  for (const char *p = memmem(text, len, name, nn); p;
       p = memmem(p + 1, (size_t)(end - p - 1), name, nn)) {
    if (p == text || (p[-1] != '"' && p[-1] != '\'') || p + nn >= end || p[nn] != p[-1])
      continue;
    const char *q = py_skip(p + nn + 1, end);
    if (q >= end || *q != ',')
      continue;
    q = py_skip(q + 1, end);
    char *s = NULL;
    if (py_string(&q, end, &s))
      return s;
  }
  return NULL;
}
