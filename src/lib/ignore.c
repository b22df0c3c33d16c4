/* slipway: `.dockerignore` reading and matching; see ignore.h.
 *
 * Docker compiles each pattern into a regular expression; here a pattern compiles into a short
 * token list that a small NFA runs over the path's runes, which gives the same answers with a
 * hard O(path x pattern) bound (a `**` pattern cannot make the matcher backtrack). */
#include "ignore.h"
#include "gotext.h"
#include "util.h"

#include <sys/stat.h>

enum {
  T_LIT,     /* one rune */
  T_ANY,     /* '?': one rune but '/' */
  T_STAR,    /* '*': any run without '/' */
  T_DSTAR,   /* '**' followed by more pattern: nothing, or anything that ends in '/' */
  T_DSTAR_E, /* '**' at the end: anything */
  T_CLASS,   /* '[...]' */
};

typedef struct {
  int kind;
  int32_t r;
  /* T_CLASS: ranges lo/hi pairs */
  bool negated;
  int32_t *ranges;
  size_t n_ranges;
} tok_t;

typedef struct {
  char *text; /* cleaned, without the '!' */
  bool exclusion;
  tok_t *toks;
  size_t n_toks;
} pattern_t;

struct sw_ignore_s {
  pattern_t *pats;
  size_t n;
  bool has_exclusions;
};

/* ---- Go's filepath.Clean ---- */

static char *
path_clean(const char *p)
{
  size_t n = strlen(p);
  bool rooted = n > 0 && p[0] == '/';
  char *out = xmalloc(n + 2);
  size_t w = 0, r = 0, dotdot = 0;

  if (rooted) {
    out[w++] = '/';
    r = dotdot = 1;
  }
  while (r < n) {
    if (p[r] == '/') {
      r++;
    } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
      r++;
    } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
      r += 2;
      if (w > dotdot) {
        w--;
        while (w > dotdot && out[w] != '/')
          w--;
      } else if (!rooted) {
        if (w > 0)
          out[w++] = '/';
        out[w++] = '.';
        out[w++] = '.';
        dotdot = w;
      }
    } else {
      if ((rooted && w != 1) || (!rooted && w != 0))
        out[w++] = '/';
      for (; r < n && p[r] != '/'; r++)
        out[w++] = p[r];
    }
  }
  if (w == 0)
    out[w++] = '.';
  out[w] = '\0';
  return out;
}

/* ---- compiling a pattern ---- */

typedef struct {
  int32_t *r;
  size_t n;
} runes_t;

static runes_t
to_runes(const char *s)
{
  size_t n = strlen(s), i = 0;
  runes_t out = {xmalloc((n + 1) * sizeof(int32_t)), 0};
  while (i < n) {
    int w;
    out.r[out.n++] = sw_utf8_decode(s + i, n - i, &w);
    i += (size_t)w;
  }
  return out;
}

/* filepath.Match's getEsc: one class character, maybe escaped. */
static bool
class_char(const runes_t *p, size_t *i, int32_t *out)
{
  if (*i >= p->n || p->r[*i] == '-' || p->r[*i] == ']')
    return false;
  if (p->r[*i] == '\\' && ++*i >= p->n)
    return false;
  *out = p->r[(*i)++];
  return *i < p->n;
}

/* A `[...]` class starting after the '['; *i ends after the ']'. */
static bool
compile_class(const runes_t *p, size_t *i, tok_t *t)
{
  t->kind = T_CLASS;
  if (*i < p->n && p->r[*i] == '^') {
    t->negated = true;
    (*i)++;
  }
  for (;;) {
    int32_t lo, hi;
    if (*i < p->n && p->r[*i] == ']' && t->n_ranges > 0) {
      (*i)++;
      return true;
    }
    if (!class_char(p, i, &lo))
      return false;
    hi = lo;
    if (p->r[*i] == '-') {
      (*i)++;
      if (!class_char(p, i, &hi))
        return false;
    }
    t->ranges = xrealloc(t->ranges, (t->n_ranges + 1) * 2 * sizeof(int32_t));
    t->ranges[t->n_ranges * 2] = lo;
    t->ranges[t->n_ranges * 2 + 1] = hi;
    t->n_ranges++;
  }
}

static void
toks_free(tok_t *t, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(t[i].ranges);
  free(t);
}

