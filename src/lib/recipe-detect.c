/* slipway: reading a Python/Django project directory for the recipe (see recipe.h): its
 * shape (packaged or not), its dependency set, its settings module and WSGI app, and the exact
 * files each recipe step reads. Nothing here runs the project. */
#include "recipe.h"

#include "ignore.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#define MAX_FILE  (4 << 20)
#define MAX_FILES 20000

/* When the project has no .dockerignore: what never belongs in an image. */
static const char *const default_excludes[] = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "*.egg-info",
    "build",
    "dist",
    "node_modules",
    ".tox",
    ".nox",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "**/*.mo",
    "*.sqlite3",
    ".env",
    ".env.*",
    "media",
    "staticfiles",
    "static.dist",
    "Dockerfile*",
    ".dockerignore",
    /* Read by the recipe's dependency step, not by the app: an edit to them must not re-copy
     * the source tree. */
    "requirements*.txt",
    "requirements",
    "Pipfile",
    "Pipfile.lock",
    "uv.lock",
    "poetry.lock",
};

static const char *const python_markers[] = {
    "manage.py", "pyproject.toml", "setup.py",     "setup.cfg",
    "uv.lock",   "poetry.lock",    "Pipfile.lock",
};

typedef struct {
  const char *dir;
  char *const *build_args;
  sw_toml_t *pyproject;
  sw_ignore_t *ignore;
  char **files; /* every included regular file, relative, sorted */
} project_t;

static bool
exists_in(const char *dir, const char *name)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0;
}

static bool
has_requirements_txt(const char *dir)
{
  _cleanup_dir_ DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (sw_str_has_prefix(de->d_name, "requirements") && sw_str_has_suffix(de->d_name, ".txt"))
      return true;
  return d && exists_in(dir, "requirements");
}

bool
sw_recipe_detect_python(const char *dir)
{
  for (size_t i = 0; i < SW_ARRAY_SIZE(python_markers); i++)
    if (exists_in(dir, python_markers[i]))
      return true;
  return has_requirements_txt(dir);
}

static int
read_project_file(const project_t *pr, const char *rel, char **out, sw_error_t *err)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", pr->dir, rel);
  return sw_read_file(p, MAX_FILE, out, NULL, err);
}

/* The file's text, or NULL when it does not exist. */
static char *
maybe_read(const project_t *pr, const char *rel)
{
  char *text = NULL;
  sw_error_t e = NULL;
  if (read_project_file(pr, rel, &text, &e) < 0) {
    sw_error_release(&e);
    return NULL;
  }
  return text;
}

static int
read_include(void *ud, const char *path, char **text, sw_error_t *err)
{
  return read_project_file(ud, path, text, err);
}

/* A setting: --build-arg SLIPWAY_<KEY>, then [tool.slipway] KEY. */
static const char *
setting(const project_t *pr, const char *key)
{
  _cleanup_free_ char *arg = xasprintf("SLIPWAY_%s", key);
  for (char *p = arg; *p; p++)
    *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  const char *v = sw_env_get(pr->build_args, arg);
  if (v)
    return v;
  _cleanup_free_ char *tk = xasprintf("tool.slipway.%s", key);
  return sw_toml_get(pr->pyproject, tk);
}

/* A list setting: an array in [tool.slipway], or a comma/blank separated string. */
static char **
setting_list(const project_t *pr, const char *key)
{
  const char *s = setting(pr, key);
  char **v = xcalloc(1, sizeof(char *));
  if (s == NULL) {
    _cleanup_free_ char *tk = xasprintf("tool.slipway.%s", key);
    char *const *a = sw_toml_array(pr->pyproject, tk);
    for (size_t i = 0; a && a[i]; i++)
      sw_strv_push(&v, a[i]);
    return v;
  }
  _cleanup_free_ char *copy = xstrdup(s);
  char *save = NULL;
  for (char *w = strtok_r(copy, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save))
    sw_strv_push(&v, w);
  return v;
}

static bool
setting_bool(const project_t *pr, const char *key, bool dflt)
{
  const char *v = setting(pr, key);
  if (v == NULL)
    return dflt;
  return !(strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0 ||
           strcmp(v, "off") == 0);
}

