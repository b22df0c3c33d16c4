/* slipway: BuildKit's shell-lexer word expansion; see shellword.h.
 *
 * The structure follows the behaviour of BuildKit's lexer (a scanner over runes, a "stop on"
 * loop that handles quotes, escapes and `$`, and a word splitter that only splits text that
 * came from `$` substitutions or unquoted characters), re-implemented here. Shell patterns for
 * `#`, `%` and `/` are matched with a small NFA instead of regular expressions, so a pattern can
 * never take more than O(value x pattern) steps per start position. */
#include "shellword.h"
#include "gotext.h"
#include "util.h"

#define EOF_RUNE (-1)

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
} scan_t;

typedef struct {
  scan_t sc;
  char escape;
  unsigned flags;
  bool raw_escapes;
  char *const *env;
  sw_shlex_t *lx;
} lexer_t;

/* The word splitter: text from quotes is taken whole, other text splits on spaces. */
typedef struct {
  sw_buf_t word;
  char **words;
  bool in_word;
} words_t;

static int32_t
scan_peek(scan_t *sc)
{
  int w;

  if (sc->pos >= sc->len)
    return EOF_RUNE;
  return sw_utf8_decode(sc->s + sc->pos, sc->len - sc->pos, &w);
}

static int32_t
scan_next(scan_t *sc)
{
  int w;
  int32_t r;

  if (sc->pos >= sc->len)
    return EOF_RUNE;
  r = sw_utf8_decode(sc->s + sc->pos, sc->len - sc->pos, &w);
  sc->pos += (size_t)w;
  return r;
}

static void
words_flush(words_t *w)
{
  if (w->word.len > 0)
    sw_strv_push_take(&w->words, sw_buf_steal(&w->word));
  w->in_word = false;
}

static void
words_add_raw_char(words_t *w, int32_t r)
{
  sw_utf8_put(&w->word, r);
  w->in_word = true;
}

static void
words_add_char(words_t *w, int32_t r)
{
  if (sw_go_isspace(r)) {
    if (w->in_word && w->word.len > 0)
      words_flush(w);
  } else {
    words_add_raw_char(w, r);
  }
}

static void
words_add_string(words_t *w, const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    int width;
    int32_t r = sw_utf8_decode(s + i, n - i, &width);
    words_add_char(w, r);
    i += (size_t)width;
  }
}

static void
words_add_raw_string(words_t *w, const char *s, size_t n)
{
  sw_buf_append(&w->word, s, n);
  w->in_word = true;
}

static void
words_free(words_t *w)
{
  sw_buf_free(&w->word);
  sw_strv_free(w->words);
  w->words = NULL;
}

/* ---- environment ---- */

static const char *
env_lookup(lexer_t *lx, const char *name)
{
  const char *found = NULL;
  size_t nlen = strlen(name);

  for (char *const *e = lx->env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
    if (klen == nlen && memcmp(*e, name, nlen) == 0)
      found = eq ? eq + 1 : "";
  }
  if (found && lx->lx && lx->lx->track && !sw_strv_contains(lx->lx->matched, name))
    sw_strv_push(&lx->lx->matched, name);
  return found;
}

/* ---- shell patterns (`*`, `?`, `\` escapes) over runes ---- */

enum { PAT_LIT, PAT_ANY, PAT_STAR };
typedef struct {
  int kind;
  int32_t r;
} pat_tok_t;

typedef struct {
  int32_t *r;
  size_t n;
} runes_t;

static void
runes_from(runes_t *out, const char *s, size_t n)
{
  size_t i = 0;
  out->r = xmalloc((n + 1) * sizeof(int32_t));
  out->n = 0;
  while (i < n) {
    int w;
    out->r[out->n++] = sw_utf8_decode(s + i, n - i, &w);
    i += (size_t)w;
  }
}

static void
runes_put(sw_buf_t *b, const int32_t *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sw_utf8_put(b, r[i]);
}

static void
runes_reverse(int32_t *r, size_t n)
{
  for (size_t i = 0; i < n / 2; i++) {
    int32_t t = r[i];
    r[i] = r[n - 1 - i];
    r[n - 1 - i] = t;
  }
}

