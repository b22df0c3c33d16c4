/* slipway: lock files (uv.lock, poetry.lock) to the pinned requirements of the project's
 * runtime dependencies (see recipe.h). The lock holds every group's packages; the runtime set is
 * what the project's own dependencies reach, walked through the lock's dependency lists, so
 * development groups stay out. Pure and fuzzed. */
#include "recipe.h"

typedef struct {
  const sw_toml_t *t;
  size_t n;     /* packages in the lock */
  char **names; /* canonical name of package i */
  const char **versions;
  char **marker; /* NULL: not reached; "": always; else the marker it is reached under */
  size_t *queue;
  size_t qlen;
} walk_t;

static const char *
pkg(const walk_t *w, size_t i, const char *field, char *buf, size_t size)
{
  snprintf(buf, size, "package.%zu.%s", i, field);
  return sw_toml_get(w->t, buf);
}

static void
walk_init(walk_t *w, const sw_toml_t *t)
{
  char k[64];
  memset(w, 0, sizeof(*w));
  w->t = t;
  while (snprintf(k, sizeof(k), "package.%zu.name", w->n), sw_toml_get(t, k))
    w->n++;
  w->names = xcalloc(w->n + 1, sizeof(char *));
  w->marker = xcalloc(w->n + 1, sizeof(char *));
  w->versions = xcalloc(w->n + 1, sizeof(char *));
  w->queue = xcalloc(w->n + 1, sizeof(size_t));
  for (size_t i = 0; i < w->n; i++) {
    const char *name = pkg(w, i, "name", k, sizeof(k));
    w->names[i] = sw_pep503_name(name, strlen(name));
    w->versions[i] = pkg(w, i, "version", k, sizeof(k));
  }
}

static void
walk_clear(walk_t *w)
{
  for (size_t i = 0; i < w->n; i++) {
    free(w->names[i]);
    free(w->marker[i]);
  }
  free(w->names);
  free(w->marker);
  free(w->versions);
  free(w->queue);
}

/* The package NAME (at VERSION when given), or -1. */
static ssize_t
find_pkg(const walk_t *w, const char *name, const char *version)
{
  _cleanup_free_ char *want = sw_pep503_name(name, strlen(name));
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->names[i], want) == 0 &&
        (version == NULL || (w->versions[i] && strcmp(w->versions[i], version) == 0)))
      return (ssize_t)i;
  return -1;
}

/* Reach package J through an edge with MARKER (NULL: none) from a parent reached under PM. */
static void
reach(walk_t *w, size_t j, const char *marker, const char *pm)
{
  _cleanup_free_ char *m = NULL;
  if (marker && *marker && pm && *pm)
    m = xasprintf("(%s) and (%s)", pm, marker);
  else
    m = xstrdup(marker && *marker ? marker : pm ? pm : "");
  if (w->marker[j] == NULL) {
    w->marker[j] = steal_ptr(&m);
    w->queue[w->qlen++] = j;
  } else if (*w->marker[j] && strcmp(w->marker[j], m) != 0) {
    free(w->marker[j]); /* reached under two conditions: install it always */
    w->marker[j] = xstrdup("");
  }
}

/* uv: edges are arrays of tables {name, version?, marker?} under KEY. */
static const char *
field(const sw_toml_t *t, const char *key, const char *mid, const char *name)
{
  _cleanup_free_ char *k = xasprintf("%s.%s.%s", key, mid, name);
  return sw_toml_get(t, k);
}

static void
uv_edges(walk_t *w, const char *key, const char *pm)
{
  for (size_t m = 0;; m++) {
    char idx[32];
    snprintf(idx, sizeof(idx), "%zu", m);
    const char *name = field(w->t, key, idx, "name");
    if (name == NULL)
      break;
    const char *version = field(w->t, key, idx, "version");
    const char *marker = field(w->t, key, idx, "marker");
    ssize_t j = find_pkg(w, name, version);
    if (j >= 0)
      reach(w, (size_t)j, marker, pm);
  }
}

static int
add_pins(walk_t *w, ssize_t root, const char *path, sw_reqset_t *out, sw_error_t *err)
{
  for (size_t i = 0; i < w->n; i++) {
    if ((ssize_t)i == root || w->marker[i] == NULL)
      continue;
    const char *v = w->versions[i];
    if (v == NULL)
      continue;
    _cleanup_free_ char *req =
        xasprintf("%s==%s%s%s", w->names[i], v, *w->marker[i] ? "; " : "", w->marker[i]);
    if (sw_reqset_add(out, req, path, err) < 0)
      return -1;
  }
  return 0;
}

