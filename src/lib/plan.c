/* slipway: stages, steps, stage dependencies and ARG scoping; see plan.h. */
#include "plan.h"

#include "image.h"
#include "platform.h"
#include "shellword.h"

#include <ctype.h>
#include <inttypes.h>

static const char *const proxy_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

bool
sw_is_proxy_arg(const char *key)
{
  for (size_t i = 0; i < SW_ARRAY_SIZE(proxy_args); i++)
    if (strcmp(key, proxy_args[i]) == 0)
      return true;
  return false;
}

/* ---- RUN --mount ---- */

void
sw_runmount_clear(sw_runmount_t *m)
{
  free(m->target);
  free(m->source);
  free(m->from);
  free(m->id);
  free(m->env);
  memset(m, 0, sizeof(*m));
}

static int
parse_bool(const char *v, bool *out)
{
  if (v == NULL || strcmp(v, "") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
    *out = true;
    return 0;
  }
  if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
    *out = false;
    return 0;
  }
  return -1;
}

static int
mount_kv(sw_runmount_t *m, const char *spec, const char *k, const char *v, sw_error_t *err)
{
  bool b;
  char *end = NULL;
#define NEED_V                                                                                     \
  if (v == NULL)                                                                                   \
  return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: `%s` needs a value", spec, k)
  if (strcmp(k, "target") == 0 || strcmp(k, "dst") == 0 || strcmp(k, "destination") == 0) {
    NEED_V;
    free(m->target);
    m->target = xstrdup(v);
  } else if (strcmp(k, "source") == 0 || strcmp(k, "src") == 0) {
    NEED_V;
    free(m->source);
    m->source = xstrdup(v);
  } else if (strcmp(k, "from") == 0) {
    NEED_V;
    free(m->from);
    m->from = xstrdup(v);
  } else if (strcmp(k, "id") == 0) {
    NEED_V;
    free(m->id);
    m->id = xstrdup(v);
  } else if (strcmp(k, "env") == 0) {
    NEED_V;
    free(m->env);
    m->env = xstrdup(v);
  } else if (strcmp(k, "readonly") == 0 || strcmp(k, "ro") == 0) {
    if (parse_bool(v, &b) < 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: bad value for `%s`", spec, k);
    m->readonly = b;
  } else if (strcmp(k, "rw") == 0 || strcmp(k, "readwrite") == 0) {
    if (parse_bool(v, &b) < 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: bad value for `%s`", spec, k);
    m->readonly = !b;
  } else if (strcmp(k, "required") == 0) {
    if (parse_bool(v, &b) < 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: bad value for `%s`", spec, k);
    m->required = b;
  } else if (strcmp(k, "sharing") == 0) {
    NEED_V;
    if (strcmp(v, "shared") == 0)
      m->sharing = 0;
    else if (strcmp(v, "private") == 0)
      m->sharing = 1;
    else if (strcmp(v, "locked") == 0)
      m->sharing = 2;
    else
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "--mount=%s: sharing must be shared, private or locked", spec);
  } else if (strcmp(k, "mode") == 0) {
    NEED_V;
    errno = 0;
    unsigned long mode = strtoul(v, &end, 8);
    if (errno || *end || mode > 07777)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: mode must be octal", spec);
    m->mode = (mode_t)mode;
  } else if (strcmp(k, "uid") == 0 || strcmp(k, "gid") == 0) {
    NEED_V;
    errno = 0;
    long id = strtol(v, &end, 10);
    if (errno || *end || id < 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: %s must be a number", spec, k);
    if (k[0] == 'u')
      m->uid = id;
    else
      m->gid = id;
  } else if (strcmp(k, "size") == 0 || strcmp(k, "tmpfs-size") == 0) {
    NEED_V;
    if (sw_parse_size(v, &m->size, err) < 0)
      return -1;
  } else {
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: unknown option `%s`", spec, k);
  }
#undef NEED_V
  return 0;
}

int
sw_runmount_parse(const char *spec, sw_runmount_t *out, sw_error_t *err)
{
  sw_runmount_t m = {.type = SW_RUNMOUNT_BIND, .uid = -1, .gid = -1};
  bool ro_set = false;
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;

  /* type= first, whatever its position: it decides the defaults. */
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (!sw_str_has_prefix(f, "type="))
      continue;
    const char *t = f + 5;
    if (strcmp(t, "bind") == 0)
      m.type = SW_RUNMOUNT_BIND;
    else if (strcmp(t, "cache") == 0)
      m.type = SW_RUNMOUNT_CACHE;
    else if (strcmp(t, "tmpfs") == 0)
      m.type = SW_RUNMOUNT_TMPFS;
    else if (strcmp(t, "secret") == 0)
      m.type = SW_RUNMOUNT_SECRET;
    else if (strcmp(t, "ssh") == 0)
      m.type = SW_RUNMOUNT_SSH;
    else
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: unknown mount type `%s`", spec, t);
  }
  m.readonly = m.type == SW_RUNMOUNT_BIND;
  free(copy);
  copy = xstrdup(spec);
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (sw_str_has_prefix(f, "type="))
      continue;
    char *eq = strchr(f, '=');
    if (eq)
      *eq = '\0';
    for (char *c = f; *c; c++)
      *c = (char)tolower((unsigned char)*c);
    if (mount_kv(&m, spec, f, eq ? eq + 1 : NULL, err) < 0) {
      sw_runmount_clear(&m);
      return -1;
    }
    if (strcmp(f, "readonly") == 0 || strcmp(f, "ro") == 0 || strcmp(f, "rw") == 0)
      ro_set = true;
  }
  (void)ro_set;
  if (m.type == SW_RUNMOUNT_SSH) {
    /* BuildKit: id "default"; the target (/run/buildkit/ssh_agent.N) is the solver's. */
    if (m.id == NULL)
      m.id = xstrdup("default");
    m.readonly = true;
  } else if (m.type == SW_RUNMOUNT_SECRET) {
    if (m.id == NULL && m.target)
      m.id = xstrdup(strrchr(m.target, '/') ? strrchr(m.target, '/') + 1 : m.target);
    if (m.id == NULL && m.type == SW_RUNMOUNT_SSH)
      m.id = xstrdup("default");
    if (m.id == NULL) {
      sw_runmount_clear(&m);
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "--mount=%s: a secret needs id= or target=", spec);
    }
    if (m.target == NULL && m.env == NULL)
      m.target = xasprintf("/run/secrets/%s", m.id);
    m.readonly = true;
  } else if (m.target == NULL) {
    sw_runmount_clear(&m);
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--mount=%s: target= is required", spec);
  }
  if (m.type == SW_RUNMOUNT_CACHE && m.id == NULL)
    m.id = xstrdup(m.target);
  *out = m;
  return 0;
}