/* ---- the file walk ---- */

static int
walk(project_t *pr, const char *rel, sw_error_t *err)
{
  _cleanup_free_ char *path = *rel ? xasprintf("%s/%s", pr->dir, rel) : xstrdup(pr->dir);
  _cleanup_dir_ DIR *d = opendir(path);
  if (d == NULL)
    return sw_error(err, errno, "read directory `%s`", path);
  _cleanup_strv_ char **names = NULL;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      sw_strv_push(&names, de->d_name);
  for (size_t i = 0; names && names[i]; i++) {
    _cleanup_free_ char *r = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
    _cleanup_free_ char *full = xasprintf("%s/%s", pr->dir, r);
    struct stat st;
    if (lstat(full, &st) < 0)
      continue;
    bool ignored = sw_ignore_match(pr->ignore, r);
    if (S_ISDIR(st.st_mode)) {
      if (ignored && !sw_ignore_may_include_below(pr->ignore, r))
        continue;
      if (walk(pr, r, err) < 0)
        return -1;
    } else if (S_ISREG(st.st_mode) && !ignored) {
      if (sw_strv_len(pr->files) >= MAX_FILES)
        return sw_error_code(err, SW_EXIT_USAGE, 0,
                             "`%s` holds more than %d files: is a virtualenv or node_modules "
                             "missing from .dockerignore?",
                             pr->dir, MAX_FILES);
      sw_strv_push(&pr->files, r);
    }
  }
  return 0;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *
base_name(const char *p)
{
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/* Does any path component (before the file name) equal NAME? */
static bool
under_dir_named(const char *rel, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = rel; (p = strstr(p, name)); p++)
    if ((p == rel || p[-1] == '/') && p[n] == '/')
      return true;
  return false;
}

/* ---- dependencies ---- */

static int
deps_from_requirements(project_t *pr, sw_recipe_t *r, const char *file, sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  if (read_project_file(pr, file, &text, err) < 0)
    return -1;
  r->deps_source = xstrdup(file);
  return sw_reqset_parse(&r->deps, file, text, strlen(text), read_include, pr, err);
}

static int
add_list(sw_recipe_t *r, char *const *reqs, const char *where, sw_error_t *err)
{
  for (size_t i = 0; reqs && reqs[i]; i++)
    if (sw_reqset_add(&r->deps, reqs[i], where, err) < 0)
      return -1;
  return 0;
}

static int
deps_from_pyproject(project_t *pr, sw_recipe_t *r, char *const *extras, sw_error_t *err)
{
  r->deps_source = xstrdup("pyproject.toml [project] dependencies");
  if (add_list(r, sw_toml_array(pr->pyproject, "project.dependencies"),
               "pyproject.toml [project] dependencies", err) < 0)
    return -1;
  for (size_t i = 0; extras && extras[i]; i++) {
    _cleanup_free_ char *k = xasprintf("project.optional-dependencies.%s", extras[i]);
    char *const *a = sw_toml_array(pr->pyproject, k);
    if (a == NULL)
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "extra `%s` (SLIPWAY_EXTRAS / [tool.slipway] extras) is not in "
                           "pyproject.toml [project.optional-dependencies]",
                           extras[i]);
    _cleanup_free_ char *where =
        xasprintf("pyproject.toml [project.optional-dependencies] %s", extras[i]);
    if (add_list(r, a, where, err) < 0)
      return -1;
  }
  return 0;
}

static int
deps_from_setup_cfg(sw_recipe_t *r, const char *cfg, sw_error_t *err)
{
  _cleanup_free_ char *v = sw_ini_get(cfg, strlen(cfg), "options", "install_requires");
  r->deps_source = xstrdup("setup.cfg [options] install_requires");
  _cleanup_free_ char *copy = xstrdup(v ? v : "");
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    if (*line && *line != '#' &&
        sw_reqset_add(&r->deps, line, "setup.cfg [options] install_requires", err) < 0)
      return -1;
  return 0;
}

