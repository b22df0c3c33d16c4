/* slipway: Dockerfile build checks; see lint.h. */
#include "lint.h"

#include "image.h"
#include "plan.h"
#include "shellword.h"

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>

static const char *const all_rules[] = {
    "StageNameCasing",
    "FromAsCasing",
    "NoEmptyContinuation",
    "ConsistentInstructionCasing",
    "DuplicateStageName",
    "ReservedStageName",
    "JSONArgsRecommended",
    "MaintainerDeprecated",
    "UndefinedArgInFrom",
    "WorkdirRelativePath",
    "UndefinedVar",
    "MultipleInstructionsDisallowed",
    "LegacyKeyValueFormat",
    "RedundantTargetPlatform",
    "SecretsUsedInArgOrEnv",
    "InvalidDefaultArgInFrom",
    "FromPlatformFlagConstDisallowed",
    "CopyIgnoredFile",
};

static const char *const platform_args[] = {"BUILDPLATFORM", "BUILDOS",        "BUILDARCH",
                                            "BUILDVARIANT",  "TARGETPLATFORM", "TARGETOS",
                                            "TARGETARCH",    "TARGETVARIANT"};

typedef struct {
  const sw_dockerfile_t *df;
  const sw_lint_opts_t *o;
  sw_lint_t *out;
  char **skip;
  bool skip_all;
} lint_t;