/* ---- plan ---- */

void
sw_steps_free(sw_step_t *steps, size_t n)
{
  for (size_t i = 0; steps && i < n; i++) {
    free(steps[i].from_image);
    free(steps[i].from_context);
    free(steps[i].mount_stages);
    sw_strv_free(steps[i].mount_images);
  }
  free(steps);
}

void
sw_plan_free(sw_plan_t *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n_stages; i++) {
    sw_stage_t *s = &p->stages[i];
    free(s->name);
    free(s->display);
    free(s->base);
    free(s->platform);
    sw_steps_free(s->steps, s->n_steps);
    free(s->deps);
    for (size_t j = 0; j < s->n_trigger_dfs; j++)
      sw_dockerfile_free(s->trigger_dfs[j]);
    free(s->trigger_dfs);
  }
  free(p->stages);
  sw_strv_free(p->global_args);
  sw_strv_free(p->build_args);
  sw_strv_free(p->used_args);
  sw_strv_free(p->all_names);
  sw_strv_free(p->contexts);
  free(p->platform);
  free(p->build_platform);
  free(p);
}

static int at(const sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An error about an instruction, in the parser's FILE:LINE:COL format. */
static int
at(const sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  return sw_dockerfile_error(p->df, insn->line, insn->col, err, "%s", msg);
}

static int
unknown(const sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err)
{
  _cleanup_free_ char *msg = sw_insn_unknown_msg(insn);
  return at(p, insn, err, "%s", msg);
}

static const char *
allowed_flags(sw_insn_kind_t k)
{
  switch (k) {
  case SW_INSN_FROM:
    return " platform ";
  case SW_INSN_RUN:
    return " mount network security ";
  case SW_INSN_COPY:
    return " from chown chmod link parents exclude ";
  case SW_INSN_ADD:
    return " chown chmod link keep-git-dir checksum exclude unpack ";
  case SW_INSN_HEALTHCHECK:
    return " interval timeout start-period start-interval retries ";
  default:
    return " ";
  }
}

static int
check_flags(const sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err)
{
  const char *allowed = allowed_flags(insn->kind);
  for (size_t i = 0; insn->flags && insn->flags[i]; i++) {
    const char *f = insn->flags[i];
    while (*f == '-')
      f++;
    size_t n = strcspn(f, "=");
    _cleanup_free_ char *word = xasprintf(" %.*s ", (int)n, f);
    if (strstr(allowed, word) == NULL)
      return at(p, insn, err, "unknown flag `%s` for %s", insn->flags[i],
                sw_insn_kind_name(insn->kind));
  }
  return 0;
}

static bool
valid_stage_name(const char *s)
{
  if (!islower((unsigned char)s[0]))
    return false;
  for (const char *c = s; *c; c++)
    if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '_' ||
          *c == '.'))
      return false;
  return true;
}