static int
deps_from_setup_py(sw_recipe_t *r, const char *py, sw_error_t *err)
{
  _cleanup_strv_ char **list = NULL;
  int found = sw_setuppy_list(py, strlen(py), "install_requires", &list);
  if (found < 0) {
    /* Computed: only running setup.py tells, in a stage of its own (recipe-render.c). */
    r->egg_info = true;
    r->deps_source = xstrdup("setup.py install_requires (computed: `setup.py egg_info` "
                             "writes them, in a stage of its own without network)");
    return 0;
  }
  r->deps_source = xstrdup("setup.py install_requires");
  return add_list(r, list, "setup.py install_requires", err);
}

static const char *const lock_files[] = {"uv.lock", "poetry.lock", "Pipfile.lock"};

static int
deps_from_lock(project_t *pr, sw_recipe_t *r, const char *file, char *const *extras,
               sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  if (read_project_file(pr, file, &text, err) < 0)
    return -1;
  r->deps_source = xasprintf("%s (the pins the project's own dependencies reach)", file);
  return sw_lock_pins(file, text, strlen(text), pr->pyproject, extras, &r->deps, err);
}

/* Pipfile.lock's "default" section: pinned names and versions (JSON, read as TOML would not:
 * a tiny scan for "name": {"version": "==x"} pairs is enough for the pins). */
static int deps_from_pipfile_lock(project_t *pr, sw_recipe_t *r, sw_error_t *err);

static int
load_deps(project_t *pr, sw_recipe_t *r, const char *setup_cfg, const char *setup_py,
          sw_error_t *err)
{
  _cleanup_strv_ char **extras = setting_list(pr, "extras");
  _cleanup_strv_ char **found = NULL;
  const char *req = setting(pr, "requirements");
  if (req)
    sw_strv_push(&found, req); /* chosen: wins over everything */
  else if (exists_in(pr->dir, "requirements.txt"))
    req = "requirements.txt";
  for (size_t i = 0; i < SW_ARRAY_SIZE(lock_files); i++)
    if (exists_in(pr->dir, lock_files[i]))
      sw_strv_push(&found, lock_files[i]);
  if (req && !sw_strv_contains(found, req))
    sw_strv_push(&found, req);
  if (sw_toml_array(pr->pyproject, "project.dependencies"))
    sw_strv_push(&found, "pyproject.toml [project] dependencies");
  if (setup_cfg && sw_ini_get(setup_cfg, strlen(setup_cfg), "options", "install_requires"))
    sw_strv_push(&found, "setup.cfg install_requires");
  if (setup_py && strstr(setup_py, "install_requires"))
    sw_strv_push(&found, "setup.py install_requires");
  if (found == NULL) {
    r->deps_source = xstrdup("none (no requirements.txt, pyproject dependencies, setup.cfg "
                             "or setup.py install_requires)");
  } else {
    if (found[1])
      sw_strv_push_take(&r->notes, xasprintf("dependencies: %s wins over %s (choose with "
                                             "[tool.slipway] requirements = \"FILE\" or "
                                             "--build-arg SLIPWAY_REQUIREMENTS=FILE)",
                                             found[0], found[1]));
    int rc;
    if (strcmp(found[0], "Pipfile.lock") == 0)
      rc = deps_from_pipfile_lock(pr, r, err);
    else if (strcmp(found[0], "uv.lock") == 0 || strcmp(found[0], "poetry.lock") == 0)
      rc = deps_from_lock(pr, r, found[0], extras, err);
    else if (req && strcmp(found[0], req) == 0)
      rc = deps_from_requirements(pr, r, req, err);
    else if (sw_str_has_prefix(found[0], "pyproject"))
      rc = deps_from_pyproject(pr, r, extras, err);
    else if (sw_str_has_prefix(found[0], "setup.cfg"))
      rc = deps_from_setup_cfg(r, setup_cfg, err);
    else
      rc = deps_from_setup_py(r, setup_py, err);
    if (rc < 0)
      return -1;
  }
  if (!sw_reqset_has(&r->deps, "gunicorn")) {
    sw_strv_push(&r->deps.reqs, "gunicorn");
    r->gunicorn_added = true;
  }
  sw_reqset_finish(&r->deps);
  return 0;
}