static void warn(lint_t *l, const char *rule, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
warn(lint_t *l, const char *rule, int line, const char *fmt, ...)
{
  if (l->skip_all || sw_strv_contains(l->skip, rule))
    return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  sw_lint_t *o = l->out;
  o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
  o->v[o->n++] = (sw_lint_warning_t){.rule = rule, .line = line, .msg = msg};
}

/* `# check=skip=A,B|all;error=true` */
static void
directive(lint_t *l)
{
  l->skip = xcalloc(1, sizeof(char *));
  if (l->df->check == NULL)
    return;
  _cleanup_free_ char *copy = xstrdup(l->df->check);
  char *save = NULL;
  for (char *f = strtok_r(copy, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
    while (isspace((unsigned char)*f))
      f++;
    if (sw_str_has_prefix(f, "skip=")) {
      char *s2 = NULL;
      for (char *r = strtok_r(f + 5, ",", &s2); r; r = strtok_r(NULL, ",", &s2)) {
        while (isspace((unsigned char)*r))
          r++;
        r[strcspn(r, " \t")] = '\0';
        bool known = false;
        for (size_t i = 0; i < SW_ARRAY_SIZE(all_rules); i++)
          known = known || strcmp(r, all_rules[i]) == 0;
        if (strcasecmp(r, "all") == 0)
          l->skip_all = true;
        else if (known)
          sw_strv_push(&l->skip, r);
        else if (*r && l->out->invalid == NULL)
          l->out->invalid = xasprintf("check directive `%s`: no rule `%s`", l->df->check, r);
      }
    } else if (sw_str_has_prefix(f, "error=")) {
      l->out->error = strcmp(f + 6, "true") == 0;
    } else if (*f && l->out->invalid == NULL) {
      l->out->invalid = xasprintf("check directive `%s`: unknown option `%s` (skip=RULE,…|all; "
                                  "error=true|false)",
                                  l->df->check, f);
    }
  }
}

/* ---- helpers ---- */

/* The keyword as written in the source. */
static char *
keyword(const sw_dockerfile_t *df, const sw_insn_t *in)
{
  if (in->line < 1 || (size_t)in->line > df->n_lines || in->col < 1)
    return xstrdup(in->name);
  const char *s = df->lines[in->line - 1];
  if (strlen(s) < (size_t)in->col - 1 + strlen(in->name))
    return xstrdup(in->name);
  return xstrndup(s + in->col - 1, strlen(in->name));
}

static int
casing(const char *s) /* 1 upper, -1 lower, 0 mixed */
{
  bool up = false, low = false;
  for (; *s; s++) {
    up = up || isupper((unsigned char)*s);
    low = low || islower((unsigned char)*s);
  }
  return up && !low ? 1 : low && !up ? -1 : 0;
}

static char *
upper(const char *s)
{
  char *u = xstrdup(s);
  for (char *c = u; *c; c++)
    *c = (char)toupper((unsigned char)*c);
  return u;
}

typedef void (*var_cb)(void *ud, const char *name, bool has_default);

/* Variable references in a word as BuildKit's lexer finds them: `$NAME`, `${NAME}`,
 * `${NAME<op>…}` (has_default for - = + ? forms); not inside single quotes, not escaped. */
static void
scan_vars(const char *s, char esc, var_cb cb, void *ud)
{
  bool sq = false;
  for (const char *p = s; *p; p++) {
    if (*p == esc && p[1]) {
      p++;
      continue;
    }
    if (*p == '\'') {
      sq = !sq;
      continue;
    }
    if (sq || *p != '$')
      continue;
    const char *q = p + 1;
    bool brace = *q == '{';
    if (brace)
      q++;
    size_t n = 0;
    while (isalnum((unsigned char)q[n]) || q[n] == '_')
      n++;
    if (n == 0 || isdigit((unsigned char)q[0]))
      continue;
    _cleanup_free_ char *name = xstrndup(q, n);
    const char *op = q + n;
    if (brace && *op == ':')
      op++;
    bool has_default = brace && *op && strchr("-=+?", *op);
    cb(ud, name, has_default);
    p = q + n - 1;
  }
}

/* ---- per-instruction rules ---- */

static void
rule_casing(lint_t *l)
{
  int up = 0, low = 0;
  for (size_t i = 0; i < l->df->n_insns; i++) {
    _cleanup_free_ char *k = keyword(l->df, &l->df->insns[i]);
    int c = casing(k);
    up += c > 0;
    low += c < 0;
  }
  bool want_upper = up >= low;
  for (size_t i = 0; i < l->df->n_insns; i++) {
    const sw_insn_t *in = &l->df->insns[i];
    _cleanup_free_ char *k = keyword(l->df, in);
    int c = casing(k);
    if (c == (want_upper ? 1 : -1))
      continue;
    _cleanup_free_ char *u = upper(k);
    warn(l, "ConsistentInstructionCasing", in->line,
         "Command '%s' should match the case of the command majority (%s); write %s", k,
         want_upper ? "uppercase" : "lowercase", want_upper ? u : in->name);
  }
}

static void
rule_continuation(lint_t *l, const sw_insn_t *in)
{
  if (in->n_heredocs > 0)
    return;
  for (int ln = in->line + 1; ln <= in->end_line && (size_t)ln <= l->df->n_lines; ln++) {
    const char *s = l->df->lines[ln - 1];
    while (*s == ' ' || *s == '\t' || *s == '\r')
      s++;
    if (*s == '\0')
      warn(l, "NoEmptyContinuation", ln,
           "Empty continuation line; remove it (a future Dockerfile syntax will refuse it)");
  }
}

static bool
secret_name(const char *name)
{
  static const char *const words[] = {"apikey",   "auth",  "credential", "credentials", "key",
                                      "password", "pword", "passwd",     "secret",      "token"};
  _cleanup_free_ char *copy = xstrdup(name);
  char *save = NULL;
  for (char *t = strtok_r(copy, "_", &save); t; t = strtok_r(NULL, "_", &save))
    for (size_t i = 0; i < SW_ARRAY_SIZE(words); i++)
      if (strcasecmp(t, words[i]) == 0)
        return true;
  return false;
}

static void
rule_legacy_and_secrets(lint_t *l, const sw_insn_t *in)
{
  const char *kw = sw_insn_kind_name(in->kind);
  if ((in->kind == SW_INSN_ENV || in->kind == SW_INSN_LABEL) && in->n_kvs > 0 &&
      !in->kvs[0].has_equals)
    warn(l, "LegacyKeyValueFormat", in->line,
         "\"%s key=value\" should be used instead of legacy \"%s key value\" format; write %s "
         "%s=…",
         kw, kw, kw, in->kvs[0].key);
  if (in->kind == SW_INSN_ENV)
    for (size_t i = 0; i < in->n_kvs; i++)
      if (secret_name(in->kvs[i].key))
        warn(l, "SecretsUsedInArgOrEnv", in->line,
             "Do not use ARG or ENV instructions for sensitive data (ENV \"%s\"); use RUN "
             "--mount=type=secret",
             in->kvs[i].key);
  if (in->kind == SW_INSN_ARG)
    for (size_t i = 0; i < in->n_args; i++) {
      _cleanup_free_ char *k = xstrndup(in->args[i], strcspn(in->args[i], "="));
      if (secret_name(k))
        warn(l, "SecretsUsedInArgOrEnv", in->line,
             "Do not use ARG or ENV instructions for sensitive data (ARG \"%s\"); use RUN "
             "--mount=type=secret",
             k);
    }
}

static void
rule_copy_ignored(lint_t *l, const sw_insn_t *in)
{
  if ((in->kind != SW_INSN_COPY && in->kind != SW_INSN_ADD) || l->o->ignore == NULL ||
      sw_insn_flag(in, "from") || in->n_args < 2)
    return;
  for (size_t i = 0; i + 1 < in->n_args; i++) {
    const char *a = in->args[i];
    if (strchr(a, '$') || strpbrk(a, "*?[") || strstr(a, "://") || sw_str_has_prefix(a, "<<") ||
        sw_str_has_prefix(a, "git@"))
      continue;
    if (sw_ignore_match(l->o->ignore, a))
      warn(l, "CopyIgnoredFile", in->line,
           "Attempting to Copy file \"%s\" that is excluded by .dockerignore; remove it from "
           ".dockerignore or from the %s",
           a, sw_insn_kind_name(in->kind));
  }
}

/* ---- FROM ---- */

typedef struct {
  lint_t *l;
  const sw_insn_t *in;
  char *const *known;
  const char *rule;
} from_scan_t;

static void
from_var(void *ud, const char *name, bool has_default)
{
  from_scan_t *f = ud;
  (void)has_default;
  for (size_t i = 0; i < SW_ARRAY_SIZE(platform_args); i++)
    if (strcmp(name, platform_args[i]) == 0)
      return;
  if (!sw_strv_contains(f->known, name))
    warn(f->l, "UndefinedArgInFrom", f->in->line,
         "FROM argument '%s' is not declared; declare it with ARG %s before the first FROM", name,
         name);
}

static void
rule_from(lint_t *l, const sw_insn_t *in, char *const *meta_names, char *const *meta_env,
          char ***names)
{
  if (in->n_args < 1)
    return;
  from_scan_t f = {.l = l, .in = in, .known = meta_names};
  scan_vars(in->args[0], l->df->escape, from_var, &f);
  const char *plat = sw_insn_flag(in, "platform");
  if (plat) {
    scan_vars(plat, l->df->escape, from_var, &f);
    if (strcmp(plat, "$TARGETPLATFORM") == 0 || strcmp(plat, "${TARGETPLATFORM}") == 0)
      warn(l, "RedundantTargetPlatform", in->line,
           "Setting platform to predefined %s in FROM is redundant as this is the default "
           "behavior; remove --platform",
           plat);
    else if (!strchr(plat, '$'))
      warn(l, "FromPlatformFlagConstDisallowed", in->line,
           "FROM --platform flag should not use constant value \"%s\"; use an ARG or "
           "$BUILDPLATFORM",
           plat);
  }
  if (strchr(in->args[0], '$')) {
    _cleanup_free_ char *base = NULL;
    sw_error_t e = NULL;
    bool bad = sw_word_expand(in->args[0], meta_env, l->df->escape, &base, &e) < 0 || !*base;
    if (!bad && strcasecmp(base, "scratch") != 0 && !sw_strv_contains(*names, base)) {
      _cleanup_free_ char *n = sw_ref_normalize(base, &e);
      bad = n == NULL;
    }
    sw_error_release(&e);
    if (bad)
      warn(l, "InvalidDefaultArgInFrom", in->line,
           "Default value for ARG %s results in empty or invalid base image name; give the ARG "
           "a default",
           in->args[0]);
  }
  if (in->n_args < 3)
    return;
  _cleanup_free_ char *k = keyword(l->df, in);
  int fc = casing(k), ac = casing(in->args[1]);
  if (fc != 0 && ac != fc)
    warn(l, "FromAsCasing", in->line, "'%s' and '%s' keywords' casing do not match; write %s",
         in->args[1], k, fc > 0 ? "AS" : "as");
  const char *name = in->args[2];
  _cleanup_free_ char *lname = xstrdup(name);
  for (char *c = lname; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (strcmp(lname, name) != 0)
    warn(l, "StageNameCasing", in->line, "Stage name '%s' should be lowercase; write AS %s", name,
         lname);
  if (strcmp(lname, "scratch") == 0 || strcmp(lname, "context") == 0)
    warn(l, "ReservedStageName", in->line,
         "'%s' is reserved and should not be used as a stage name; rename the stage", lname);
  if (sw_strv_contains(*names, lname))
    warn(l, "DuplicateStageName", in->line,
         "Duplicate stage name '%s', stage names should be unique; rename one of them", lname);
  sw_strv_push(names, lname);
}

/* ---- stages: WORKDIR, CMD/ENTRYPOINT/HEALTHCHECK, undefined variables ---- */

typedef struct {
  char *name;
  char **known; /* variables defined at the end of the stage (ARG, ENV, base env) */
  bool unknown; /* the base image's env is not known */
} stage_scope_t;

typedef struct {
  lint_t *l;
  const sw_insn_t *in;
  char **known;
} var_scan_t;

static void
undefined_var(void *ud, const char *name, bool has_default)
{
  var_scan_t *v = ud;
  if (has_default || sw_strv_contains(v->known, name))
    return;
  warn(v->l, "UndefinedVar", v->in->line,
       "Usage of undefined variable '$%s'; declare it with ARG or ENV before this line", name);
}

static bool
expands(sw_insn_kind_t k)
{
  return k == SW_INSN_ADD || k == SW_INSN_COPY || k == SW_INSN_ENV || k == SW_INSN_EXPOSE ||
         k == SW_INSN_LABEL || k == SW_INSN_STOPSIGNAL || k == SW_INSN_USER ||
         k == SW_INSN_VOLUME || k == SW_INSN_WORKDIR;
}

static void
check_vars(lint_t *l, const sw_insn_t *in, char ***known, bool unknown)
{
  var_scan_t v = {.l = l, .in = in, .known = *known};
  if (in->kind == SW_INSN_ENV) {
    for (size_t i = 0; i < in->n_kvs; i++) {
      v.known = *known;
      if (!unknown)
        scan_vars(in->kvs[i].value, l->df->escape, undefined_var, &v);
      sw_strv_push(known, in->kvs[i].key);
    }
    return;
  }
  if (in->kind == SW_INSN_ARG) {
    for (size_t i = 0; i < in->n_args; i++) {
      const char *eq = strchr(in->args[i], '=');
      v.known = *known;
      if (eq && !unknown)
        scan_vars(eq + 1, l->df->escape, undefined_var, &v);
      sw_strv_push_take(known, xstrndup(in->args[i], strcspn(in->args[i], "=")));
    }
    return;
  }
  if (unknown || !expands(in->kind) || in->json)
    return;
  if (in->kind == SW_INSN_LABEL) {
    for (size_t i = 0; i < in->n_kvs; i++)
      scan_vars(in->kvs[i].value, l->df->escape, undefined_var, &v);
    return;
  }
  for (size_t i = 0; i < in->n_args; i++)
    if (!sw_str_has_prefix(in->args[i], "<<"))
      scan_vars(in->args[i], l->df->escape, undefined_var, &v);
}

static void
stage_rules(lint_t *l, size_t from, size_t to, stage_scope_t *st)
{
  bool abs_workdir = false;
  int seen[3] = {0, 0, 0}; /* CMD, ENTRYPOINT, HEALTHCHECK */
  for (size_t i = from; i < to; i++) {
    const sw_insn_t *in = &l->df->insns[i];
    check_vars(l, in, &st->known, st->unknown);
    if (in->kind == SW_INSN_WORKDIR && in->n_args > 0) {
      if (in->args[0][0] == '/' || in->args[0][0] == '$')
        abs_workdir = true;
      else if (!abs_workdir)
        warn(l, "WorkdirRelativePath", in->line,
             "Relative workdir '%s' can have unexpected results if the base image changes; "
             "write an absolute path",
             in->args[0]);
    }
    int k = in->kind == SW_INSN_CMD           ? 0
            : in->kind == SW_INSN_ENTRYPOINT  ? 1
            : in->kind == SW_INSN_HEALTHCHECK ? 2
                                              : -1;
    if (k >= 0 && seen[k]++ > 0)
      warn(l, "MultipleInstructionsDisallowed", in->line,
           "Multiple %s instructions should not be used in the same stage because only the last "
           "one will be used; keep one",
           sw_insn_kind_name(in->kind));
    if ((in->kind == SW_INSN_CMD || in->kind == SW_INSN_ENTRYPOINT) && !in->json && in->n_args > 0)
      warn(l, "JSONArgsRecommended", in->line,
           "JSON arguments recommended for %s to prevent unintended behavior related to OS "
           "signals; write %s [\"executable\", \"arg\"]",
           sw_insn_kind_name(in->kind), sw_insn_kind_name(in->kind));
    if (in->kind == SW_INSN_MAINTAINER)
      warn(l, "MaintainerDeprecated", in->line,
           "Maintainer instruction is deprecated in favor of using label; write LABEL "
           "org.opencontainers.image.authors=\"…\"");
  }
}

void
sw_lint_run(const sw_dockerfile_t *df, const sw_lint_opts_t *o, sw_lint_t *out)
{
  static const sw_lint_opts_t none = {0};
  lint_t l = {.df = df, .o = o ? o : &none, .out = out};
  memset(out, 0, sizeof(*out));
  directive(&l);
  rule_casing(&l);
  _cleanup_strv_ char **meta_names = xcalloc(1, sizeof(char *));
  _cleanup_strv_ char **meta_env = xcalloc(1, sizeof(char *));
  _cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
  stage_scope_t *stages = NULL;
  size_t n_stages = 0, i = 0;
  for (; i < df->n_insns && df->insns[i].kind != SW_INSN_FROM; i++) {
    const sw_insn_t *in = &df->insns[i];
    rule_continuation(&l, in);
    rule_legacy_and_secrets(&l, in);
    for (size_t a = 0; in->kind == SW_INSN_ARG && a < in->n_args; a++) {
      const char *eq = strchr(in->args[a], '=');
      _cleanup_free_ char *k = xstrndup(in->args[a], strcspn(in->args[a], "="));
      sw_strv_push(&meta_names, k);
      if (eq) {
        _cleanup_free_ char *v = NULL;
        sw_error_t e = NULL;
        if (sw_word_expand(eq + 1, meta_env, df->escape, &v, &e) == 0)
          sw_env_set(&meta_env, k, v);
        sw_error_release(&e);
      }
    }
  }
  while (i < df->n_insns) {
    const sw_insn_t *from = &df->insns[i];
    size_t end = i + 1;
    while (end < df->n_insns && df->insns[end].kind != SW_INSN_FROM)
      end++;
    for (size_t j = i; j < end; j++) {
      rule_continuation(&l, &df->insns[j]);
      rule_legacy_and_secrets(&l, &df->insns[j]);
      rule_copy_ignored(&l, &df->insns[j]);
    }
    rule_from(&l, from, meta_names, meta_env, &names);
    stage_scope_t st = {.known = xcalloc(1, sizeof(char *))};
    st.name = from->n_args >= 3 ? xstrdup(names[sw_strv_len(names) - 1]) : NULL;
    _cleanup_free_ char *base = NULL;
    sw_error_t e = NULL;
    if (from->n_args < 1 || sw_word_expand(from->args[0], meta_env, df->escape, &base, &e) < 0) {
      sw_error_release(&e);
      st.unknown = true;
    } else {
      size_t k = 0;
      for (; k < n_stages; k++)
        if (stages[k].name && strcasecmp(stages[k].name, base) == 0)
          break;
      if (k < n_stages) {
        st.unknown = stages[k].unknown;
        for (size_t v = 0; stages[k].known[v]; v++)
          sw_strv_push(&st.known, stages[k].known[v]);
      } else if (strcasecmp(base, "scratch") != 0) {
        char **env = l.o->image_env ? l.o->image_env(l.o->ud, base) : NULL;
        st.unknown = env == NULL;
        for (size_t v = 0; env && env[v]; v++)
          sw_strv_push_take(&st.known, xstrndup(env[v], strcspn(env[v], "=")));
        sw_strv_free(env);
      }
    }
    stage_rules(&l, i + 1, end, &st);
    stages = xrealloc(stages, (n_stages + 1) * sizeof(*stages));
    stages[n_stages++] = st;
    i = end;
  }
  /* In line order (stable: rules of one line keep their order). */
  for (size_t a = 1; a < out->n; a++)
    for (size_t b = a; b > 0 && out->v[b - 1].line > out->v[b].line; b--) {
      sw_lint_warning_t t = out->v[b];
      out->v[b] = out->v[b - 1];
      out->v[b - 1] = t;
    }
  for (size_t k = 0; k < n_stages; k++) {
    free(stages[k].name);
    sw_strv_free(stages[k].known);
  }
  free(stages);
  sw_strv_free(l.skip);
}

void
sw_lint_clear(sw_lint_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].msg);
  free(l->v);
  free(l->invalid);
  memset(l, 0, sizeof(*l));
}

char *
sw_lint_format(const sw_dockerfile_t *df, const sw_lint_warning_t *w)
{
  return xasprintf("%s:%d: %s: %s", df->path, w->line, w->rule, w->msg);
}