static char *
lower(const char *s)
{
  char *r = xstrdup(s);
  for (char *c = r; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  return r;
}

/* Stage index by name among the first `limit` stages, or -1. */
static int
find_stage(const sw_plan_t *p, const char *name, size_t limit)
{
  _cleanup_free_ char *l = lower(name);
  for (size_t i = 0; i < limit && i < p->n_stages; i++)
    if (p->stages[i].name && strcmp(p->stages[i].name, l) == 0)
      return (int)i;
  return -1;
}

static void
add_dep(sw_stage_t *s, int dep)
{
  for (size_t i = 0; i < s->n_deps; i++)
    if (s->deps[i] == dep)
      return;
  s->deps = xrealloc(s->deps, (s->n_deps + 1) * sizeof(int));
  s->deps[s->n_deps++] = dep;
}

/* Resolve a --from value: a stage defined before `stage` (name or index), else an image. */
static int
resolve_from(sw_plan_t *p, sw_stage_t *stage, const sw_insn_t *insn, const char *from,
             int *stage_out, char **image_out, char **context_out, sw_error_t *err)
{
  *stage_out = -1;
  *image_out = NULL;
  if (strchr(from, '$'))
    return at(p, insn, err,
              "variable expansion is not supported for --from (`%s`): define a stage with FROM "
              "using a global ARG instead",
              from);
  char *end = NULL;
  errno = 0;
  long idx = strtol(from, &end, 10);
  if (*from && *end == '\0' && errno == 0) {
    if (idx < 0 || (size_t)idx >= p->n_stages)
      return at(p, insn, err, "invalid stage index %ld", idx);
    if (idx == stage->index)
      return at(p, insn, err, "circular dependency: stage %ld copies from itself", idx);
    if (idx > stage->index)
      return at(p, insn, err, "stage %ld must be defined before the stage that uses it", idx);
    *stage_out = (int)idx;
    return 0;
  }
  int s = find_stage(p, from, p->n_stages);
  sw_named_kind_t kind;
  const char *named = s < 0 ? sw_plan_named_context(p, from, &kind) : NULL;
  if (named && kind == SW_NAMED_DIR && context_out == NULL)
    return at(p, insn, err,
              "--from=%s: a directory given with --build-context can be copied from (COPY "
              "--from), not mounted",
              from);
  if (named) {
    if (kind == SW_NAMED_DIR)
      *context_out = xstrdup(named);
    else
      *image_out = xstrdup(named);
    return 0;
  }
  if (s < 0) {
    /* A stage defined further down is an error, not an image of that name (BuildKit's rule). */
    _cleanup_free_ char *l = lower(from);
    for (size_t i = 0; p->all_names && p->all_names[i]; i++)
      if (strcmp(p->all_names[i], l) == 0 && (int)i > stage->index)
        return at(p, insn, err,
                  "stage `%s` is defined after this line: a stage must be defined before the "
                  "stages that use it",
                  from);
  }
  if (s >= 0) {
    if (s == stage->index)
      return at(p, insn, err, "circular dependency: stage `%s` uses itself (--from=%s)",
                stage->name, from);
    if (s > stage->index)
      return at(p, insn, err,
                "stage `%s` is defined after this line: a stage must be defined before the "
                "stages that use it",
                from);
    *stage_out = s;
    return 0;
  }
  *image_out = xstrdup(from);
  return 0;
}

static int
resolve_step(sw_plan_t *p, sw_stage_t *stage, const sw_insn_t *insn, bool onbuild, sw_step_t *st,
             sw_error_t *err)
{
  memset(st, 0, sizeof(*st));
  st->insn = insn;
  st->onbuild = onbuild;
  st->from_stage = -1;
  if (insn->kind == SW_INSN_UNKNOWN)
    return unknown(p, insn, err);
  if (insn->kind == SW_INSN_FROM)
    return at(p, insn, err, "FROM cannot be used here");
  if (onbuild && (insn->kind == SW_INSN_ONBUILD || insn->kind == SW_INSN_MAINTAINER))
    return at(p, insn, err, "%s is not allowed as an ONBUILD trigger",
              sw_insn_kind_name(insn->kind));
  if (check_flags(p, insn, err) < 0)
    return -1;
  st->numbered = insn->kind == SW_INSN_ADD || insn->kind == SW_INSN_COPY ||
                 insn->kind == SW_INSN_RUN || insn->kind == SW_INSN_WORKDIR;

  if (insn->kind == SW_INSN_COPY || insn->kind == SW_INSN_ADD) {
    const char *from = sw_insn_flag(insn, "from");
    if (from && insn->kind == SW_INSN_ADD)
      return at(p, insn, err, "ADD does not support --from: use COPY --from");
    if (from && resolve_from(p, stage, insn, from, &st->from_stage, &st->from_image,
                             &st->from_context, err) < 0)
      return -1;
    if (st->from_stage >= 0)
      add_dep(stage, st->from_stage);
    if (insn->n_args + insn->n_heredocs < 2 && insn->n_args < 2)
      return at(p, insn, err, "%s requires at least two arguments, but only %zu provided",
                sw_insn_kind_name(insn->kind), insn->n_args);
  }
  if (insn->kind == SW_INSN_RUN) {
    _cleanup_strv_ char **mounts = sw_insn_flag_all(insn, "mount");
    st->n_mounts = sw_strv_len(mounts);
    st->mount_stages = xcalloc(st->n_mounts + 1, sizeof(int));
    st->mount_images = xcalloc(st->n_mounts + 1, sizeof(char *));
    for (size_t i = 0; i < st->n_mounts; i++) {
      sw_runmount_t m;
      st->mount_stages[i] = -1;
      if (sw_runmount_parse(mounts[i], &m, err) < 0)
        return sw_dockerfile_error(p->df, insn->line, insn->col, err, "%s", (*err)->msg);
      int r = 0;
      if (m.from)
        r = resolve_from(p, stage, insn, m.from, &st->mount_stages[i], &st->mount_images[i], NULL,
                         err);
      sw_runmount_clear(&m);
      if (r < 0)
        return -1;
      if (st->mount_stages[i] >= 0)
        add_dep(stage, st->mount_stages[i]);
    }
  }
  return 0;
}

static int
push_step(sw_plan_t *p, sw_stage_t *s, const sw_insn_t *insn, bool onbuild, sw_error_t *err)
{
  s->steps = xrealloc(s->steps, (s->n_steps + 1) * sizeof(*s->steps));
  if (resolve_step(p, s, insn, onbuild, &s->steps[s->n_steps], err) < 0) {
    sw_step_t *st = &s->steps[s->n_steps];
    free(st->from_image);
    free(st->from_context);
    free(st->mount_stages);
    sw_strv_free(st->mount_images);
    return -1;
  }
  s->n_steps++;
  return 0;
}

static const char *
lookup_build_arg(const sw_plan_t *p, const char *key)
{
  return sw_env_get(p->build_args, key);
}

/* Predefined platform args, as BuildKit's defaultArgs: BUILD* the host, TARGET* the target. */
static void
platform_args(sw_plan_t *p)
{
  const char *pre[] = {"BUILD", "TARGET"};
  const char *plat[] = {p->build_platform, p->platform};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
    sw_platform_split(plat[i], &os, &arch, &variant);
    _cleanup_free_ char *k1 = xasprintf("%sPLATFORM", pre[i]);
    _cleanup_free_ char *k2 = xasprintf("%sOS", pre[i]);
    _cleanup_free_ char *k3 = xasprintf("%sARCH", pre[i]);
    _cleanup_free_ char *k4 = xasprintf("%sVARIANT", pre[i]);
    sw_env_set(&p->global_args, k1, plat[i]);
    sw_env_set(&p->global_args, k2, os);
    sw_env_set(&p->global_args, k3, arch);
    sw_env_set(&p->global_args, k4, variant);
  }
}