static int
deps_from_pipfile_lock(project_t *pr, sw_recipe_t *r, sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  if (read_project_file(pr, "Pipfile.lock", &text, err) < 0)
    return -1;
  r->deps_source = xstrdup("Pipfile.lock [default]");
  /* JSON is TOML-compatible enough for this: "default": { "name": { "version": "==1" } }.
   * Scan the "default" object by brace depth. */
  const char *p = strstr(text, "\"default\"");
  if (p == NULL)
    return 0;
  p = strchr(p, '{');
  int depth = 0;
  _cleanup_free_ char *name = NULL;
  for (; p && *p; p++) {
    if (*p == '{') {
      depth++;
    } else if (*p == '}') {
      if (--depth == 0)
        break;
    } else if (*p == '"') {
      const char *e = strchr(p + 1, '"');
      if (e == NULL)
        break;
      _cleanup_free_ char *s = xstrndup(p + 1, (size_t)(e - p - 1));
      const char *after = e + 1;
      while (*after == ' ' || *after == '\n' || *after == '\t' || *after == '\r')
        after++;
      if (depth == 1 && *after == ':') {
        free(name);
        name = xstrdup(s);
      } else if (depth == 2 && strcmp(s, "version") == 0 && *after == ':' && name) {
        const char *v = strchr(after, '"');
        const char *ve = v ? strchr(v + 1, '"') : NULL;
        if (ve) {
          _cleanup_free_ char *req = xasprintf("%s%.*s", name, (int)(ve - v - 1), v + 1);
          if (sw_reqset_add(&r->deps, req, "Pipfile.lock", err) < 0)
            return -1;
          e = ve;
        }
      }
      p = e;
    }
  }
  return 0;
}

/* ---- Django ---- */

/* "foo.settings" -> "foo/settings.py" or "foo/settings/__init__.py" (under pkg_root). */
static char *
module_file(project_t *pr, const char *root, const char *module)
{
  _cleanup_free_ char *path = xasprintf("%s%s", root, module);
  for (char *p = path; *p; p++)
    if (*p == '.')
      *p = '/';
  char *f = xasprintf("%s.py", path);
  if (exists_in(pr->dir, f))
    return f;
  free(f);
  f = xasprintf("%s/__init__.py", path);
  if (exists_in(pr->dir, f))
    return f;
  free(f);
  return NULL;
}

/* The settings module's text: the file, or every .py of a settings package. */
static char *
settings_text(project_t *pr, const char *file)
{
  sw_buf_t b = {0};
  bool package = sw_str_has_suffix(file, "/__init__.py");
  size_t dirlen = package ? strlen(file) - strlen("__init__.py") : 0;
  for (size_t i = 0; pr->files && pr->files[i]; i++) {
    const char *f = pr->files[i];
    bool take = package ? strncmp(f, file, dirlen) == 0 && sw_str_has_suffix(f, ".py") &&
                              strchr(f + dirlen, '/') == NULL
                        : strcmp(f, file) == 0;
    if (!take)
      continue;
    _cleanup_free_ char *t = maybe_read(pr, f);
    if (t) {
      sw_buf_puts(&b, t);
      sw_buf_putc(&b, '\n');
    }
  }
  return sw_buf_steal(&b);
}