static int
pattern_compile(const char *pat, pat_tok_t **out, size_t *n_out, sw_error_t *err)
{
  runes_t p;
  pat_tok_t *toks;
  size_t n = 0;

  runes_from(&p, pat, strlen(pat));
  toks = xmalloc((p.n + 1) * sizeof(*toks));
  for (size_t i = 0; i < p.n; i++) {
    int32_t r = p.r[i];
    if (r == '*') {
      toks[n++] = (pat_tok_t){PAT_STAR, 0};
    } else if (r == '?') {
      toks[n++] = (pat_tok_t){PAT_ANY, 0};
    } else if (r == '\\') {
      /* `\}` and `\/` escape the ${} syntax, not the pattern */
      if (i + 1 < p.n && (p.r[i + 1] == '}' || p.r[i + 1] == '/'))
        continue;
      if (i + 1 >= p.n || (p.r[i + 1] != '*' && p.r[i + 1] != '?' && p.r[i + 1] != '\\')) {
        free(toks);
        free(p.r);
        return sw_error(err, 0, "invalid pattern (%s) in substitution: invalid escape", pat);
      }
      toks[n++] = (pat_tok_t){PAT_LIT, p.r[++i]};
    } else {
      toks[n++] = (pat_tok_t){PAT_LIT, r};
    }
  }
  free(p.r);
  *out = toks;
  *n_out = n;
  return 0;
}

/* Run the pattern anchored at v[start]; ends[k] tells whether v[start..start+k) matches it,
 * for k up to the returned count (positions visited; the NFA stops when no state is alive).
 * *any tells whether some end matched. NFA states are token positions; a star loops. */
static size_t
pattern_ends(const pat_tok_t *t, size_t nt, const int32_t *v, size_t nv, size_t start, bool *ends,
             bool *any)
{
  _cleanup_free_ bool *cur = xcalloc(nt + 1, sizeof(bool));
  _cleanup_free_ bool *nxt = xcalloc(nt + 1, sizeof(bool));
  size_t k;

  *any = false;
  cur[0] = true;
  for (k = 0;; k++) {
    bool alive = false;
    /* epsilon closure: a star may match nothing */
    for (size_t i = 0; i < nt; i++)
      if (cur[i] && t[i].kind == PAT_STAR)
        cur[i + 1] = true;
    ends[k] = cur[nt];
    *any |= cur[nt];
    if (start + k >= nv)
      break;
    memset(nxt, 0, (nt + 1) * sizeof(bool));
    for (size_t i = 0; i < nt; i++) {
      if (!cur[i])
        continue;
      if (t[i].kind == PAT_STAR)
        nxt[i] = true;
      else if (t[i].kind == PAT_ANY || t[i].r == v[start + k])
        nxt[i + 1] = true;
    }
    for (size_t i = 0; i <= nt; i++)
      alive |= nxt[i];
    if (!alive)
      break;
    memcpy(cur, nxt, (nt + 1) * sizeof(bool));
  }
  return k + 1;
}

/* Length of the shortest (or longest) prefix of V matching the pattern, or -1. */
static long
pattern_prefix(const pat_tok_t *t, size_t nt, const int32_t *v, size_t nv, bool longest)
{
  _cleanup_free_ bool *ends = xcalloc(nv + 1, sizeof(bool));
  long best = -1;
  bool any;
  size_t n = pattern_ends(t, nt, v, nv, 0, ends, &any);

  if (!any)
    return -1;
  for (size_t k = 0; k < n; k++)
    if (ends[k]) {
      best = (long)k;
      if (!longest)
        break;
    }
  return best;
}

/* ${V#p} ${V##p} ${V%p} ${V%%p} */
static int
trim_pattern(const char *pattern, const char *value, bool suffix, bool longest, char **out,
             sw_error_t *err)
{
  _cleanup_free_ pat_tok_t *toks = NULL;
  size_t nt;
  runes_t v;
  long k;
  sw_buf_t b = {0};

  if (pattern_compile(pattern, &toks, &nt, err) < 0)
    return -1;
  runes_from(&v, value, strlen(value));
  if (suffix) {
    /* the shortest rightmost match is the shortest leftmost one of the reversed strings */
    for (size_t i = 0; i < nt / 2; i++) {
      pat_tok_t tmp = toks[i];
      toks[i] = toks[nt - 1 - i];
      toks[nt - 1 - i] = tmp;
    }
    runes_reverse(v.r, v.n);
  }
  k = pattern_prefix(toks, nt, v.r, v.n, longest);
  if (k < 0)
    k = 0;
  if (suffix) {
    runes_reverse(v.r, v.n);
    runes_put(&b, v.r, v.n - (size_t)k);
  } else {
    runes_put(&b, v.r + k, v.n - (size_t)k);
  }
  free(v.r);
  *out = sw_buf_steal(&b);
  return 0;
}