static void
mark_used(sw_plan_t *p, const char *key)
{
  if (lookup_build_arg(p, key) && !sw_strv_contains(p->used_args, key))
    sw_strv_push(&p->used_args, key);
}

/* ARG before the first FROM: a meta arg, visible to FROM lines. */
static int
meta_arg(sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err)
{
  for (size_t i = 0; i < insn->n_args; i++) {
    const char *a = insn->args[i];
    const char *eq = strchr(a, '=');
    _cleanup_free_ char *key = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
    _cleanup_free_ char *val = NULL;
    mark_used(p, key);
    const char *given = lookup_build_arg(p, key);
    if (given) {
      val = xstrdup(given);
    } else if (eq) {
      if (sw_word_expand(eq + 1, p->global_args, p->df->escape, &val, err) < 0)
        return sw_dockerfile_error(p->df, insn->line, insn->col, err, "%s", (*err)->msg);
    }
    if (val)
      sw_env_set(&p->global_args, key, val);
  }
  return 0;
}

/* --build-context: a stage named like a context is replaced by it (its instructions are not
 * built, as buildx does); else a FROM base that is no stage but names a context uses it. */
static int
named_base(sw_plan_t *p, const sw_insn_t *insn, sw_stage_t *s, sw_error_t *err)
{
  sw_named_kind_t kind;
  const char *named = s->name ? sw_plan_named_context(p, s->name, &kind) : NULL;
  if (named)
    s->replaced = true;
  else if (s->base_stage < 0 && !s->scratch)
    named = sw_plan_named_context(p, s->base, &kind);
  if (named == NULL)
    return 0;
  if (kind == SW_NAMED_DIR)
    return at(p, insn, err,
              "`%s` is a directory given with --build-context: slipway copies from it (COPY "
              "--from) but does not build FROM it; give an image (docker-image://, "
              "oci-layout://)",
              s->replaced ? s->name : s->base);
  free(s->base);
  s->base = xstrdup(named);
  s->scratch = false;
  s->base_stage = -1;
  s->n_deps = 0;
  return 0;
}