static int
find_settings(project_t *pr, sw_recipe_t *r, sw_error_t *err)
{
  const char *v = setting(pr, "settings-module");
  if (v) {
    r->settings_module = xstrdup(v);
    r->settings_from = xstrdup("[tool.slipway] settings-module / SLIPWAY_SETTINGS_MODULE");
    return 0;
  }
  _cleanup_strv_ char **searched = NULL;
  /* manage.py first, then the wsgi.py/asgi.py that Django's startproject writes. */
  _cleanup_strv_ char **cands = NULL;
  sw_strv_push(&cands, "manage.py");
  for (size_t i = 0; pr->files && pr->files[i]; i++) {
    const char *b = base_name(pr->files[i]);
    if (strcmp(b, "wsgi.py") == 0 || strcmp(b, "asgi.py") == 0 || strcmp(b, "manage.py") == 0)
      if (strcmp(pr->files[i], "manage.py") != 0)
        sw_strv_push(&cands, pr->files[i]);
  }
  for (size_t i = 0; cands[i]; i++) {
    _cleanup_free_ char *t = maybe_read(pr, cands[i]);
    if (t == NULL)
      continue;
    sw_strv_push(&searched, cands[i]);
    char *m = sw_py_setdefault_string(t, strlen(t), "DJANGO_SETTINGS_MODULE");
    if (m) {
      r->settings_module = m;
      r->settings_from = xstrdup(cands[i]);
      return 0;
    }
  }
  _cleanup_free_ char *list = NULL;
  sw_buf_t b = {0};
  for (size_t i = 0; searched && searched[i]; i++)
    sw_buf_printf(&b, "%s`%s`", i ? ", " : "", searched[i]);
  list = sw_buf_steal(&b);
  return sw_error_code(err, SW_EXIT_USAGE, 0,
                       "%s: no Django settings module found: searched %s for "
                       "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", ...); set it with "
                       "[tool.slipway] settings-module = \"mysite.settings\" in pyproject.toml "
                       "or --build-arg SLIPWAY_SETTINGS_MODULE=mysite.settings",
                       pr->dir, *list ? list : "nothing (no manage.py, wsgi.py or asgi.py)");
}

static int
find_wsgi(project_t *pr, sw_recipe_t *r, const char *settings, sw_error_t *err)
{
  const char *v = setting(pr, "wsgi-app");
  if (v) {
    r->wsgi_app = xstrdup(v);
    r->wsgi_from = xstrdup("[tool.slipway] wsgi-app / SLIPWAY_WSGI_APP");
    return 0;
  }
  _cleanup_free_ char *w =
      settings ? sw_py_assigned_string(settings, strlen(settings), "WSGI_APPLICATION") : NULL;
  const char *dot = w ? strrchr(w, '.') : NULL;
  if (dot == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "no WSGI application found: searched the settings module `%s` for "
                         "WSGI_APPLICATION = \"mysite.wsgi.application\"; set it there, or with "
                         "[tool.slipway] wsgi-app = \"mysite.wsgi:application\" in "
                         "pyproject.toml, or --build-arg SLIPWAY_WSGI_APP=mysite.wsgi:application",
                         r->settings_module);
  r->wsgi_app = xasprintf("%.*s:%s", (int)(dot - w), w, dot + 1);
  r->wsgi_from = xasprintf("WSGI_APPLICATION in %s", r->settings_module);
  return 0;
}

/* What collectstatic reads: the settings (file or package), every package marker
 * (__init__.py) and AppConfig (apps.py) so INSTALLED_APPS import, and the static sources. */
static void
collect_inputs(project_t *pr, sw_recipe_t *r, const char *settings_file)
{
  bool package = sw_str_has_suffix(settings_file, "/__init__.py");
  size_t dirlen = package ? strlen(settings_file) - strlen("__init__.py") : 0;
  for (size_t i = 0; pr->files && pr->files[i]; i++) {
    const char *f = pr->files[i];
    const char *b = base_name(f);
    bool in_static = sw_str_has_prefix(f, "static/") || under_dir_named(f, "static");
    bool in_settings = package
                           ? strncmp(f, settings_file, dirlen) == 0 && sw_str_has_suffix(f, ".py")
                           : strcmp(f, settings_file) == 0;
    if (in_static || in_settings || strcmp(b, "__init__.py") == 0 || strcmp(b, "apps.py") == 0)
      sw_strv_push(&r->static_inputs, f);
    if (sw_str_has_suffix(f, ".po") && under_dir_named(f, "LC_MESSAGES")) {
      sw_strv_push(&r->po_files, f);
      /* .../locale/<lang>/LC_MESSAGES/x.po */
      const char *lc = strstr(f, "/LC_MESSAGES/");
      const char *ls = lc;
      while (ls && ls > f && ls[-1] != '/')
        ls--;
      _cleanup_free_ char *lang = lc ? xstrndup(ls, (size_t)(lc - ls)) : NULL;
      if (lang && !sw_strv_contains(r->locales, lang))
        sw_strv_push(&r->locales, lang);
    }
  }
  if (r->locales)
    qsort(r->locales, sw_strv_len(r->locales), sizeof(char *), cmp_str);
}