/* Leftmost start of a match at or after FROM, or -1: one unanchored pass where every state
 * remembers the smallest start that reached it, stopped as soon as no smaller start can still
 * win. O(value x pattern). */
static long
pattern_leftmost(const pat_tok_t *t, size_t nt, const int32_t *v, size_t nv, size_t from)
{
  _cleanup_free_ long *cur = xmalloc((nt + 1) * sizeof(long));
  _cleanup_free_ long *nxt = xmalloc((nt + 1) * sizeof(long));
  long best = -1;

  for (size_t i = 0; i <= nt; i++)
    cur[i] = -1;
  for (size_t k = from;; k++) {
    bool pending = false;
    if (cur[0] < 0)
      cur[0] = (long)k;
    for (size_t i = 0; i < nt; i++)
      if (cur[i] >= 0 && t[i].kind == PAT_STAR && (cur[i + 1] < 0 || cur[i] < cur[i + 1]))
        cur[i + 1] = cur[i];
    if (cur[nt] >= 0 && (best < 0 || cur[nt] < best))
      best = cur[nt];
    for (size_t i = 0; i <= nt; i++)
      pending |= cur[i] >= 0 && (best < 0 || cur[i] < best);
    if (k >= nv || (best >= 0 && !pending))
      break;
    for (size_t i = 0; i <= nt; i++)
      nxt[i] = -1;
    for (size_t i = 0; i < nt; i++) {
      size_t to;
      if (cur[i] < 0)
        continue;
      if (t[i].kind == PAT_STAR)
        to = i;
      else if (t[i].kind == PAT_ANY || t[i].r == v[k])
        to = i + 1;
      else
        continue;
      if (nxt[to] < 0 || cur[i] < nxt[to])
        nxt[to] = cur[i];
    }
    memcpy(cur, nxt, (nt + 1) * sizeof(long));
  }
  return best;
}

/* ${V/p/r} and ${V//p/r}: leftmost match, longest at that position (greedy `*`). */
static int
replace_pattern(const char *pattern, const char *value, const char *repl, bool all, char **out,
                sw_error_t *err)
{
  _cleanup_free_ pat_tok_t *toks = NULL;
  _cleanup_free_ bool *ends = NULL;
  size_t nt, search = 0, last_end = 0;
  runes_t v;
  sw_buf_t b = {0};

  if (pattern_compile(pattern, &toks, &nt, err) < 0)
    return -1;
  runes_from(&v, value, strlen(value));
  ends = xcalloc(v.n + 1, sizeof(bool));
  while (search <= v.n) {
    long s = pattern_leftmost(toks, nt, v.r, v.n, search);
    size_t e = 0;
    if (s < 0)
      break;
    bool any;
    size_t n = pattern_ends(toks, nt, v.r, v.n, (size_t)s, ends, &any);
    for (size_t k = 0; k < n; k++)
      if (ends[k])
        e = (size_t)s + k;
    runes_put(&b, v.r + last_end, (size_t)s - last_end);
    /* an empty match right after a match is not replaced (Go's ReplaceAll) */
    if (e > last_end || s == 0 || !all)
      sw_buf_puts(&b, repl);
    if (b.len > SW_SHLEX_MAX_RESULT) {
      free(v.r);
      sw_buf_free(&b);
      return sw_error(err, 0, "substitution result larger than %d bytes", SW_SHLEX_MAX_RESULT);
    }
    last_end = e;
    if (!all)
      break;
    search = e > search ? e : search + 1;
  }
  runes_put(&b, v.r + last_end, v.n - last_end);
  free(v.r);
  *out = sw_buf_steal(&b);
  return 0;
}

/* ---- the lexer ---- */