/* FROM --platform=P: expanded with the meta args and normalised (the stage's own platform). */
static int
stage_platform(sw_plan_t *p, const sw_insn_t *insn, sw_stage_t *s, sw_error_t *err)
{
  const char *plat = sw_insn_flag(insn, "platform");
  _cleanup_free_ char *raw = NULL;
  if (plat == NULL)
    return 0;
  if (sw_word_expand(plat, p->global_args, p->df->escape, &raw, err) < 0 ||
      sw_platform_normalize(raw, &s->platform, err) < 0)
    return sw_dockerfile_error(p->df, insn->line, insn->col, err, "FROM --platform: %s",
                               (*err)->msg);
  s->platform_given = true;
  return 0;
}

/* The platform each stage runs on: its own, else its base stage's (BuildKit's dispatch state
 * takes the base's), else the target. Bases come first, so one pass in order does. */
static void
resolve_platforms(sw_plan_t *p)
{
  for (size_t i = 0; i < p->n_stages; i++) {
    sw_stage_t *s = &p->stages[i];
    if (s->base_stage >= 0) {
      free(s->platform);
      s->platform = xstrdup(p->stages[s->base_stage].platform);
    } else if (s->platform == NULL) {
      s->platform = xstrdup(p->platform);
    }
  }
}