static int
load_django(project_t *pr, sw_recipe_t *r, sw_error_t *err)
{
  if (find_settings(pr, r, err) < 0)
    return -1;
  _cleanup_free_ char *file = module_file(pr, r->pkg_root, r->settings_module);
  if (file == NULL && *r->pkg_root)
    file = module_file(pr, "", r->settings_module);
  if (file == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "the settings module `%s` (from %s) is not a file in `%s`: expected "
                         "`%s%s.py` (dots as slashes) or a package with __init__.py",
                         r->settings_module, r->settings_from, pr->dir, r->pkg_root,
                         r->settings_module);
  _cleanup_free_ char *text = settings_text(pr, file);
  if (find_wsgi(pr, r, text, err) < 0)
    return -1;
  const char *sr = strstr(text, "STATIC_ROOT");
  if (sr) {
    const char *eq = strchr(sr, '=');
    const char *nl = eq ? strchr(eq, '\n') : NULL;
    if (eq)
      r->static_root = xstrndup(eq + 1 + strspn(eq + 1, " \t"),
                                nl ? (size_t)(nl - eq - 1 - strspn(eq + 1, " \t")) : 80);
  }
  collect_inputs(pr, r, file);
  r->collectstatic =
      setting_bool(pr, "collectstatic",
                   r->static_root != NULL && strstr(text, "django.contrib.staticfiles") != NULL);
  r->compilemessages = setting_bool(pr, "compilemessages", r->po_files != NULL);
  if (r->compilemessages && r->po_files == NULL)
    r->compilemessages = false;
  return 0;
}

/* ---- shape, name, Python ---- */

static bool
is_package_file(const sw_recipe_t *r, const char *f, char *const *pkgs)
{
  /* A setup.py that computes its requirements reads top-level files we cannot name. */
  if (strchr(f, '/') == NULL && r->egg_info)
    return strcmp(f, "manage.py") != 0;
  if (strchr(f, '/') == NULL)
    return strcmp(f, "pyproject.toml") == 0 || strcmp(f, "setup.py") == 0 ||
           strcmp(f, "setup.cfg") == 0 || strcmp(f, "MANIFEST.in") == 0 ||
           sw_str_has_prefix(f, "README") || sw_str_has_prefix(f, "LICENSE") ||
           sw_str_has_prefix(f, "LICENCE");
  if (*r->pkg_root)
    return sw_str_has_prefix(f, r->pkg_root);
  for (size_t i = 0; pkgs && pkgs[i]; i++)
    if (strncmp(f, pkgs[i], strlen(pkgs[i])) == 0 && f[strlen(pkgs[i])] == '/')
      return true;
  return false;
}

/* The package's files: the build files at the top, and every top-level package (a directory
 * with __init__.py, tests and docs aside), or the whole src/. */
static void
package_files(project_t *pr, sw_recipe_t *r)
{
  _cleanup_strv_ char **pkgs = NULL;
  for (size_t i = 0; pr->files && pr->files[i]; i++) {
    const char *f = pr->files[i];
    const char *slash = strchr(f, '/');
    if (slash && strcmp(slash + 1, "__init__.py") == 0) {
      _cleanup_free_ char *d = xstrndup(f, (size_t)(slash - f));
      if (strcmp(d, "tests") != 0 && strcmp(d, "test") != 0 && strcmp(d, "docs") != 0)
        sw_strv_push(&pkgs, d);
    }
  }
  for (size_t i = 0; pr->files && pr->files[i]; i++)
    if (is_package_file(r, pr->files[i], pkgs))
      sw_strv_push(&r->package_files, pr->files[i]);
}

