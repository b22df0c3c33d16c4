/* slipway: Python requirements, read without running anything (see recipe.h). PEP 503 names,
 * PEP 508 requirement strings in a normal form, and pip's requirements-file format, so that the
 * dependency layer's cache key is the set of requirements, not the bytes of a file. */
#include "recipe.h"

#include <ctype.h>

#define MAX_INCLUDE_DEPTH 16

char *
sw_pep503_name(const char *name, size_t len)
{
  sw_buf_t b = {0};
  bool sep = false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && b.len > 0)
      sw_buf_putc(&b, '-');
    sep = false;
    sw_buf_putc(&b, (char)tolower((unsigned char)c));
  }
  return sw_buf_steal(&b);
}

static bool
name_char(char c)
{
  return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static const char *
skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates in place. */
static void
strv_sort_uniq(char **v)
{
  size_t n = sw_strv_len(v), w = 0;
  if (n == 0)
    return;
  qsort(v, n, sizeof(char *), cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (w > 0 && strcmp(v[w - 1], v[i]) == 0)
      free(v[i]);
    else
      v[w++] = v[i];
  }
  v[w] = NULL;
}

/* The text with every run of blanks made one space, trimmed. */
static char *
collapse_ws(const char *s, size_t len)
{
  sw_buf_t b = {0};
  bool space = false;
  for (size_t i = 0; i < len; i++) {
    if (isspace((unsigned char)s[i])) {
      space = b.len > 0;
      continue;
    }
    if (space)
      sw_buf_putc(&b, ' ');
    space = false;
    sw_buf_putc(&b, s[i]);
  }
  return sw_buf_steal(&b);
}

/* "[a, B_c]" -> "[a,b-c]" (sorted); *p is at '['. */
static int
parse_extras(const char **pp, sw_buf_t *out, const char *req, sw_error_t *err)
{
  const char *p = *pp + 1;
  _cleanup_strv_ char **names = NULL;
  for (;;) {
    p = skip_ws(p);
    if (*p == ']')
      break;
    const char *s = p;
    while (name_char(*p))
      p++;
    if (p == s)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "requirement `%s`: bad extras list", req);
    sw_strv_push_take(&names, sw_pep503_name(s, (size_t)(p - s)));
    p = skip_ws(p);
    if (*p == ',')
      p++;
    else if (*p != ']')
      return sw_error_code(err, SW_EXIT_USAGE, 0, "requirement `%s`: bad extras list", req);
  }
  *pp = p + 1;
  strv_sort_uniq(names);
  if (names == NULL || names[0] == NULL)
    return 0;
  sw_buf_putc(out, '[');
  for (size_t i = 0; names[i]; i++) {
    if (i)
      sw_buf_putc(out, ',');
    sw_buf_puts(out, names[i]);
  }
  sw_buf_putc(out, ']');
  return 0;
}