/* Append a substitution's value, refusing results that grow without bound. */
static int
put_checked(sw_buf_t *b, const char *v, sw_error_t *err)
{
  sw_buf_puts(b, v);
  if (b->len > SW_SHLEX_MAX_RESULT)
    return sw_error(err, 0, "expansion larger than %d bytes", SW_SHLEX_MAX_RESULT);
  return 0;
}

static int process_stop_on(lexer_t *lx, int32_t stop, bool raw_escapes, char **out,
                           char ***words_out, sw_error_t *err);

static char *
process_name(lexer_t *lx)
{
  sw_buf_t name = {0};
  int32_t r;

  while ((r = scan_peek(&lx->sc)) != EOF_RUNE) {
    if (name.len == 0 && sw_go_isdigit(r)) {
      while ((r = scan_peek(&lx->sc)) != EOF_RUNE && sw_go_isdigit(r))
        sw_utf8_put(&name, scan_next(&lx->sc));
      return sw_buf_steal(&name);
    }
    if (name.len == 0 && strchr("@*#?-$!0", (int)r) != NULL && r != 0) {
      sw_utf8_put(&name, scan_next(&lx->sc));
      return sw_buf_steal(&name);
    }
    if (!sw_go_isletter(r) && !sw_go_isdigit(r) && r != '_')
      break;
    sw_utf8_put(&name, scan_next(&lx->sc));
  }
  return sw_buf_steal(&name);
}

static int
apply_modifier(lexer_t *lx, const char *name, int32_t mod, bool null_is_unset, const char *word,
               char **out, sw_error_t *err)
{
  const char *value = env_lookup(lx, name);
  bool unset = value == NULL || (null_is_unset && *value == '\0');

  switch (mod) {
  case '-':
    *out = xstrdup(unset ? word : value);
    return 0;
  case '+':
    *out = xstrdup(unset ? "" : word);
    return 0;
  case '?':
    if (value == NULL)
      return sw_error(err, 0, "%s: %s", name, *word ? word : "is not allowed to be unset");
    if (null_is_unset && *value == '\0')
      return sw_error(err, 0, "%s: %s", name, *word ? word : "is not allowed to be empty");
    *out = xstrdup(value);
    return 0;
  case '#':
  case '%': {
    bool longest = word[0] == (char)mod;
    return trim_pattern(longest ? word + 1 : word, value ? value : "", mod == '%', longest, out,
                        err);
  }
  default:
    return sw_error(err, 0, "unsupported modifier (%s%c) in substitution", null_is_unset ? ":" : "",
                    (int)mod);
  }
}

static int
process_braces(lexer_t *lx, char **out, sw_error_t *err)
{
  _cleanup_free_ char *name = NULL;
  _cleanup_free_ char *word = NULL;
  int32_t r = scan_peek(&lx->sc);
  bool null_is_unset = false;

  if (r == EOF_RUNE)
    return sw_error(err, 0, "syntax error: missing '}'");
  if (r == '{' || r == '}' || r == ':')
    return sw_error(err, 0, "syntax error: bad substitution");
  name = process_name(lx);
  r = scan_next(&lx->sc);
  if (r == EOF_RUNE)
    return sw_error(err, 0, "syntax error: missing '}'");
  if (r == '}') {
    const char *value = env_lookup(lx, name);
    if (value == NULL && (lx->flags & SW_SHLEX_SKIP_UNSET))
      *out = xasprintf("${%s}", name);
    else
      *out = xstrdup(value ? value : "");
    return 0;
  }
  if (r == '/') {
    _cleanup_free_ char *pattern = NULL;
    _cleanup_free_ char *repl = NULL;
    bool all = scan_peek(&lx->sc) == '/';
    if (all)
      scan_next(&lx->sc);
    if (process_stop_on(lx, '/', true, &pattern, NULL, err) < 0)
      return scan_peek(&lx->sc) == EOF_RUNE ? sw_error(err, 0, "syntax error: missing '/' in ${}")
                                            : -1;
    if (process_stop_on(lx, '}', true, &repl, NULL, err) < 0)
      return scan_peek(&lx->sc) == EOF_RUNE ? sw_error(err, 0, "syntax error: missing '}'") : -1;
    const char *value = env_lookup(lx, name);
    if (value == NULL && (lx->flags & SW_SHLEX_SKIP_UNSET)) {
      *out = xasprintf("${%s/%s/%s}", name, pattern, repl);
      return 0;
    }
    return replace_pattern(pattern, value ? value : "", repl, all, out, err);
  }
  if (r == ':') {
    null_is_unset = true;
    r = scan_next(&lx->sc);
  }
  /* after ':' BuildKit reads the word before it judges the modifier */
  if (!null_is_unset && r != '+' && r != '-' && r != '?' && r != '#' && r != '%') {
    if (r == EOF_RUNE)
      return sw_error(err, 0, "syntax error: missing '}'");
    return sw_error(err, 0, "unsupported modifier (%s%c) in substitution", null_is_unset ? ":" : "",
                    r < 0x80 ? (int)r : '?');
  }
  if (r == EOF_RUNE)
    return sw_error(err, 0, "syntax error: missing '}'");
  if (process_stop_on(lx, '}', r == '#' || r == '%', &word, NULL, err) < 0)
    return scan_peek(&lx->sc) == EOF_RUNE ? sw_error(err, 0, "syntax error: missing '}'") : -1;
  if (env_lookup(lx, name) == NULL && (lx->flags & SW_SHLEX_SKIP_UNSET)) {
    *out = xasprintf("${%s%s%c%s}", name, null_is_unset ? ":" : "", (int)r, word);
    return 0;
  }
  return apply_modifier(lx, name, r, null_is_unset, word, out, err);
}