/* Major.minor from .python-version, else from requires-python's bounds; default 3.12. */
static void
python_image(project_t *pr, sw_recipe_t *r, const char *setup_cfg, const char *setup_py)
{
  const char *img = setting(pr, "python-image");
  if (img) {
    r->python_image = xstrdup(img);
    r->python_reason = xstrdup("[tool.slipway] python-image");
    return;
  }
  _cleanup_free_ char *pv = maybe_read(pr, ".python-version");
  int major = 0, minor = 0;
  if (pv && sscanf(pv, "%d.%d", &major, &minor) == 2 && major == 3) {
    r->python_image = xasprintf("python:3.%d-slim", minor);
    r->python_reason = xstrdup(".python-version");
    return;
  }
  const char *rp = sw_toml_get(pr->pyproject, "project.requires-python");
  _cleanup_free_ char *cfg_rp =
      setup_cfg ? sw_ini_get(setup_cfg, strlen(setup_cfg), "options", "python_requires") : NULL;
  _cleanup_free_ char *py_rp =
      setup_py ? sw_py_assigned_string(setup_py, strlen(setup_py), "python_requires") : NULL;
  const char *spec = rp ? rp : cfg_rp ? cfg_rp : py_rp;
  int pick = 12;
  if (spec) {
    const char *p;
    if ((p = strstr(spec, ">=3.")) && atoi(p + 4) > pick)
      pick = atoi(p + 4);
    if ((p = strstr(spec, "<3.")) && p[-1] != '=' && atoi(p + 3) <= pick)
      pick = atoi(p + 3) - 1;
    if ((p = strstr(spec, "<=3.")) && atoi(p + 4) < pick)
      pick = atoi(p + 4);
  }
  r->python_image = xasprintf("python:3.%d-slim", pick);
  r->python_reason =
      spec ? xasprintf("requires-python `%s`", spec) : xstrdup("the default (nothing pins it)");
}

static void
project_name(project_t *pr, sw_recipe_t *r, const char *setup_cfg, const char *setup_py)
{
  const char *n = sw_toml_get(pr->pyproject, "project.name");
  const char *v = sw_toml_get(pr->pyproject, "project.version");
  r->name = n ? xstrdup(n) : NULL;
  r->version = v ? xstrdup(v) : NULL;
  if (r->name == NULL && setup_cfg)
    r->name = sw_ini_get(setup_cfg, strlen(setup_cfg), "metadata", "name");
  if (r->version == NULL && setup_cfg)
    r->version = sw_ini_get(setup_cfg, strlen(setup_cfg), "metadata", "version");
  if (r->name == NULL && setup_py)
    r->name = sw_py_assigned_string(setup_py, strlen(setup_py), "name");
  if (r->version == NULL && setup_py)
    r->version = sw_py_assigned_string(setup_py, strlen(setup_py), "version");
  if (r->name == NULL) {
    _cleanup_free_ char *abs = realpath(pr->dir, NULL);
    r->name = xstrdup(base_name(abs ? abs : pr->dir));
  }
}

static int
load_ignore(project_t *pr, sw_recipe_t *r, sw_error_t *err)
{
  if (exists_in(pr->dir, ".dockerignore"))
    return sw_ignore_load_for_build(pr->dir, NULL, &pr->ignore, err);
  sw_buf_t b = {0};
  for (size_t i = 0; i < SW_ARRAY_SIZE(default_excludes); i++) {
    sw_buf_printf(&b, "%s\n", default_excludes[i]);
    sw_strv_push(&r->excludes, default_excludes[i]);
  }
  _cleanup_free_ char *text = sw_buf_steal(&b);
  return sw_ignore_parse("the recipe's default ignore list", text, strlen(text), &pr->ignore, err);
}