/* ">= 3.2 , <4.0" -> "<4.0,>=3.2"; also the parenthesized form. */
static void
put_specifiers(sw_buf_t *out, const char *s, size_t len)
{
  _cleanup_free_ char *copy = xstrndup(s, len);
  char *t = copy;
  if (*(t = (char *)skip_ws(t)) == '(') {
    t++;
    char *close = strrchr(t, ')');
    if (close)
      *close = '\0';
  }
  _cleanup_strv_ char **clauses = NULL;
  char *save = NULL;
  for (char *c = strtok_r(t, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
    sw_buf_t b = {0};
    for (; *c; c++)
      if (!isspace((unsigned char)*c))
        sw_buf_putc(&b, *c);
    if (b.len)
      sw_strv_push_take(&clauses, sw_buf_steal(&b));
    else
      sw_buf_free(&b);
  }
  strv_sort_uniq(clauses);
  for (size_t i = 0; clauses && clauses[i]; i++) {
    if (i)
      sw_buf_putc(out, ',');
    sw_buf_puts(out, clauses[i]);
  }
}

int
sw_req_normalize(const char *req, char **out, sw_error_t *err)
{
  const char *p = skip_ws(req);
  const char *s = p;
  while (name_char(*p))
    p++;
  if (p == s || !isalnum((unsigned char)*s) || !isalnum((unsigned char)p[-1]))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "`%s` is not a requirement (a project name, then extras, versions "
                         "or `@ URL`; bare URLs and paths are not supported)",
                         req);
  _cleanup_buf_ sw_buf_t b = {0};
  _cleanup_free_ char *name = sw_pep503_name(s, (size_t)(p - s));
  sw_buf_puts(&b, name);
  p = skip_ws(p);
  if (*p == '[' && parse_extras(&p, &b, req, err) < 0)
    return -1;
  p = skip_ws(p);
  const char *semi;
  if (*p == '@') {
    /* A direct reference: the URL ends at the first blank (PEP 508 needs one before `;`). */
    p = skip_ws(p + 1);
    const char *u = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    if (p == u)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "requirement `%s`: `@` needs a URL", req);
    sw_buf_puts(&b, " @ ");
    sw_buf_append(&b, u, (size_t)(p - u));
    p = skip_ws(p);
    semi = *p == ';' ? p : NULL;
    if (*p && *p != ';')
      return sw_error_code(err, SW_EXIT_USAGE, 0, "requirement `%s`: unexpected `%s` after the URL",
                           req, p);
  } else {
    semi = strchr(p, ';');
    size_t n = semi ? (size_t)(semi - p) : strlen(p);
    for (size_t i = 0; i < n; i++)
      if (!isspace((unsigned char)p[i]) && !strchr("<>=!~.,*()+", p[i]) &&
          !isalnum((unsigned char)p[i]))
        return sw_error_code(err, SW_EXIT_USAGE, 0, "requirement `%s`: `%c` in a version specifier",
                             req, p[i]);
    put_specifiers(&b, p, n);
  }
  if (semi) {
    _cleanup_free_ char *marker = collapse_ws(semi + 1, strlen(semi + 1));
    if (*marker) {
      sw_buf_puts(&b, "; ");
      sw_buf_puts(&b, marker);
    }
  }
  *out = sw_buf_steal(&b);
  return 0;
}

void
sw_reqset_clear(sw_reqset_t *s)
{
  sw_strv_free(s->options);
  sw_strv_free(s->constraints);
  sw_strv_free(s->reqs);
  sw_strv_free(s->sources);
  memset(s, 0, sizeof(*s));
}

int
sw_reqset_add(sw_reqset_t *s, const char *req, const char *where, sw_error_t *err)
{
  char *norm = NULL;
  if (sw_req_normalize(req, &norm, err) < 0)
    return sw_error_wrap(err, "%s", where);
  sw_strv_push_take(&s->reqs, norm);
  sw_strv_push_take(&s->sources, xasprintf("%s: %s", where, req));
  return 0;
}

bool
sw_reqset_has(const sw_reqset_t *s, const char *name)
{
  _cleanup_free_ char *want = sw_pep503_name(name, strlen(name));
  size_t n = strlen(want);
  for (size_t i = 0; s->reqs && s->reqs[i]; i++)
    if (strncmp(s->reqs[i], want, n) == 0 && !name_char(s->reqs[i][n]))
      return true;
  return false;
}

void
sw_reqset_finish(sw_reqset_t *s)
{
  strv_sort_uniq(s->constraints);
  strv_sort_uniq(s->reqs);
}

char *
sw_reqset_render(const sw_reqset_t *s, const char *constraints_path)
{
  sw_buf_t b = {0};
  for (size_t i = 0; s->options && s->options[i]; i++)
    sw_buf_printf(&b, "%s\n", s->options[i]);
  if (s->constraints && s->constraints[0])
    sw_buf_printf(&b, "-c %s\n", constraints_path);
  for (size_t i = 0; s->reqs && s->reqs[i]; i++)
    sw_buf_printf(&b, "%s\n", s->reqs[i]);
  return sw_buf_steal(&b);
}

/* ---- requirements files ---- */