static int
new_stage(sw_plan_t *p, const sw_insn_t *insn, sw_error_t *err)
{
  if (check_flags(p, insn, err) < 0)
    return -1;
  if (insn->n_args != 1 && !(insn->n_args == 3 && strcasecmp(insn->args[1], "as") == 0))
    return at(p, insn, err, "FROM requires either one or three arguments (FROM IMAGE [AS NAME])");
  p->stages = xrealloc(p->stages, (p->n_stages + 1) * sizeof(*p->stages));
  sw_stage_t *s = &p->stages[p->n_stages];
  memset(s, 0, sizeof(*s));
  s->index = (int)p->n_stages;
  s->from = insn;
  s->base_stage = -1;
  p->n_stages++;

  if (insn->n_args == 3) {
    s->name = lower(insn->args[2]);
    if (!valid_stage_name(s->name))
      return at(p, insn, err,
                "invalid name for build stage: `%s`, name can't start with a number or contain "
                "symbols",
                insn->args[2]);
    if (find_stage(p, s->name, p->n_stages - 1) >= 0)
      return at(p, insn, err, "duplicate stage name `%s`", s->name);
  }
  if (sw_word_expand(insn->args[0], p->global_args, p->df->escape, &s->base, err) < 0)
    return sw_dockerfile_error(p->df, insn->line, insn->col, err, "%s", (*err)->msg);
  if (s->base[0] == '\0')
    return at(p, insn, err, "base name (%s) should not be blank", insn->args[0]);
  if (stage_platform(p, insn, s, err) < 0)
    return -1;
  if (strcasecmp(s->base, "scratch") == 0) {
    s->scratch = true;
  } else {
    s->base_stage = find_stage(p, s->base, p->n_stages - 1);
    if (s->base_stage >= 0)
      add_dep(s, s->base_stage);
  }
  if (p->contexts && named_base(p, insn, s, err) < 0)
    return -1;
  s->display = s->name ? xstrdup(s->name) : xasprintf("stage-%d", s->index);
  return 0;
}

static void
mark_needed(sw_plan_t *p, int i)
{
  sw_stage_t *s = &p->stages[i];
  if (s->needed)
    return;
  s->needed = true;
  for (size_t d = 0; d < s->n_deps; d++)
    mark_needed(p, s->deps[d]);
}

/* ONBUILD triggers of a base stage run right after the downstream FROM. */
static int
add_stage_triggers(sw_plan_t *p, sw_stage_t *s, sw_error_t *err)
{
  if (s->base_stage < 0)
    return 0;
  const sw_stage_t *b = &p->stages[s->base_stage];
  for (size_t i = 0; i < b->n_steps; i++) {
    const sw_insn_t *insn = b->steps[i].insn;
    if (insn->kind != SW_INSN_ONBUILD || b->steps[i].onbuild)
      continue;
    if (insn->sub == NULL)
      return at(p, insn, err, "ONBUILD requires an instruction");
    if (push_step(p, s, insn->sub, true, err) < 0)
      return -1;
  }
  return 0;
}

/* Every stage's name by index ("" when unnamed), before the stages are built. */
static void
collect_names(sw_plan_t *p)
{
  p->all_names = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < p->df->n_insns; i++) {
    const sw_insn_t *in = &p->df->insns[i];
    if (in->kind != SW_INSN_FROM)
      continue;
    if (in->n_args == 3)
      sw_strv_push_take(&p->all_names, lower(in->args[2]));
    else
      sw_strv_push(&p->all_names, "");
  }
}

static int
build_stages(sw_plan_t *p, sw_error_t *err)
{
  const sw_dockerfile_t *df = p->df;
  collect_names(p);
  for (size_t i = 0; i < df->n_insns; i++) {
    const sw_insn_t *insn = &df->insns[i];
    if (insn->kind == SW_INSN_FROM) {
      if (new_stage(p, insn, err) < 0)
        return -1;
      if (!p->stages[p->n_stages - 1].replaced &&
          add_stage_triggers(p, &p->stages[p->n_stages - 1], err) < 0)
        return -1;
      continue;
    }
    if (p->n_stages == 0) {
      if (insn->kind == SW_INSN_ARG) {
        if (meta_arg(p, insn, err) < 0)
          return -1;
        continue;
      }
      if (insn->kind == SW_INSN_UNKNOWN)
        return unknown(p, insn, err);
      return at(p, insn, err, "%s before the first FROM: only ARG may come before FROM",
                sw_insn_kind_name(insn->kind));
    }
    if (!p->stages[p->n_stages - 1].replaced &&
        push_step(p, &p->stages[p->n_stages - 1], insn, false, err) < 0)
      return -1;
  }
  if (p->n_stages == 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: no build stage: the Dockerfile has no FROM",
                         df->path);
  return 0;
}