static bool
compile(const char *text, tok_t **out, size_t *n_out)
{
  runes_t p = to_runes(text);
  tok_t *t = xcalloc(p.n + 1, sizeof(*t));
  size_t n = 0, i = 0;
  bool ok = true;

  while (ok && i < p.n) {
    int32_t r = p.r[i++];
    tok_t *k = &t[n++];
    if (r == '*' && i < p.n && p.r[i] == '*') {
      i++;
      if (i < p.n && p.r[i] == '/')
        i++;
      k->kind = i >= p.n ? T_DSTAR_E : T_DSTAR;
    } else if (r == '*') {
      k->kind = T_STAR;
    } else if (r == '?') {
      k->kind = T_ANY;
    } else if (r == '\\') {
      /* a trailing backslash is a syntax error for filepath.Match */
      ok = i < p.n;
      k->kind = T_LIT;
      k->r = ok ? p.r[i++] : 0;
    } else if (r == '[') {
      ok = compile_class(&p, &i, k);
    } else {
      k->kind = T_LIT;
      k->r = r;
    }
  }
  free(p.r);
  if (!ok) {
    toks_free(t, n);
    return false;
  }
  *out = t;
  *n_out = n;
  return true;
}

/* ---- matching: an NFA over token positions ---- */

static bool
class_has(const tok_t *t, int32_t c)
{
  bool in = false;
  for (size_t i = 0; i < t->n_ranges && !in; i++)
    in = c >= t->ranges[2 * i] && c <= t->ranges[2 * i + 1];
  return in != t->negated;
}

typedef struct {
  bool *at;     /* about to match token i (at[n] = accepted) */
  bool *inside; /* inside the `.*` of a T_DSTAR at token i */
} states_t;

static void
closure(const pattern_t *p, states_t *s)
{
  for (size_t i = 0; i < p->n_toks; i++)
    if (s->at[i] &&
        (p->toks[i].kind == T_STAR || p->toks[i].kind == T_DSTAR || p->toks[i].kind == T_DSTAR_E))
      s->at[i + 1] = true;
}

/* Feed one rune; returns whether any state is alive. */
static bool
step(const pattern_t *p, const states_t *cur, states_t *nxt, int32_t c)
{
  size_t n = p->n_toks;
  bool alive = false;

  memset(nxt->at, 0, (n + 1) * sizeof(bool));
  memset(nxt->inside, 0, (n + 1) * sizeof(bool));
  for (size_t i = 0; i < n; i++) {
    const tok_t *t = &p->toks[i];
    bool here = cur->at[i] || cur->inside[i];
    if (!here)
      continue;
    switch (t->kind) {
    case T_LIT:
      if (cur->at[i] && t->r == c)
        nxt->at[i + 1] = true;
      break;
    case T_ANY:
      if (cur->at[i] && c != '/')
        nxt->at[i + 1] = true;
      break;
    case T_CLASS:
      if (cur->at[i] && class_has(t, c))
        nxt->at[i + 1] = true;
      break;
    case T_STAR:
      if (cur->at[i] && c != '/')
        nxt->at[i] = true;
      break;
    case T_DSTAR_E:
      if (cur->at[i])
        nxt->at[i] = true;
      break;
    case T_DSTAR:
      nxt->inside[i] = true;
      if (c == '/')
        nxt->at[i + 1] = true;
      break;
    }
  }
  closure(p, nxt);
  for (size_t i = 0; i <= n; i++)
    alive |= nxt->at[i] || nxt->inside[i];
  return alive;
}

/* Run over LEN runes of S. Returns whether the whole of S matches, or (with PARENTS) any
 * prefix of S that ends before a '/' (a parent directory); *alive tells whether any state
 * survived the whole input. One pass: O(len x pattern). */
static bool
run(const pattern_t *p, const int32_t *s, size_t len, bool parents, bool *alive)
{
  size_t n = p->n_toks;
  _cleanup_free_ bool *mem = xcalloc(4 * (n + 1), sizeof(bool));
  states_t a = {mem, mem + (n + 1)}, b = {mem + 2 * (n + 1), mem + 3 * (n + 1)};
  states_t *cur = &a, *nxt = &b, *tmp;

  cur->at[0] = true;
  closure(p, cur);
  *alive = true;
  for (size_t i = 0; i < len; i++) {
    if (parents && s[i] == '/' && i > 0 && cur->at[n])
      return true;
    if (!step(p, cur, nxt, s[i])) {
      *alive = false;
      return false;
    }
    tmp = cur;
    cur = nxt;
    nxt = tmp;
  }
  return cur->at[n];
}

/* ---- reading ---- */

void
sw_ignore_free(sw_ignore_t *ig)
{
  if (ig == NULL)
    return;
  for (size_t i = 0; i < ig->n; i++) {
    free(ig->pats[i].text);
    toks_free(ig->pats[i].toks, ig->pats[i].n_toks);
  }
  free(ig->pats);
  free(ig);
}

static char *
trim(const char *s, size_t n)
{
  size_t st = 0, end = 0, i = 0;
  bool lead = true;

  while (i < n) {
    int w;
    int32_t r = sw_utf8_decode(s + i, n - i, &w);
    if (lead && sw_go_isspace(r))
      st = i + (size_t)w;
    else
      lead = false;
    i += (size_t)w;
    if (!sw_go_isspace(r))
      end = i;
  }
  return xstrndup(s + st, end > st ? end - st : 0);
}