static int
process_dollar(lexer_t *lx, char **out, sw_error_t *err)
{
  scan_next(&lx->sc); /* the '$' */
  if (scan_peek(&lx->sc) != '{') {
    _cleanup_free_ char *name = process_name(lx);
    const char *value;
    if (*name == '\0') {
      *out = xstrdup("$");
      return 0;
    }
    value = env_lookup(lx, name);
    if (value == NULL && (lx->flags & SW_SHLEX_SKIP_UNSET))
      *out = xasprintf("$%s", name);
    else
      *out = xstrdup(value ? value : "");
    return 0;
  }
  scan_next(&lx->sc); /* the '{' */
  return process_braces(lx, out, err);
}

static int
process_single_quote(lexer_t *lx, sw_buf_t *res, sw_error_t *err)
{
  int32_t r = scan_next(&lx->sc);

  if (lx->flags & SW_SHLEX_RAW_QUOTES)
    sw_utf8_put(res, r);
  for (;;) {
    r = scan_next(&lx->sc);
    if (r == EOF_RUNE)
      return sw_error(err, 0,
                      "unexpected end of statement while looking for matching single-quote");
    if (r == '\'') {
      if (lx->flags & SW_SHLEX_RAW_QUOTES)
        sw_utf8_put(res, r);
      return 0;
    }
    sw_utf8_put(res, r);
  }
}

static int
process_double_quote(lexer_t *lx, sw_buf_t *res, sw_error_t *err)
{
  int32_t r = scan_next(&lx->sc);

  if (lx->flags & SW_SHLEX_RAW_QUOTES)
    sw_utf8_put(res, r);
  for (;;) {
    r = scan_peek(&lx->sc);
    if (r == EOF_RUNE)
      return sw_error(err, 0,
                      "unexpected end of statement while looking for matching double-quote");
    if (r == '"') {
      scan_next(&lx->sc);
      if (lx->flags & SW_SHLEX_RAW_QUOTES)
        sw_utf8_put(res, r);
      return 0;
    }
    if (r == '$') {
      _cleanup_free_ char *v = NULL;
      if (process_dollar(lx, &v, err) < 0 || put_checked(res, v, err) < 0)
        return -1;
      continue;
    }
    r = scan_next(&lx->sc);
    if (r == lx->escape) {
      int32_t p = scan_peek(&lx->sc);
      if (lx->raw_escapes)
        sw_utf8_put(res, r);
      if (p == EOF_RUNE)
        continue; /* a trailing escape is dropped */
      /* only `"`, `$` and the escape itself can be escaped; otherwise it stays literal */
      if (p == '"' || p == '$' || p == lx->escape)
        r = scan_next(&lx->sc);
    }
    sw_utf8_put(res, r);
  }
}