static void
count_totals(sw_plan_t *p)
{
  for (size_t i = 0; i < p->n_stages; i++) {
    sw_stage_t *s = &p->stages[i];
    s->total = (!s->scratch && s->base_stage < 0) ? 1 : 0;
    for (size_t j = 0; j < s->n_steps; j++)
      s->total += s->steps[j].numbered;
  }
  if (p->n_stages == 1) {
    free(p->stages[0].display);
    p->stages[0].display = xstrdup("");
  }
}

int
sw_plan_new(const sw_dockerfile_t *df, const sw_plan_opts_t *opts, sw_plan_t **out, sw_error_t *err)
{
  sw_plan_t *p = xcalloc(1, sizeof(*p));
  p->df = df;
  p->build_platform = sw_platform_host();
  if (opts->platform == NULL) {
    p->platform = xstrdup(p->build_platform);
  } else if (sw_platform_normalize(opts->platform, &p->platform, err) < 0) {
    sw_plan_free(p);
    return sw_error_wrap(err, "--platform");
  }
  p->build_args = xcalloc(1, sizeof(char *));
  for (size_t i = 0; opts->build_args && opts->build_args[i]; i++) {
    const char *a = opts->build_args[i];
    const char *eq = strchr(a, '=');
    if (eq) {
      _cleanup_free_ char *k = xstrndup(a, (size_t)(eq - a));
      sw_env_set(&p->build_args, k, eq + 1);
    } else if (getenv(a)) {
      sw_env_set(&p->build_args, a, getenv(a));
    }
  }
  p->global_args = xcalloc(1, sizeof(char *));
  p->contexts = opts->contexts ? sw_strv_dup(opts->contexts) : NULL;
  platform_args(p);

  if (build_stages(p, err) < 0) {
    sw_plan_free(p);
    return -1;
  }
  resolve_platforms(p);
  count_totals(p);

  p->target = (int)p->n_stages - 1;
  if (opts->target && *opts->target) {
    p->target = find_stage(p, opts->target, p->n_stages);
    if (p->target < 0) {
      _cleanup_buf_ sw_buf_t names = {0};
      for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].name)
          sw_buf_printf(&names, "%s`%s`", names.len ? ", " : "", p->stages[i].name);
      int r = sw_error_code(err, SW_EXIT_USAGE, 0,
                            "target stage `%s` could not be found in %s (stages: %s)", opts->target,
                            df->path, names.len ? names.data : "none named");
      sw_plan_free(p);
      return r;
    }
  }
  mark_needed(p, p->target);
  *out = p;
  return 0;
}

size_t
sw_plan_order(const sw_plan_t *p, int *order)
{
  /* Stages only depend on earlier stages, so index order is a topological order. */
  size_t n = 0;
  for (size_t i = 0; i < p->n_stages; i++)
    if (p->stages[i].needed)
      order[n++] = (int)i;
  return n;
}

char **
sw_plan_unused_build_args(const sw_plan_t *p)
{
  char **v = xcalloc(1, sizeof(char *));
  for (size_t i = 0; p->build_args[i]; i++) {
    _cleanup_free_ char *k = xstrndup(p->build_args[i], strcspn(p->build_args[i], "="));
    if (!sw_strv_contains(p->used_args, k) && !sw_is_proxy_arg(k))
      sw_strv_push(&v, k);
  }
  return v;
}

int
sw_plan_trigger_steps(sw_plan_t *p, sw_stage_t *stage, char *const *triggers, sw_step_t **steps,
                      size_t *n, sw_error_t *err)
{
  size_t count = sw_strv_len(triggers);
  sw_step_t *v = xcalloc(count + 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    sw_dockerfile_t *tdf = NULL;
    _cleanup_free_ char *name = xasprintf("%s (ONBUILD trigger of `%s`)", p->df->path, stage->base);
    if (sw_dockerfile_parse(name, triggers[i], strlen(triggers[i]), &tdf, err) < 0) {
      sw_steps_free(v, k);
      return -1;
    }
    stage->trigger_dfs =
        xrealloc(stage->trigger_dfs, (stage->n_trigger_dfs + 1) * sizeof(*stage->trigger_dfs));
    stage->trigger_dfs[stage->n_trigger_dfs++] = tdf;
    if (tdf->n_insns != 1) {
      sw_steps_free(v, k);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: an ONBUILD trigger must be one instruction",
                           name);
    }
    const sw_dockerfile_t *saved = p->df;
    p->df = tdf;
    int r = resolve_step(p, stage, &tdf->insns[0], true, &v[k], err);
    p->df = saved;
    if (r < 0) {
      sw_steps_free(v, k);
      return -1;
    }
    k++;
  }
  *steps = v;
  *n = k;
  return 0;
}