typedef struct {
  sw_reqset_t *set;
  sw_req_read_fn read;
  void *ud;
  int depth;
  bool constraint; /* reading a -c file */
} reader_t;

static int parse_file(reader_t *r, const char *path, const char *text, size_t len, sw_error_t *err);

/* pip's options that may stand on a line of their own, with whether they take a value. */
static const struct {
  const char *shrt, *lng;
  bool value;
} global_opts[] = {
    {"-i", "--index-url", true},       {NULL, "--extra-index-url", true},
    {"-f", "--find-links", true},      {NULL, "--trusted-host", true},
    {NULL, "--no-index", false},       {NULL, "--pre", false},
    {NULL, "--prefer-binary", false},  {NULL, "--no-binary", true},
    {NULL, "--only-binary", true},     {NULL, "--use-feature", true},
    {NULL, "--require-hashes", false},
};

/* "dir/of/file" + "x.txt" -> "dir/of/x.txt" */
static char *
relative_to(const char *file, const char *path)
{
  const char *slash = strrchr(file, '/');
  if (path[0] == '/' || slash == NULL)
    return xstrdup(path);
  return xasprintf("%.*s/%s", (int)(slash - file), file, path);
}

static int
include(reader_t *r, const char *where, const char *from, const char *arg, bool constraint,
        sw_error_t *err)
{
  if (strstr(arg, "://"))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: including a URL (`%s`) is not supported",
                         where, arg);
  if (r->depth >= MAX_INCLUDE_DEPTH)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "%s: includes nested more than %d deep (a cycle?) at `%s`", where,
                         MAX_INCLUDE_DEPTH, arg);
  if (r->read == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: cannot include `%s` here", where, arg);
  _cleanup_free_ char *path = relative_to(from, arg);
  _cleanup_free_ char *text = NULL;
  if (r->read(r->ud, path, &text, err) < 0)
    return sw_error_wrap(err, "%s", where);
  bool saved = r->constraint;
  r->constraint = r->constraint || constraint;
  r->depth++;
  int rc = parse_file(r, path, text, strlen(text), err);
  r->depth--;
  r->constraint = saved;
  return rc;
}

/* Split "--opt=value" / "--opt value"; returns the index into global_opts or -1. */
static int
match_option(const char *line, const char **value)
{
  for (size_t i = 0; i < SW_ARRAY_SIZE(global_opts); i++) {
    const char *names[] = {global_opts[i].shrt, global_opts[i].lng};
    for (int k = 0; k < 2; k++) {
      size_t n = names[k] ? strlen(names[k]) : 0;
      if (n == 0 || strncmp(line, names[k], n) != 0)
        continue;
      const char *rest = line + n;
      if (*rest && *rest != '=' && *rest != ' ' && *rest != '\t')
        continue;
      if (*rest == '=')
        rest++;
      *value = skip_ws(rest);
      return (int)i;
    }
  }
  return -1;
}

static int
option_line(reader_t *r, const char *where, const char *path, const char *line, sw_error_t *err)
{
  static const char *const req_opts[][2] = {{"-r", "--requirement"}, {"-c", "--constraint"}};
  for (int k = 0; k < 2; k++)
    for (int j = 0; j < 2; j++) {
      size_t n = strlen(req_opts[k][j]);
      if (strncmp(line, req_opts[k][j], n) == 0 &&
          (line[n] == ' ' || line[n] == '\t' || line[n] == '=')) {
        const char *arg = skip_ws(line + n + (line[n] == '='));
        return include(r, where, path, arg, k == 1, err);
      }
    }
  if (sw_str_has_prefix(line, "-e") || sw_str_has_prefix(line, "--editable"))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "%s: editable requirements (`%s`) cannot go into an image; list the "
                         "project by name or path without -e",
                         where, line);
  const char *value = NULL;
  int i = match_option(line, &value);
  if (i < 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: unknown pip option `%s`", where, line);
  if (global_opts[i].value && *value == '\0')
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: `%s` needs a value", where, line);
  _cleanup_free_ char *opt = global_opts[i].value ? xasprintf("%s %s", global_opts[i].lng, value)
                                                  : xstrdup(global_opts[i].lng);
  if (!sw_strv_contains(r->set->options, opt))
    sw_strv_push(&r->set->options, opt);
  return 0;
}