static int
uv_pins(const sw_toml_t *t, const char *path, const char *project, char *const *extras,
        sw_reqset_t *out, sw_error_t *err)
{
  walk_t w;
  walk_init(&w, t);
  char k[512];
  ssize_t root = -1;
  for (size_t i = 0; i < w.n && root < 0; i++) {
    const char *e = pkg(&w, i, "source.editable", k, sizeof(k));
    const char *v = pkg(&w, i, "source.virtual", k, sizeof(k));
    bool local = (e && strcmp(e, ".") == 0) || (v && strcmp(v, ".") == 0);
    if (local && (project == NULL || find_pkg(&w, project, NULL) == (ssize_t)i))
      root = (ssize_t)i;
  }
  int rc = -1;
  if (root < 0) {
    sw_error_code(err, SW_EXIT_USAGE, 0,
                  "%s: no package for the project itself (source = { editable = \".\" } or "
                  "{ virtual = \".\" }); is the lock file up to date (uv lock)?",
                  path);
    goto out;
  }
  w.marker[root] = xstrdup("");
  snprintf(k, sizeof(k), "package.%zd.dependencies", root);
  uv_edges(&w, k, "");
  for (size_t i = 0; extras && extras[i]; i++) {
    snprintf(k, sizeof(k), "package.%zd.optional-dependencies.%s", root, extras[i]);
    uv_edges(&w, k, "");
  }
  for (size_t q = 0; q < w.qlen; q++) {
    size_t i = w.queue[q];
    snprintf(k, sizeof(k), "package.%zu.dependencies", i);
    uv_edges(&w, k, w.marker[i]);
  }
  rc = add_pins(&w, root, path, out, err);
out:
  walk_clear(&w);
  return rc;
}

/* poetry: [package.dependencies] is a table name = "spec" or { version, markers, optional }. */
static void
poetry_edges(walk_t *w, const char *key, const char *pm)
{
  _cleanup_strv_ char **deps = sw_toml_children(w->t, key);
  for (size_t m = 0; deps[m]; m++) {
    if (strcmp(deps[m], "python") == 0)
      continue;
    const char *opt = field(w->t, key, deps[m], "optional");
    if (opt && strcmp(opt, "true") == 0)
      continue;
    const char *marker = field(w->t, key, deps[m], "markers");
    ssize_t j = find_pkg(w, deps[m], NULL);
    if (j >= 0)
      reach(w, (size_t)j, marker, pm);
  }
}

static int
poetry_pins(const sw_toml_t *t, const sw_toml_t *pyproject, const char *path, sw_reqset_t *out,
            sw_error_t *err)
{
  walk_t w;
  walk_init(&w, t);
  char k[64];
  bool categories = false;
  for (size_t i = 0; i < w.n; i++) {
    const char *c = pkg(&w, i, "category", k, sizeof(k));
    if (c) {
      categories = true;
      if (strcmp(c, "main") == 0)
        reach(&w, i, NULL, "");
    }
  }
  if (!categories) {
    /* Poetry >= 1.5 writes no category: walk from the project's own dependencies. */
    _cleanup_strv_ char **direct = sw_toml_children(pyproject, "tool.poetry.dependencies");
    char *const *pep621 = sw_toml_array(pyproject, "project.dependencies");
    for (size_t i = 0; direct[i]; i++) {
      ssize_t j = strcmp(direct[i], "python") == 0 ? -1 : find_pkg(&w, direct[i], NULL);
      if (j >= 0)
        reach(&w, (size_t)j, NULL, "");
    }
    for (size_t i = 0; pep621 && pep621[i]; i++) {
      size_t n = 0;
      while (pep621[i][n] && strchr(" [<>=!~;(@", pep621[i][n]) == NULL)
        n++;
      _cleanup_free_ char *name = xstrndup(pep621[i], n);
      ssize_t j = find_pkg(&w, name, NULL);
      if (j >= 0)
        reach(&w, (size_t)j, NULL, "");
    }
    char kk[512];
    for (size_t q = 0; q < w.qlen; q++) {
      size_t i = w.queue[q];
      snprintf(kk, sizeof(kk), "package.%zu.dependencies", i);
      poetry_edges(&w, kk, w.marker[i]);
    }
  }
  int rc = add_pins(&w, -1, path, out, err);
  walk_clear(&w);
  return rc;
}

int
sw_lock_pins(const char *path, const char *text, size_t len, const sw_toml_t *pyproject,
             char *const *extras, sw_reqset_t *out, sw_error_t *err)
{
  _cleanup_(sw_toml_freep) sw_toml_t *t = NULL;
  if (sw_toml_parse(path, text, len, &t, err) < 0)
    return -1;
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  if (strcmp(base, "poetry.lock") == 0)
    return poetry_pins(t, pyproject, path, out, err);
  return uv_pins(t, path, sw_toml_get(pyproject, "project.name"), extras, out, err);
}