static int
add_pattern(sw_ignore_t *ig, const char *source, int lineno, const char *line, sw_error_t *err)
{
  _cleanup_free_ char *pat = trim(line, strlen(line));
  _cleanup_free_ char *body = NULL;
  pattern_t p = {0};

  if (*pat == '\0' || *pat == '#')
    return 0;
  p.exclusion = *pat == '!';
  body = trim(pat + p.exclusion, strlen(pat + p.exclusion));
  if (*body) {
    char *c = path_clean(body);
    if (c[0] == '/' && c[1])
      memmove(c, c + 1, strlen(c));
    free(body);
    body = c;
  } else if (p.exclusion) {
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "%s:%d: illegal exclusion pattern: \"!\" (an exception needs a path)",
                         source, lineno);
  }
  if (!compile(body, &p.toks, &p.n_toks))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s:%d: bad pattern `%s`: syntax error in pattern",
                         source, lineno, body);
  p.text = steal_ptr(&body);
  ig->pats = xrealloc(ig->pats, (ig->n + 1) * sizeof(p));
  ig->pats[ig->n++] = p;
  ig->has_exclusions |= p.exclusion;
  return 0;
}

int
sw_ignore_parse(const char *source, const char *text, size_t len, sw_ignore_t **out,
                sw_error_t *err)
{
  sw_ignore_t *ig = xcalloc(1, sizeof(*ig));
  size_t pos = 0;
  int lineno = 0;

  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    pos = 3;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
    _cleanup_free_ char *line = xstrndup(text + pos, n);
    lineno++;
    pos += n + 1;
    if (add_pattern(ig, source ? source : ".dockerignore", lineno, line, err) < 0) {
      sw_ignore_free(ig);
      return -1;
    }
  }
  *out = ig;
  return 0;
}

int
sw_ignore_load(const char *path, sw_ignore_t **out, sw_error_t *err)
{
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  struct stat st;

  if (stat(path, &st) < 0 && errno == ENOENT)
    return sw_ignore_parse(path, "", 0, out, err);
  if (sw_read_file(path, 64u << 20, &data, &len, err) < 0)
    return -1;
  return sw_ignore_parse(path, data, len, out, err);
}

int
sw_ignore_load_for_build(const char *context_dir, const char *dockerfile, sw_ignore_t **out,
                         sw_error_t *err)
{
  struct stat st;

  if (dockerfile) {
    _cleanup_free_ char *beside = xasprintf("%s.dockerignore", dockerfile);
    if (stat(beside, &st) == 0)
      return sw_ignore_load(beside, out, err);
  }
  {
    _cleanup_free_ char *ctx = xasprintf("%s/.dockerignore", context_dir ? context_dir : ".");
    return sw_ignore_load(ctx, out, err);
  }
}

/* ---- queries ---- */

static char *
clean_rel(const char *path)
{
  char *c = path_clean(path);
  if (c[0] == '/') {
    char *r = xstrdup(c[1] ? c + 1 : ".");
    free(c);
    return r;
  }
  return c;
}

bool
sw_ignore_match(const sw_ignore_t *ig, const char *path)
{
  _cleanup_free_ char *p = NULL;
  runes_t r;
  bool matched = false;

  if (ig == NULL || ig->n == 0)
    return false;
  p = clean_rel(path);
  r = to_runes(p);
  for (size_t i = 0; i < ig->n; i++) {
    const pattern_t *pat = &ig->pats[i];
    bool m, alive;
    /* an exclusion can only change an excluded path, an inclusion only a kept one; the path
     * or one of its parent directories must match */
    if (pat->exclusion != matched)
      continue;
    m = run(pat, r.r, r.n, true, &alive);
    if (m)
      matched = !pat->exclusion;
  }
  free(r.r);
  return matched;
}

bool
sw_ignore_may_include_below(const sw_ignore_t *ig, const char *dir)
{
  _cleanup_free_ char *d = NULL;
  _cleanup_free_ char *slash = NULL;
  runes_t r;
  bool any = false;

  if (ig == NULL || !ig->has_exclusions)
    return false;
  d = clean_rel(dir);
  slash = xasprintf("%s/", d);
  r = to_runes(slash);
  /* an exception can apply below DIR only if it can match some "DIR/…" path: feed "DIR/" to
   * its NFA and see whether any state survives */
  for (size_t i = 0; i < ig->n && !any; i++) {
    bool alive;
    if (!ig->pats[i].exclusion)
      continue;
    run(&ig->pats[i], r.r, r.n, false, &alive);
    any = alive;
  }
  free(r.r);
  return any;
}

size_t
sw_ignore_count(const sw_ignore_t *ig)
{
  return ig ? ig->n : 0;
}

bool
sw_ignore_has_exceptions(const sw_ignore_t *ig)
{
  return ig && ig->has_exclusions;
}
