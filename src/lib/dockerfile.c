/* slipway: the Dockerfile parser; see dockerfile.h.
 *
 * It reproduces what BuildKit's parser (frontend/dockerfile/parser) does, quirks included,
 * because users' Dockerfiles rely on them: the physical-line loop with directives and comment
 * handling, the continuation rule (escape char at the end, not preceded by another one),
 * comment and blank lines skipped inside a continuation, heredoc bodies read after the line that
 * names them, the per-instruction argument parsers (JSON or shell form, whitespace lists,
 * name=value words) and the byte-wise flag scanner. */
#include "dockerfile.h"
#include "gotext.h"
#include "shellword.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>

static const char *const kind_names[] = {
    [SW_INSN_UNKNOWN] = "UNKNOWN", [SW_INSN_ADD] = "ADD",
    [SW_INSN_ARG] = "ARG",         [SW_INSN_CMD] = "CMD",
    [SW_INSN_COPY] = "COPY",       [SW_INSN_ENTRYPOINT] = "ENTRYPOINT",
    [SW_INSN_ENV] = "ENV",         [SW_INSN_EXPOSE] = "EXPOSE",
    [SW_INSN_FROM] = "FROM",       [SW_INSN_HEALTHCHECK] = "HEALTHCHECK",
    [SW_INSN_LABEL] = "LABEL",     [SW_INSN_MAINTAINER] = "MAINTAINER",
    [SW_INSN_ONBUILD] = "ONBUILD", [SW_INSN_RUN] = "RUN",
    [SW_INSN_SHELL] = "SHELL",     [SW_INSN_STOPSIGNAL] = "STOPSIGNAL",
    [SW_INSN_USER] = "USER",       [SW_INSN_VOLUME] = "VOLUME",
    [SW_INSN_WORKDIR] = "WORKDIR",
};

sw_insn_kind_t
sw_insn_kind_from_name(const char *name)
{
  for (size_t i = 1; i < SW_ARRAY_SIZE(kind_names); i++)
    if (strcasecmp(name, kind_names[i]) == 0)
      return (sw_insn_kind_t)i;
  return SW_INSN_UNKNOWN;
}

/* Levenshtein distance of two short words, case-insensitive; stops counting past 3. */
static size_t
edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 32 || lb > 32)
    return 99;
  size_t row[33];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      size_t best = diag + cost;
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *
sw_insn_suggest(const char *name)
{
  const char *best = NULL;
  size_t best_d = 3; /* as BuildKit's suggest: at most 2 edits away */
  for (size_t i = 1; i < SW_ARRAY_SIZE(kind_names); i++) {
    size_t d = edit_distance(name, kind_names[i]);
    if (d < best_d) {
      best_d = d;
      best = kind_names[i];
    }
  }
  return best;
}

char *
sw_insn_unknown_msg(const sw_insn_t *insn)
{
  /* The keyword as written (insn->name is lower-cased): the first word of the line. */
  const char *o = insn->original ? insn->original : insn->name;
  size_t n = strcspn(o, " \t\r\n");
  const char *hint = sw_insn_suggest(insn->name);
  if (hint)
    return xasprintf("unknown instruction: %.*s (did you mean %s?)", (int)n, o, hint);
  return xasprintf("unknown instruction: %.*s", (int)n, o);
}

const char *
sw_insn_kind_name(sw_insn_kind_t kind)
{
  if ((size_t)kind >= SW_ARRAY_SIZE(kind_names))
    return "UNKNOWN";
  return kind_names[kind];
}

/* ---- small string helpers, Go semantics ---- */

/* Go's [\t\v\f\r ] (the parser's reWhitespace). */
static bool
is_ws(char c)
{
  return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* unicode.IsSpace(rune(b)) on a single byte, as BuildKit's byte-wise scanners do. */
static bool
is_space_byte(unsigned char c)
{
  return (c >= '\t' && c <= '\r') || c == ' ' || c == 0x85 || c == 0xA0;
}

/* Length of the leading run of Unicode spaces. */
static size_t
lead_space_len(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    int w;
    int32_t r = sw_utf8_decode(s + i, n - i, &w);
    if (!sw_go_isspace(r))
      break;
    i += (size_t)w;
  }
  return i;
}

/* strings.TrimSpace: returns a new string. */
static char *
trim_space(const char *s, size_t n)
{
  size_t start = lead_space_len(s, n), end = start, i = start;

  while (i < n) {
    int w;
    int32_t r = sw_utf8_decode(s + i, n - i, &w);
    i += (size_t)w;
    if (!sw_go_isspace(r))
      end = i;
  }
  return xstrndup(s + start, end - start);
}

/* ---- instructions ---- */