/* "Django>=3.2 --hash=sha256:b --hash sha256:a" -> "django>=3.2 --hash=sha256:a
 * --hash=sha256:b". As pip, the requirement ends at the first blank-separated word that
 * starts with `-`. */
static int
requirement_line(reader_t *r, const char *where, const char *line, sw_error_t *err)
{
  _cleanup_buf_ sw_buf_t req = {0};
  _cleanup_strv_ char **hashes = NULL;
  _cleanup_free_ char *copy = xstrdup(line);
  char *save = NULL;
  bool in_opts = false;
  for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
    if (!in_opts && w[0] != '-') {
      if (req.len)
        sw_buf_putc(&req, ' ');
      sw_buf_puts(&req, w);
      continue;
    }
    in_opts = true;
    if (strcmp(w, "--hash") == 0) {
      w = strtok_r(NULL, " \t", &save);
      if (w == NULL)
        return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: --hash needs a value", where);
      sw_strv_push_take(&hashes, xasprintf("--hash=%s", w));
    } else if (sw_str_has_prefix(w, "--hash=")) {
      sw_strv_push(&hashes, w);
    } else {
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "%s: option `%s` after a requirement is not supported (only --hash)",
                           where, w);
    }
  }
  char *norm = NULL;
  if (sw_req_normalize(req.data ? req.data : "", &norm, err) < 0)
    return sw_error_wrap(err, "%s", where);
  strv_sort_uniq(hashes);
  sw_buf_t full = {0};
  sw_buf_puts(&full, norm);
  free(norm);
  for (size_t i = 0; hashes && hashes[i]; i++)
    sw_buf_printf(&full, " %s", hashes[i]);
  sw_strv_push_take(r->constraint ? &r->set->constraints : &r->set->reqs, sw_buf_steal(&full));
  sw_strv_push_take(&r->set->sources, xasprintf("%s: %s", where, line));
  return 0;
}

/* One logical line, comment removed: `#` at the start or after a blank (pip's rule). */
static char *
logical_line(const char *s, size_t len)
{
  size_t n = len;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '#' && (i == 0 || isspace((unsigned char)s[i - 1]))) {
      n = i;
      break;
    }
  return collapse_ws(s, n);
}

static int
parse_file(reader_t *r, const char *path, const char *text, size_t len, sw_error_t *err)
{
  size_t pos = 0;
  int lineno = 0;
  while (pos < len) {
    int first = ++lineno;
    _cleanup_buf_ sw_buf_t joined = {0};
    /* Continuation: a line ending in `\` goes on with the next one. */
    for (;;) {
      const char *start = text + pos;
      const char *nl = memchr(start, '\n', len - pos);
      size_t n = nl ? (size_t)(nl - start) : len - pos;
      pos += n + (nl ? 1 : 0);
      if (n && start[n - 1] == '\r')
        n--;
      if (n && start[n - 1] == '\\' && pos < len) {
        sw_buf_append(&joined, start, n - 1);
        lineno++;
        continue;
      }
      sw_buf_append(&joined, start, n);
      break;
    }
    _cleanup_free_ char *line = logical_line(joined.data ? joined.data : "", joined.len);
    if (*line == '\0')
      continue;
    _cleanup_free_ char *where = xasprintf("%s:%d", path, first);
    int rc = line[0] == '-' ? option_line(r, where, path, line, err)
                            : requirement_line(r, where, line, err);
    if (rc < 0)
      return -1;
  }
  return 0;
}

int
sw_reqset_parse(sw_reqset_t *s, const char *path, const char *text, size_t len, sw_req_read_fn read,
                void *ud, sw_error_t *err)
{
  reader_t r = {.set = s, .read = read, .ud = ud};
  return parse_file(&r, path, text, len, err);
}