int
sw_recipe_load(const char *dir, char *const *build_args, sw_recipe_t **out, sw_error_t *err)
{
  project_t pr = {.dir = dir, .build_args = build_args};
  _cleanup_(sw_recipe_freep) sw_recipe_t *r = xcalloc(1, sizeof(*r));
  _cleanup_free_ char *pyproject = NULL, *setup_cfg = NULL, *setup_py = NULL;
  int rc = -1;
  r->dir = xstrdup(dir);
  pyproject = maybe_read(&pr, "pyproject.toml");
  if (pyproject &&
      sw_toml_parse("pyproject.toml", pyproject, strlen(pyproject), &pr.pyproject, err) < 0)
    goto out;
  setup_cfg = maybe_read(&pr, "setup.cfg");
  setup_py = maybe_read(&pr, "setup.py");
  if (load_ignore(&pr, r, err) < 0 || walk(&pr, "", err) < 0)
    goto out;
  if (pr.files)
    qsort(pr.files, sw_strv_len(pr.files), sizeof(char *), cmp_str);
  bool cfg_pkg = setup_cfg && (strstr(setup_cfg, "[metadata]") || strstr(setup_cfg, "[options]"));
  r->packaged = setting_bool(&pr, "packaged",
                             sw_toml_has(pr.pyproject, "build-system") || setup_py || cfg_pkg);
  r->pkg_root =
      xstrdup(r->packaged && exists_in(dir, "src") && !exists_in(dir, "manage.py") ? "src/" : "");
  project_name(&pr, r, setup_cfg, setup_py);
  python_image(&pr, r, setup_cfg, setup_py);
  const char *port = setting(&pr, "port");
  r->port = xstrdup(port ? port : "8000");
  r->apt_build = setting_list(&pr, "apt-build-packages");
  r->apt_runtime = setting_list(&pr, "apt-packages");
  if (load_deps(&pr, r, setup_cfg, setup_py, err) < 0 || load_django(&pr, r, err) < 0)
    goto out;
  for (size_t i = 0; r->egg_info && pr.files && pr.files[i]; i++) {
    const char *f = pr.files[i], *slash = strchr(f, '/');
    if (slash == NULL || (strcmp(slash + 1, "__init__.py") == 0 && !strchr(slash + 1, '/')))
      sw_strv_push(&r->egg_info_files, f);
  }
  if (r->packaged) {
    package_files(&pr, r);
    char *const *br = sw_toml_array(pr.pyproject, "build-system.requires");
    r->build_requires = br ? sw_strv_dup(br) : NULL;
    if (r->build_requires == NULL || r->build_requires[0] == NULL) {
      sw_strv_free(r->build_requires);
      free(r->build_backend);
      sw_strv_free(r->backend_path);
      r->build_requires = NULL;
      sw_strv_push(&r->build_requires, "setuptools>=40.8.0");
      sw_strv_push(&r->build_requires, "wheel");
    }
    const char *be = sw_toml_get(pr.pyproject, "build-system.build-backend");
    r->build_backend = xstrdup(be ? be : "setuptools.build_meta:__legacy__");
    char *const *bp = sw_toml_array(pr.pyproject, "build-system.backend-path");
    r->backend_path = bp ? sw_strv_dup(bp) : NULL;
  }
  *out = steal_ptr(&r);
  rc = 0;
out:
  if (rc < 0)
    sw_error_wrap(err, "recipe for `%s`", dir);
  sw_toml_free(pr.pyproject);
  sw_ignore_free(pr.ignore);
  sw_strv_free(pr.files);
  return rc;
}

void
sw_recipe_free(sw_recipe_t *r)
{
  if (r == NULL)
    return;
  free(r->dir);
  free(r->name);
  free(r->version);
  free(r->python_image);
  free(r->python_reason);
  free(r->deps_source);
  sw_reqset_clear(&r->deps);
  free(r->settings_module);
  free(r->settings_from);
  free(r->wsgi_app);
  free(r->wsgi_from);
  free(r->static_root);
  free(r->pkg_root);
  sw_strv_free(r->package_files);
  sw_strv_free(r->build_requires);
  sw_strv_free(r->egg_info_files);
  free(r->build_backend);
  sw_strv_free(r->backend_path);
  sw_strv_free(r->po_files);
  sw_strv_free(r->static_inputs);
  sw_strv_free(r->locales);
  sw_strv_free(r->excludes);
  sw_strv_free(r->apt_build);
  sw_strv_free(r->apt_runtime);
  free(r->port);
  sw_strv_free(r->notes);
  free(r);
}