static void
insn_free_fields(sw_insn_t *in)
{
  free(in->name);
  free(in->original);
  sw_strv_free(in->flags);
  sw_strv_free(in->args);
  for (size_t i = 0; i < in->n_heredocs; i++) {
    free(in->heredocs[i].name);
    free(in->heredocs[i].content);
  }
  free(in->heredocs);
  for (size_t i = 0; i < in->n_kvs; i++) {
    free(in->kvs[i].key);
    free(in->kvs[i].value);
  }
  free(in->kvs);
  if (in->sub) {
    insn_free_fields(in->sub);
    free(in->sub);
  }
}

void
sw_dockerfile_free(sw_dockerfile_t *df)
{
  if (df == NULL)
    return;
  for (size_t i = 0; i < df->n_insns; i++)
    insn_free_fields(&df->insns[i]);
  free(df->insns);
  free(df->path);
  free(df->syntax);
  free(df->check);
  sw_strv_free(df->lines);
  free(df);
}

static void
add_arg(sw_insn_t *in, const char *s, size_t n)
{
  sw_strv_push_take(&in->args, xstrndup(s, n));
  in->n_args++;
}

static void
add_kv(sw_insn_t *in, const char *k, size_t kn, const char *v, size_t vn, bool eq)
{
  in->kvs = xrealloc(in->kvs, (in->n_kvs + 1) * sizeof(*in->kvs));
  in->kvs[in->n_kvs++] = (sw_kv_t){xstrndup(k, kn), xstrndup(v, vn), eq};
  add_arg(in, k, kn);
  add_arg(in, v, vn);
  add_arg(in, eq ? "=" : "", eq ? 1 : 0);
}

/* BuildKit's extractBuilderFlags: byte-wise; each byte becomes a rune, so non-ASCII bytes in a
 * flag are re-encoded as Latin-1 (BuildKit's behaviour, kept for identical results). Returns
 * the offset in LINE where the arguments start. */
static size_t
extract_flags(const char *line, size_t n, char ***flags)
{
  enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
  sw_buf_t word = {0};
  bool blank_ok = false;
  char quote = 0;
  size_t pos;

  for (pos = 0; pos <= n; pos++) {
    unsigned char ch = pos < n ? (unsigned char)line[pos] : 0;
    if (phase == IN_SPACES) {
      if (pos == n)
        break;
      if (is_space_byte(ch))
        continue;
      if (ch != '-' || pos + 1 == n || line[pos + 1] != '-')
        goto out;
      phase = IN_WORD;
    }
    if (pos == n) {
      if (!(word.len == 2 && memcmp(word.data, "--", 2) == 0) && (blank_ok || word.len > 0))
        sw_strv_push_take(flags, sw_buf_steal(&word));
      break;
    }
    if (phase == IN_WORD) {
      if (is_space_byte(ch)) {
        phase = IN_SPACES;
        if (word.len == 2 && memcmp(word.data, "--", 2) == 0)
          goto out;
        if (blank_ok || word.len > 0)
          sw_strv_push_take(flags, sw_buf_steal(&word));
        sw_buf_free(&word);
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = (char)ch;
        blank_ok = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == n)
          continue;
        ch = (unsigned char)line[++pos];
      }
      sw_utf8_put(&word, ch);
      continue;
    }
    /* IN_QUOTE */
    if (ch == (unsigned char)quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == n) {
        phase = IN_WORD;
        continue;
      }
      ch = (unsigned char)line[++pos];
    }
    sw_utf8_put(&word, ch);
  }
  pos = n;
out:
  sw_buf_free(&word);
  return pos;
}

/* BuildKit's parseWords: split on spaces, keep quotes and escapes in the words. */
static char **
parse_words(const char *rest, char escape)
{
  enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
  size_t n = strlen(rest), pos = 0;
  char **words = NULL;
  sw_buf_t b = {0};
  bool blank_ok = false;
  int32_t quote = 0, ch = 0;
  int w = 0;

  for (pos = 0; pos <= n; pos += (size_t)w) {
    if (pos != n)
      ch = sw_utf8_decode(rest + pos, n - pos, &w);
    if (phase == IN_SPACES) {
      if (pos == n)
        break;
      if (sw_go_isspace(ch))
        continue;
      phase = IN_WORD;
    }
    if (pos == n) {
      if (blank_ok || b.len > 0)
        sw_strv_push_take(&words, sw_buf_steal(&b));
      break;
    }
    if (phase == IN_WORD) {
      if (sw_go_isspace(ch)) {
        phase = IN_SPACES;
        if (blank_ok || b.len > 0)
          sw_strv_push_take(&words, sw_buf_steal(&b));
        sw_buf_free(&b);
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = IN_QUOTE;
      }
      if (ch == escape) {
        if (pos + (size_t)w == n)
          continue;
        sw_utf8_put(&b, ch);
        pos += (size_t)w;
        ch = sw_utf8_decode(rest + pos, n - pos, &w);
      }
      sw_utf8_put(&b, ch);
      continue;
    }
    /* IN_QUOTE */
    if (ch == quote)
      phase = IN_WORD;
    if (ch == escape && quote != '\'') {
      if (pos + (size_t)w == n) {
        phase = IN_WORD;
        continue;
      }
      pos += (size_t)w;
      sw_utf8_put(&b, ch);
      ch = sw_utf8_decode(rest + pos, n - pos, &w);
    }
    sw_utf8_put(&b, ch);
  }
  sw_buf_free(&b);
  return words ? words : xcalloc(1, sizeof(char *));
}