static int
process_stop_on(lexer_t *lx, int32_t stop, bool raw_escapes, char **out, char ***words_out,
                sw_error_t *err)
{
  _cleanup_buf_ sw_buf_t res = {0};
  words_t w = {0};
  bool saved = lx->raw_escapes;
  bool quotes = !(lx->flags & SW_SHLEX_SKIP_QUOTES);
  int ret = -1;
  int32_t r;

  lx->raw_escapes = raw_escapes;
  while ((r = scan_peek(&lx->sc)) != EOF_RUNE) {
    if (stop != EOF_RUNE && r == stop) {
      scan_next(&lx->sc);
      goto done;
    }
    if (r == '$') {
      _cleanup_free_ char *v = NULL;
      if (process_dollar(lx, &v, err) < 0)
        goto fail;
      if (put_checked(&res, v, err) < 0)
        goto fail;
      words_add_string(&w, v, strlen(v));
    } else if (quotes && (r == '\'' || r == '"')) {
      _cleanup_buf_ sw_buf_t q = {0};
      if ((r == '\'' ? process_single_quote(lx, &q, err) : process_double_quote(lx, &q, err)) < 0)
        goto fail;
      sw_buf_append(&res, q.data ? q.data : "", q.len);
      words_add_raw_string(&w, q.data ? q.data : "", q.len);
    } else {
      r = scan_next(&lx->sc);
      if (r == lx->escape) {
        if (lx->raw_escapes) {
          words_add_raw_char(&w, r);
          sw_utf8_put(&res, r);
        }
        r = scan_next(&lx->sc);
        if (r == EOF_RUNE)
          break;
        words_add_raw_char(&w, r);
      } else {
        words_add_char(&w, r);
      }
      sw_utf8_put(&res, r);
    }
  }
  if (stop != EOF_RUNE) {
    sw_error(err, 0, "unexpected end of statement while looking for matching %c", (int)stop);
    goto fail;
  }
done:
  words_flush(&w);
  if (words_out)
    *words_out = w.words ? steal_ptr(&w.words) : xcalloc(1, sizeof(char *));
  *out = sw_buf_steal(&res);
  ret = 0;
fail:
  words_free(&w);
  lx->raw_escapes = saved;
  return ret;
}

static int
expand(sw_shlex_t *opts, const char *word, char *const *env, char **out, char ***words,
       sw_error_t *err)
{
  lexer_t lx = {0};
  _cleanup_free_ char *res = NULL;
  char **w = NULL;
  _cleanup_free_ char *quoted = NULL;

  lx.sc.s = word;
  lx.sc.len = strlen(word);
  /* Go's text/scanner skips a byte-order mark at the start */
  if (sw_str_has_prefix(word, "\xEF\xBB\xBF"))
    lx.sc.pos = 3;
  lx.escape = opts && opts->escape ? opts->escape : '\\';
  lx.flags = opts ? opts->flags : 0;
  lx.raw_escapes = (lx.flags & SW_SHLEX_RAW_ESCAPES) != 0;
  lx.env = env;
  lx.lx = opts;
  if (process_stop_on(&lx, EOF_RUNE, lx.raw_escapes, &res, &w, err) < 0) {
    quoted = sw_go_quote(word);
    return sw_error_wrap(err, "failed to process %s", quoted);
  }
  if (out)
    *out = steal_ptr(&res);
  if (words)
    *words = w;
  else
    sw_strv_free(w);
  return 0;
}

int
sw_shlex_expand(sw_shlex_t *lx, const char *word, char *const *env, char **out, sw_error_t *err)
{
  return expand(lx, word, env, out, NULL, err);
}

int
sw_shlex_expand_words(sw_shlex_t *lx, const char *word, char *const *env, char ***out,
                      sw_error_t *err)
{
  return expand(lx, word, env, NULL, out, err);
}

int
sw_word_expand(const char *word, char *const *env, char escape, char **out, sw_error_t *err)
{
  sw_shlex_t lx = {.escape = escape};
  return expand(&lx, word, env, out, NULL, err);
}

int
sw_word_expand_words(const char *word, char *const *env, char escape, char ***out, sw_error_t *err)
{
  sw_shlex_t lx = {.escape = escape};
  return expand(&lx, word, env, NULL, out, err);
}