/* ---- scope ---- */

void
sw_scope_init(sw_scope_t *s)
{
  s->args = xcalloc(1, sizeof(char *));
  s->keys = xcalloc(1, sizeof(char *));
  s->over = xcalloc(1, sizeof(char *));
}

void
sw_scope_clear(sw_scope_t *s)
{
  sw_strv_free(s->args);
  sw_strv_free(s->keys);
  sw_strv_free(s->over);
  s->args = s->keys = s->over = NULL;
}

void
sw_scope_copy(sw_scope_t *dst, const sw_scope_t *src)
{
  dst->args = sw_strv_dup(src->args);
  dst->keys = sw_strv_dup(src->keys);
  dst->over = sw_strv_dup(src->over);
}

/* Drops KEY=... from an env vector. */
static void
env_remove(char **v, const char *key)
{
  size_t n = sw_strv_len(v), klen = strlen(key);
  for (size_t i = 0; i < n; i++)
    if (strncmp(v[i], key, klen) == 0 && v[i][klen] == '=') {
      free(v[i]);
      memmove(&v[i], &v[i + 1], (n - i) * sizeof(char *));
      return;
    }
}

void
sw_scope_inherit(sw_scope_t *dst, const sw_scope_t *base, char *const *base_config_env)
{
  for (size_t i = 0; base->over[i]; i++) {
    _cleanup_free_ char *k = xstrndup(base->over[i], strcspn(base->over[i], "="));
    if (sw_env_get(base_config_env, k) == NULL)
      sw_strv_push(&dst->over, base->over[i]);
  }
  for (size_t i = 0; base->keys[i]; i++)
    if (!sw_strv_contains(dst->keys, base->keys[i]))
      sw_strv_push(&dst->keys, base->keys[i]);
}

void
sw_scope_env_set(sw_scope_t *s, const char *key)
{
  env_remove(s->over, key);
}

const char *
sw_scope_declare(sw_scope_t *s, const sw_plan_t *p, const char *key, const char *value)
{
  if (!sw_strv_contains(s->keys, key))
    sw_strv_push(&s->keys, key);
  mark_used((sw_plan_t *)p, key);
  const char *v = sw_env_get(p->build_args, key);
  if (v == NULL)
    v = value;
  if (v == NULL)
    v = sw_env_get(p->global_args, key);
  if (v == NULL)
    return sw_env_get(s->args, key); /* redeclared without a value: keeps the earlier one */
  /* Move it to the end: the declaration order decides what history shows. It is newer than
   * any ENV of its name so far. */
  _cleanup_free_ char *copy = xstrdup(v);
  env_remove(s->args, key);
  env_remove(s->over, key);
  sw_env_set(&s->args, key, copy);
  sw_env_set(&s->over, key, copy);
  return sw_env_get(s->args, key);
}

char **
sw_scope_env(const sw_scope_t *s, char *const *config_env)
{
  char **env = sw_strv_dup(config_env);
  for (size_t i = 0; s->over[i]; i++) {
    _cleanup_free_ char *k = xstrndup(s->over[i], strcspn(s->over[i], "="));
    sw_env_set(&env, k, s->over[i] + strlen(k) + 1);
  }
  return env;
}

char **
sw_scope_run_env(const sw_scope_t *s, const sw_plan_t *p, char *const *config_env)
{
  char **env = sw_scope_env(s, config_env);
  for (size_t i = 0; i < SW_ARRAY_SIZE(proxy_args); i++) {
    const char *v = sw_env_get(p->build_args, proxy_args[i]);
    if (v && sw_env_get(env, proxy_args[i]) == NULL)
      sw_env_set(&env, proxy_args[i], v);
  }
  return env;
}