/* ---- JSON arrays (exec form), validated as Go's encoding/json does ---- */

typedef struct {
  const char *s;
  size_t n, pos;
  int depth;
} json_t;

static void
json_ws(json_t *j)
{
  while (j->pos < j->n && strchr(" \t\n\r", j->s[j->pos]) && j->s[j->pos])
    j->pos++;
}

static int
hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int
json_hex4(json_t *j)
{
  int v = 0;
  if (j->pos + 4 > j->n)
    return -1;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->s[j->pos + (size_t)i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  j->pos += 4;
  return v;
}

/* Parse a string at j->pos (on the opening quote); OUT may be NULL. */
static bool
json_string(json_t *j, sw_buf_t *out)
{
  j->pos++;
  while (j->pos < j->n) {
    unsigned char c = (unsigned char)j->s[j->pos];
    if (c == '"') {
      j->pos++;
      return true;
    }
    if (c < 0x20)
      return false;
    if (c == '\\') {
      char e;
      if (++j->pos >= j->n)
        return false;
      e = j->s[j->pos++];
      if (e == 'u') {
        int32_t r = json_hex4(j);
        if (r < 0)
          return false;
        if (r >= 0xD800 && r < 0xDC00) {
          /* a surrogate pair, or U+FFFD for a lone half */
          size_t save = j->pos;
          int32_t lo = -1;
          if (j->pos + 1 < j->n && j->s[j->pos] == '\\' && j->s[j->pos + 1] == 'u') {
            j->pos += 2;
            lo = json_hex4(j);
          }
          if (lo >= 0xDC00 && lo < 0xE000) {
            r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
          } else {
            j->pos = save;
            r = SW_RUNE_ERROR;
          }
        } else if (r >= 0xDC00 && r < 0xE000) {
          r = SW_RUNE_ERROR;
        }
        if (out)
          sw_utf8_put(out, r);
        continue;
      }
      const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
      const char *p = e ? strchr(from, e) : NULL;
      if (p == NULL)
        return false;
      if (out)
        sw_buf_putc(out, to[p - from]);
      continue;
    }
    int w;
    int32_t r = sw_utf8_decode(j->s + j->pos, j->n - j->pos, &w);
    if (out) {
      if (r == SW_RUNE_ERROR && w == 1)
        sw_utf8_put(out, SW_RUNE_ERROR);
      else
        sw_buf_append(out, j->s + j->pos, (size_t)w);
    }
    j->pos += (size_t)w;
  }
  return false;
}

static bool json_value(json_t *j);

static bool
json_number(json_t *j)
{
  size_t p = j->pos;
  const char *s = j->s;
#define DIGIT(i) ((i) < j->n && s[i] >= '0' && s[i] <= '9')
  if (p < j->n && s[p] == '-')
    p++;
  if (p < j->n && s[p] == '0')
    p++;
  else if (DIGIT(p))
    while (DIGIT(p))
      p++;
  else
    return false;
  if (p < j->n && s[p] == '.') {
    p++;
    if (!DIGIT(p))
      return false;
    while (DIGIT(p))
      p++;
  }
  if (p < j->n && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    if (p < j->n && (s[p] == '+' || s[p] == '-'))
      p++;
    if (!DIGIT(p))
      return false;
    while (DIGIT(p))
      p++;
  }
#undef DIGIT
  j->pos = p;
  return true;
}

static bool
json_container(json_t *j, char close)
{
  if (++j->depth > 10000)
    return false;
  j->pos++;
  json_ws(j);
  if (j->pos < j->n && j->s[j->pos] == close) {
    j->pos++;
    j->depth--;
    return true;
  }
  for (;;) {
    json_ws(j);
    if (close == '}') {
      if (j->pos >= j->n || j->s[j->pos] != '"' || !json_string(j, NULL))
        return false;
      json_ws(j);
      if (j->pos >= j->n || j->s[j->pos] != ':')
        return false;
      j->pos++;
      json_ws(j);
    }
    if (!json_value(j))
      return false;
    json_ws(j);
    if (j->pos >= j->n)
      return false;
    if (j->s[j->pos] == ',') {
      j->pos++;
      continue;
    }
    if (j->s[j->pos] != close)
      return false;
    j->pos++;
    j->depth--;
    return true;
  }
}

static bool
json_value(json_t *j)
{
  static const char *const lits[] = {"true", "false", "null"};
  if (j->pos >= j->n)
    return false;
  switch (j->s[j->pos]) {
  case '"':
    return json_string(j, NULL);
  case '[':
    return json_container(j, ']');
  case '{':
    return json_container(j, '}');
  default:
    for (size_t i = 0; i < 3; i++) {
      size_t l = strlen(lits[i]);
      if (j->n - j->pos >= l && memcmp(j->s + j->pos, lits[i], l) == 0) {
        j->pos += l;
        return true;
      }
    }
    return json_number(j);
  }
}

enum { JSON_NOT = 0, JSON_OK = 1, JSON_NOT_STRINGS = -1 };

/* BuildKit's parseJSON: 1 with the strings in *out, 0 when REST is not a JSON array (the
 * caller falls back to the shell form), -1 for a valid array holding a non-string. */
static int
parse_json(const char *rest, char ***out)
{
  size_t lead = lead_space_len(rest, strlen(rest));
  json_t j = {rest + lead, strlen(rest + lead), 0, 0};
  _cleanup_strv_ char **items = NULL;
  bool non_string = false;

  if (j.n == 0 || j.s[0] != '[')
    return JSON_NOT;
  if (!json_value(&j))
    return JSON_NOT;
  json_ws(&j);
  if (j.pos != j.n)
    return JSON_NOT;
  /* valid: walk the top level again, collecting strings */
  j.pos = 1;
  for (;;) {
    json_ws(&j);
    if (j.s[j.pos] == ']')
      break;
    if (j.s[j.pos] == '"') {
      sw_buf_t b = {0};
      json_string(&j, &b);
      sw_strv_push_take(&items, sw_buf_steal(&b));
    } else {
      non_string = true;
      json_value(&j);
    }
    json_ws(&j);
    if (j.s[j.pos] == ',')
      j.pos++;
  }
  if (non_string)
    return JSON_NOT_STRINGS;
  *out = items ? steal_ptr(&items) : xcalloc(1, sizeof(char *));
  return JSON_OK;
}

/* ---- per-instruction argument parsers ---- */

typedef struct {
  const sw_dockerfile_t *df;
  char escape;
  int line, col;
  sw_error_t *err;
} pctx_t;

static int perr(pctx_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(pctx_t *p, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  return sw_dockerfile_error(p->df, p->line, p->col, p->err, "%s", msg);
}

static void
args_whitespace(sw_insn_t *in, const char *rest)
{
  const char *s = rest;
  if (*rest == '\0')
    return;
  for (;;) {
    size_t n = 0;
    while (s[n] && !is_ws(s[n]))
      n++;
    add_arg(in, s, n);
    if (s[n] == '\0')
      break;
    s += n;
    while (is_ws(*s))
      s++;
  }
}

static int
args_json_or(pctx_t *p, sw_insn_t *in, const char *rest, bool to_list)
{
  char **items = NULL;
  int r;

  if (!to_list && *rest == '\0')
    return 0;
  r = parse_json(rest, &items);
  if (r == JSON_NOT_STRINGS)
    return perr(p, "when using JSON array syntax, arrays must be comprised of strings only");
  if (r == JSON_OK) {
    sw_strv_free(in->args);
    in->args = items;
    in->n_args = sw_strv_len(items);
    in->json = true;
    return 0;
  }
  if (to_list)
    args_whitespace(in, rest);
  else
    add_arg(in, rest, strlen(rest));
  return 0;
}

/* ENV and LABEL: `KEY value` (old form) or `k=v k2=v2`. */
static int
args_name_val(pctx_t *p, sw_insn_t *in, const char *rest, const char *key)
{
  _cleanup_strv_ char **words = parse_words(rest, p->escape);

  if (words[0] == NULL)
    return 0;
  if (strchr(words[0], '=') == NULL) {
    size_t k = 0, v;
    while (rest[k] && !is_ws(rest[k]))
      k++;
    v = k;
    while (is_ws(rest[v]))
      v++;
    if (rest[k] == '\0')
      return perr(p, "%s must have two arguments", key);
    add_kv(in, rest, k, rest + v, strlen(rest + v), false);
    return 0;
  }
  for (char **w = words; *w; w++) {
    char *eq = strchr(*w, '=');
    if (eq == NULL) {
      _cleanup_free_ char *q = sw_go_quote(*w);
      return perr(p, "Syntax error - can't find = in %s. Must be of the form: name=value", q);
    }
    add_kv(in, *w, (size_t)(eq - *w), eq + 1, strlen(eq + 1), true);
  }
  return 0;
}

static int
args_health(pctx_t *p, sw_insn_t *in, const char *rest)
{
  size_t sep = 0, next;

  while (rest[sep] && !is_space_byte((unsigned char)rest[sep]))
    sep++;
  next = sep;
  while (rest[next] && is_space_byte((unsigned char)rest[next]))
    next++;
  if (sep == 0)
    return 0;
  add_arg(in, rest, sep);
  {
    sw_insn_t cmd = {0};
    if (args_json_or(p, &cmd, rest + next, false) < 0)
      return -1;
    for (size_t i = 0; i < cmd.n_args; i++)
      sw_strv_push_take(&in->args, steal_ptr(&cmd.args[i]));
    in->n_args += cmd.n_args;
    in->json = cmd.json;
    free(cmd.args);
  }
  return 0;
}

static int node_from_line(pctx_t *p, const char *line, sw_insn_t *in);

static int
dispatch_args(pctx_t *p, sw_insn_t *in, const char *rest)
{
  switch (in->kind) {
  case SW_INSN_ADD:
  case SW_INSN_COPY:
  case SW_INSN_VOLUME:
    return args_json_or(p, in, rest, true);
  case SW_INSN_CMD:
  case SW_INSN_ENTRYPOINT:
  case SW_INSN_RUN:
  case SW_INSN_SHELL:
    return args_json_or(p, in, rest, false);
  case SW_INSN_ARG: {
    char **words = parse_words(rest, p->escape);
    sw_strv_free(in->args);
    in->args = words;
    in->n_args = sw_strv_len(words);
    return 0;
  }
  case SW_INSN_ENV:
    return args_name_val(p, in, rest, "ENV");
  case SW_INSN_LABEL:
    return args_name_val(p, in, rest, "LABEL");
  case SW_INSN_EXPOSE:
  case SW_INSN_FROM:
    args_whitespace(in, rest);
    return 0;
  case SW_INSN_HEALTHCHECK:
    return args_health(p, in, rest);
  case SW_INSN_MAINTAINER:
  case SW_INSN_STOPSIGNAL:
  case SW_INSN_USER:
  case SW_INSN_WORKDIR:
    if (*rest)
      add_arg(in, rest, strlen(rest));
    return 0;
  case SW_INSN_ONBUILD:
    if (*rest == '\0')
      return 0;
    in->sub = xcalloc(1, sizeof(*in->sub));
    return node_from_line(p, rest, in->sub);
  case SW_INSN_UNKNOWN:
  default:
    add_arg(in, "", 0);
    return 0;
  }
}

/* BuildKit's newNodeFromLine: keyword, flags, then the keyword's argument parser. */
static int
node_from_line(pctx_t *p, const char *line, sw_insn_t *in)
{
  _cleanup_free_ char *trimmed = trim_space(line, strlen(line));
  _cleanup_free_ char *rest = NULL;
  size_t k = 0;

  in->original = xstrdup(line);
  in->line = p->line;
  in->col = p->col;
  while (trimmed[k] && !is_ws(trimmed[k]))
    k++;
  in->name = xstrndup(trimmed, k);
  for (char *c = in->name; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  in->kind = sw_insn_kind_from_name(in->name);
  in->args = xcalloc(1, sizeof(char *));
  if (trimmed[k]) {
    const char *after = trimmed + k;
    size_t off;
    while (is_ws(*after))
      after++;
    off = extract_flags(after, strlen(after), &in->flags);
    rest = trim_space(after + off, strlen(after + off));
  } else {
    rest = xstrdup("");
  }
  if (in->flags == NULL)
    in->flags = xcalloc(1, sizeof(char *));
  return dispatch_args(p, in, rest);
}

/* ---- heredocs ---- */

static bool
heredoc_allowed(const sw_insn_t *in)
{
  if (in->kind == SW_INSN_ONBUILD && in->sub)
    in = in->sub;
  return (in->kind == SW_INSN_RUN || in->kind == SW_INSN_COPY || in->kind == SW_INSN_ADD) &&
         !in->json;
}

/* One word of the line: `[digits]<<[-]rest` with no further `<`. */
static bool
heredoc_from_word(const char *word, sw_heredoc_t *h)
{
  const char *s = word;
  unsigned long fd = 0;
  _cleanup_strv_ char **words = NULL;
  _cleanup_strv_ char **raw = NULL;
  sw_shlex_t lx = {.escape = '\\', .flags = SW_SHLEX_SKIP_UNSET};
  size_t q1 = 0, q2 = 0;

  while (*s >= '0' && *s <= '9') {
    if (fd < 100000000)
      fd = fd * 10 + (unsigned long)(*s - '0');
    s++;
  }
  if (s[0] != '<' || s[1] != '<')
    return false;
  s += 2;
  h->chomp = *s == '-';
  if (h->chomp)
    s++;
  if (*s == '\0' || strchr(s, '<'))
    return false;
  if (sw_shlex_expand_words(&lx, s, NULL, &words, NULL) < 0 || sw_strv_len(words) != 1)
    return false;
  lx.flags |= SW_SHLEX_RAW_QUOTES;
  if (sw_shlex_expand_words(&lx, s, NULL, &raw, NULL) < 0 || sw_strv_len(raw) != 1)
    return false;
  for (const char *c = words[0]; *c; c++)
    q1 += *c == '\'' || *c == '"';
  for (const char *c = raw[0]; *c; c++)
    q2 += *c == '\'' || *c == '"';
  h->name = xstrdup(words[0]);
  h->fd = (unsigned)fd;
  h->expand = q1 == q2;
  return true;
}

static void
heredocs_from_line(const char *line, sw_insn_t *in)
{
  _cleanup_strv_ char **words = NULL;
  sw_shlex_t lx = {.escape = '\\',
                   .flags = SW_SHLEX_RAW_QUOTES | SW_SHLEX_RAW_ESCAPES | SW_SHLEX_SKIP_UNSET};

  if (strstr(line, "<<") == NULL)
    return;
  if (sw_shlex_expand_words(&lx, line, NULL, &words, NULL) < 0)
    return;
  for (char **w = words; *w; w++) {
    sw_heredoc_t h = {0};
    if (!heredoc_from_word(*w, &h))
      continue;
    in->heredocs = xrealloc(in->heredocs, (in->n_heredocs + 1) * sizeof(h));
    in->heredocs[in->n_heredocs++] = h;
  }
}

char *
sw_heredoc_content(const sw_heredoc_t *h)
{
  sw_buf_t b = {0};
  bool bol = true;

  if (!h->chomp)
    return xstrdup(h->content);
  for (const char *c = h->content; *c; c++) {
    if (bol && *c == '\t')
      continue;
    bol = *c == '\n';
    sw_buf_putc(&b, *c);
  }
  return sw_buf_steal(&b);
}

/* ---- the line loop ---- */

typedef struct {
  const char *data;
  size_t len, pos;
  int lineno; /* lines consumed so far */
} lines_t;

/* Next physical line with its line end, BOM stripped from the first. */
static bool
next_line(lines_t *L, const char **s, size_t *n)
{
  const char *nl;

  if (L->pos >= L->len)
    return false;
  *s = L->data + L->pos;
  nl = memchr(*s, '\n', L->len - L->pos);
  *n = nl ? (size_t)(nl - *s) + 1 : L->len - L->pos;
  L->pos += *n;
  if (L->lineno == 0 && *n >= 3 && memcmp(*s, "\xEF\xBB\xBF", 3) == 0) {
    *s += 3;
    *n -= 3;
  }
  L->lineno++;
  return true;
}

static size_t
trim_newline_len(const char *s, size_t n)
{
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    n--;
  return n;
}

typedef struct {
  bool done;
  bool seen_escape, seen_syntax, seen_check;
} directives_t;

/* A parser directive (`# key=value`) while still at the top. */
static int
directive_line(pctx_t *p, directives_t *d, sw_dockerfile_t *df, const char *s, size_t n)
{
  size_t i = 1, ks, ke, vs, ve, after_eq;
  char key[16];
  bool *seen;
  char **slot = NULL;

  if (d->done)
    return 0;
  if (n == 0 || s[0] != '#')
    goto done;
  i += lead_space_len(s + 1, n - 1);
  ks = i;
  if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
    goto done;
  while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                   (s[i] >= '0' && s[i] <= '9')))
    i++;
  ke = i;
  while (i < n && strchr(" \t\n\f\r", s[i]) && s[i])
    i++;
  if (i >= n || s[i] != '=')
    goto done;
  after_eq = ++i;
  while (i < n && strchr(" \t\n\f\r", s[i]) && s[i])
    i++;
  vs = i;
  ve = n;
  while (ve > vs && strchr(" \t\n\f\r", s[ve - 1]) && s[ve - 1])
    ve--;
  if (ve == vs && after_eq < n) /* `(.+?)\s*$` takes the last space when only spaces follow */
    vs = n - 1, ve = n;
  if (ve == vs || ke - ks >= sizeof(key))
    goto done;
  for (size_t k = ks; k < ke; k++)
    key[k - ks] = (char)((s[k] >= 'A' && s[k] <= 'Z') ? s[k] - 'A' + 'a' : s[k]);
  key[ke - ks] = '\0';
  if (strcmp(key, "escape") == 0) {
    seen = &d->seen_escape;
  } else if (strcmp(key, "syntax") == 0) {
    seen = &d->seen_syntax;
    slot = &df->syntax;
  } else if (strcmp(key, "check") == 0) {
    seen = &d->seen_check;
    slot = &df->check;
  } else {
    goto done;
  }
  if (*seen)
    return perr(p, "only one %s parser directive can be used", key);
  *seen = true;
  if (slot) {
    *slot = xstrndup(s + vs, ve - vs);
  } else {
    if (ve - vs != 1 || (s[vs] != '\\' && s[vs] != '`')) {
      _cleanup_free_ char *v = xstrndup(s + vs, ve - vs);
      return perr(p, "invalid escape token '%s' does not match ` or \\", v);
    }
    df->escape = s[vs];
  }
  return 0;
done:
  d->done = true;
  return 0;
}

/* BuildKit's processLine: strip the line end (and leading space on a first line), look for a
 * directive, drop a comment. Returns the kept length; *start gets the offset. */
static int
process_line(pctx_t *p, directives_t *d, sw_dockerfile_t *df, const char *s, size_t n, bool strip,
             size_t *start, size_t *len)
{
  size_t st = 0;

  n = trim_newline_len(s, n);
  if (strip)
    st = lead_space_len(s, n);
  if (directive_line(p, d, df, s + st, n - st) < 0)
    return -1;
  *start = st;
  *len = (n > st && s[st] == '#') ? 0 : n - st;
  return 0;
}

static bool
is_comment_line(const char *s, size_t n)
{
  size_t st;
  n = trim_newline_len(s, n);
  st = lead_space_len(s, n);
  return st < n && s[st] == '#';
}

/* A line ending in the escape char (then spaces/tabs) continues, unless that escape char is
 * itself escaped. Returns the new length, or -1 when the line does not continue. */
static long
continuation(const char *s, size_t n, char esc)
{
  size_t e = n;
  while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
    e--;
  if (e == 0 || s[e - 1] != esc)
    return -1;
  if (e >= 2 && s[e - 2] == esc)
    return -1;
  return (long)(e - 1);
}

static int
check_line_length(pctx_t *p, const char *s, size_t n)
{
  if (trim_newline_len(s, n) < SW_DOCKERFILE_MAX_LINE)
    return 0;
  return perr(p, "dockerfile line greater than max allowed size of %d", SW_DOCKERFILE_MAX_LINE - 1);
}

static void
split_source(sw_dockerfile_t *df, const char *data, size_t len)
{
  lines_t L = {data, len, 0, 0};
  const char *s;
  size_t n;

  while (next_line(&L, &s, &n)) {
    sw_strv_push_take(&df->lines, xstrndup(s, trim_newline_len(s, n)));
    df->n_lines++;
  }
  if (df->lines == NULL)
    df->lines = xcalloc(1, sizeof(char *));
}

static int
read_heredocs(pctx_t *p, lines_t *L, sw_insn_t *in)
{
  for (size_t h = 0; h < in->n_heredocs; h++) {
    sw_heredoc_t *hd = &in->heredocs[h];
    sw_buf_t body = {0};
    bool terminated = false;
    const char *s;
    size_t n;

    while (next_line(L, &s, &n)) {
      size_t t = trim_newline_len(s, n), st = 0;
      if (hd->chomp)
        while (st < t && s[st] == '\t')
          st++;
      if (t - st == strlen(hd->name) && memcmp(s + st, hd->name, t - st) == 0) {
        terminated = true;
        break;
      }
      sw_buf_append(&body, s, n);
    }
    hd->content = sw_buf_steal(&body);
    if (!terminated) {
      for (size_t k = h + 1; k < in->n_heredocs; k++)
        in->heredocs[k].content = xstrdup("");
      return perr(p, "unterminated heredoc `%s`: no line `%s` ends it", hd->name, hd->name);
    }
  }
  return 0;
}

/* Read one instruction starting at physical line (S, N); 0 = done (or skipped), -1 error. */
static int
parse_one(pctx_t *p, directives_t *d, lines_t *L, const char *s, size_t n)
{
  sw_dockerfile_t *df = (sw_dockerfile_t *)p->df;
  _cleanup_buf_ sw_buf_t line = {0};
  size_t st, len;
  long c;
  sw_insn_t in = {0};

  p->line = L->lineno;
  p->col = 1;
  if (check_line_length(p, s, n) < 0 || process_line(p, d, df, s, n, true, &st, &len) < 0)
    return -1;
  p->col = 1 + (int)st;
  c = continuation(s + st, len, df->escape);
  sw_buf_append(&line, s + st, c >= 0 ? (size_t)c : len);
  if (c < 0 && len == 0)
    return 0;
  while (c >= 0 && next_line(L, &s, &n)) {
    pctx_t q = *p;
    q.line = L->lineno;
    q.col = 1;
    if (check_line_length(&q, s, n) < 0 || process_line(&q, d, df, s, n, false, &st, &len) < 0)
      return -1;
    if (is_comment_line(s, n))
      continue;
    if (lead_space_len(s + st, len) == len)
      continue; /* an empty line inside a continuation is skipped */
    c = continuation(s + st, len, df->escape);
    sw_buf_append(&line, s + st, c >= 0 ? (size_t)c : len);
  }
  if (node_from_line(p, line.data ? line.data : "", &in) < 0)
    goto fail;
  if (heredoc_allowed(&in))
    heredocs_from_line(in.original, &in);
  if (read_heredocs(p, L, &in) < 0)
    goto fail;
  in.end_line = L->lineno;
  df->insns = xrealloc(df->insns, (df->n_insns + 1) * sizeof(in));
  df->insns[df->n_insns++] = in;
  return 0;
fail:
  insn_free_fields(&in);
  return -1;
}

int
sw_dockerfile_parse(const char *path, const char *data, size_t len, sw_dockerfile_t **out,
                    sw_error_t *err)
{
  sw_dockerfile_t *df = xcalloc(1, sizeof(*df));
  lines_t L = {data, len, 0, 0};
  directives_t d = {0};
  pctx_t p = {.df = df, .err = err};
  const char *s;
  size_t n;

  df->path = xstrdup(path ? path : "Dockerfile");
  df->escape = '\\';
  split_source(df, data, len);
  while (next_line(&L, &s, &n)) {
    p.escape = df->escape;
    if (parse_one(&p, &d, &L, s, n) < 0) {
      sw_dockerfile_free(df);
      return -1;
    }
  }
  if (df->n_insns == 0) {
    p.line = L.lineno > 0 ? L.lineno : 1;
    p.col = 0;
    perr(&p, "file with no instructions");
    sw_dockerfile_free(df);
    return -1;
  }
  *out = df;
  return 0;
}

int
sw_dockerfile_load(const char *path, sw_dockerfile_t **out, sw_error_t *err)
{
  _cleanup_free_ char *data = NULL;
  size_t len = 0;

  if (sw_read_file(path, 256u << 20, &data, &len, err) < 0) {
    (*err)->code = SW_EXIT_USAGE;
    return -1;
  }
  return sw_dockerfile_parse(path, data, len, out, err);
}

/* ---- output ---- */

static void
dump_insn(sw_buf_t *b, const sw_insn_t *in)
{
  sw_buf_puts(b, in->name);
  if (in->flags[0]) {
    sw_buf_puts(b, " [");
    for (char **f = in->flags; *f; f++) {
      if (f != in->flags)
        sw_buf_putc(b, ' ');
      sw_go_quote_buf(b, *f, strlen(*f));
    }
    sw_buf_putc(b, ']');
  }
  if (in->sub) {
    sw_buf_puts(b, " (");
    dump_insn(b, in->sub);
    sw_buf_putc(b, ')');
  }
  for (size_t i = 0; i < in->n_args; i++) {
    sw_buf_putc(b, ' ');
    sw_go_quote_buf(b, in->args[i], strlen(in->args[i]));
  }
}

char *
sw_insn_dump(const sw_insn_t *insn)
{
  sw_buf_t b = {0};
  sw_buf_putc(&b, '(');
  dump_insn(&b, insn);
  sw_buf_putc(&b, ')');
  return sw_buf_steal(&b);
}

char *
sw_dockerfile_dump(const sw_dockerfile_t *df)
{
  sw_buf_t b = {0};
  for (size_t i = 0; i < df->n_insns; i++) {
    _cleanup_free_ char *one = sw_insn_dump(&df->insns[i]);
    sw_buf_puts(&b, one);
    sw_buf_putc(&b, '\n');
  }
  return sw_buf_steal(&b);
}

/* ---- flags ---- */

static const char *
flag_value(const char *flag, const char *name)
{
  size_t n = strlen(name);
  if (strncmp(flag, "--", 2) != 0 || strncmp(flag + 2, name, n) != 0)
    return NULL;
  if (flag[2 + n] == '\0')
    return "";
  if (flag[2 + n] == '=')
    return flag + 3 + n;
  return NULL;
}

const char *
sw_insn_flag(const sw_insn_t *insn, const char *name)
{
  const char *last = NULL;
  for (char **f = insn->flags; f && *f; f++) {
    const char *v = flag_value(*f, name);
    if (v)
      last = v;
  }
  return last;
}

char **
sw_insn_flag_all(const sw_insn_t *insn, const char *name)
{
  char **all = xcalloc(1, sizeof(char *));
  for (char **f = insn->flags; f && *f; f++) {
    const char *v = flag_value(*f, name);
    if (v)
      sw_strv_push(&all, v);
  }
  return all;
}

/* ---- errors ---- */

int
sw_dockerfile_error(const sw_dockerfile_t *df, int line, int col, sw_error_t *err, const char *fmt,
                    ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;
  const char *path = df && df->path ? df->path : "Dockerfile";

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  if (df && line >= 1 && (size_t)line <= df->n_lines) {
    const char *text = df->lines[line - 1];
    int shown = (int)strnlen(text, 200);
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s:%d:%d: %s\n %5d | %.*s%s", path, line,
                         col > 0 ? col : 1, msg, line, shown, text, text[shown] ? " …" : "");
  }
  return sw_error_code(err, SW_EXIT_USAGE, 0, "%s:%d:%d: %s", path, line, col > 0 ? col : 1, msg);
}
