/* slipway: the recipe, a Python/Django project built with no Dockerfile (the article's recipe).
 *
 * The recipe compiles the project into a Dockerfile text (stages and steps the parser, planner
 * and solver already run), so cache, solver, export and registry cache apply unchanged. The
 * difference with a hand-written Dockerfile is each step's inputs: the dependency install reads
 * the *normalized* requirement set (a heredoc), the package build reads the package's files,
 * compilemessages reads the .po files, collectstatic reads the settings and static sources, and
 * each lands in the runtime image through a `COPY --from`, which keys on content.
 *
 * Modules: recipe-req.c (requirement lines and requirements files, PEP 503/508), recipe-toml.c
 * (a minimal TOML reader for pyproject.toml, setup.cfg and setup.py text), both pure and
 * fuzzed; recipe-detect.c (reads the project directory); recipe-render.c (the Dockerfile text and
 * the `slipway recipe` description).
 */
#ifndef SW_RECIPE_H
#define SW_RECIPE_H

#include "util.h"

/* ---- requirements (recipe-req.c, pure) ---- */

/* PEP 503 canonical name: lower case, runs of `-`, `_`, `.` become one `-`. */
char *sw_pep503_name(const char *name, size_t len);

/* One PEP 508 requirement in normal form: canonical name, sorted canonical extras, version
 * clauses without blanks and sorted, marker with blanks collapsed:
 *   "Django [Bcrypt] >= 3.2 , <4.0 ; python_version<'3.12'"
 *   -> "django[bcrypt]<4.0,>=3.2; python_version<'3.12'"
 * A direct reference (`name @ URL`) keeps its URL; a bare URL or path is refused (code 2). */
int sw_req_normalize(const char *req, char **out, sw_error_t *err);

/* The set a dependency install reads: pip options in order (deduplicated), constraints and
 * requirements (each sorted and deduplicated by sw_reqset_finish). */
typedef struct {
  char **options;     /* "--index-url URL", "--pre" ... */
  char **constraints; /* normalized, from -c files */
  char **reqs;        /* normalized requirements, each with its sorted " --hash=..." */
  char **sources;     /* "FILE:LINE: REQ" for messages, in reading order */
} sw_reqset_t;

void sw_reqset_clear(sw_reqset_t *s);
/* Reads an included file (-r/-c) for sw_reqset_parse; PATH is relative to the project. */
typedef int (*sw_req_read_fn)(void *ud, const char *path, char **text, sw_error_t *err);
/* Parse a requirements file (pip's format: comments, `\` continuations, -r/-c includes
 * resolved relative to the including file through READ, per-requirement --hash options,
 * markers, extras, global options). PATH names the file in messages and resolves includes. */
int sw_reqset_parse(sw_reqset_t *s, const char *path, const char *text, size_t len,
                    sw_req_read_fn read, void *ud, sw_error_t *err);
/* Add one requirement string (from pyproject, setup.cfg, setup.py); WHERE names its source. */
int sw_reqset_add(sw_reqset_t *s, const char *req, const char *where, sw_error_t *err);
/* Does the set name this project (any extras or version)? */
bool sw_reqset_has(const sw_reqset_t *s, const char *name);
/* Sort and deduplicate constraints and requirements. */
void sw_reqset_finish(sw_reqset_t *s);
/* The set as a requirements file: options, then `-c CONSTRAINTS_PATH` (when there are
 * constraints), then the requirements, one a line. */
char *sw_reqset_render(const sw_reqset_t *s, const char *constraints_path);

/* ---- TOML, setup.cfg and setup.py text (recipe-toml.c, pure) ---- */

/* A minimal TOML reader: tables, dotted and quoted keys, arrays of tables (`[[x]]` becomes
 * x.0, x.1 …), strings (all four kinds), arrays, inline tables, and other scalars kept as
 * text. Enough for pyproject.toml and lock files; not a validator. */
typedef struct sw_toml sw_toml_t;
int sw_toml_parse(const char *path, const char *text, size_t len, sw_toml_t **out, sw_error_t *err);
void sw_toml_free(sw_toml_t *t);
static inline void
sw_toml_freep(sw_toml_t **t)
{
  sw_toml_free(*t);
}
/* A string (or scalar, as written) at a dotted key ("project.name"), or NULL. */
const char *sw_toml_get(const sw_toml_t *t, const char *key);
/* The strings of an array at KEY (NULL-terminated, borrowed), or NULL when KEY is no array. */
char *const *sw_toml_array(const sw_toml_t *t, const char *key);
/* Is there any key equal to or below KEY? */
bool sw_toml_has(const sw_toml_t *t, const char *key);
/* The direct child names of table KEY, sorted, unique (caller frees). */
char **sw_toml_children(const sw_toml_t *t, const char *key);

/* setup.cfg: the value of KEY in [SECTION] with continuation lines joined by "\n", or NULL. */
char *sw_ini_get(const char *text, size_t len, const char *section, const char *key);
/* setup.py: `KEY=[ "a", "b" ]` of string literals. 1 found (*out set), 0 absent, -1 present but
 * not a literal list (dynamic: needs egg_info). */
int sw_setuppy_list(const char *text, size_t len, const char *key, char ***out);
/* setup.py / settings.py / manage.py: the string literal after `KEY=` or `KEY =` (setup
 * keyword or module-level assignment), or NULL. */
char *sw_py_assigned_string(const char *text, size_t len, const char *key);
/* manage.py / wsgi.py: the second argument of
 * os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x.settings"), or NULL. */
char *sw_py_setdefault_string(const char *text, size_t len, const char *name);

/* ---- lock files (recipe-lock.c, pure) ---- */

/* uv.lock or poetry.lock (told apart by PATH's file name) -> "name==version[; marker]" pins
 * added to OUT: the packages the project's own dependencies (and EXTRAS, uv) reach through the
 * lock, so development groups stay out. PYPROJECT (may be NULL) names the project (uv) or its
 * direct dependencies (poetry without categories). */
int sw_lock_pins(const char *path, const char *text, size_t len, const sw_toml_t *pyproject,
                 char *const *extras, sw_reqset_t *out, sw_error_t *err);

/* ---- the project (recipe-detect.c) and its plan (recipe-render.c) ---- */

typedef struct {
  char *dir;           /* the context, as given */
  char *name;          /* project name (pyproject, setup.cfg, setup.py; else the directory's) */
  char *version;       /* or NULL */
  bool packaged;       /* built into a wheel (pyproject build backend, setup.py, setup.cfg) */
  char *python_image;  /* default of the PYTHON_IMAGE arg */
  char *python_reason; /* where it came from */
  char *deps_source;   /* "requirements.txt", "pyproject.toml [project] dependencies" … */
  sw_reqset_t deps;    /* normalized, gunicorn added */
  bool gunicorn_added;
  bool egg_info;         /* setup.py computes install_requires: an egg_info stage reads them */
  char **egg_info_files; /* what that stage copies: the top-level files, packages' __init__ */
  char *settings_module; /* "foo.settings" */
  char *settings_from;   /* where it was found */
  char *wsgi_app;        /* "foo.wsgi:application" */
  char *wsgi_from;
  char *static_root; /* STATIC_ROOT's text in the settings (informative), or NULL */
  bool collectstatic;
  bool compilemessages;
  char *pkg_root;        /* "" (flat layout) or "src/" */
  char **package_files;  /* the files a package build reads (packaged) */
  char **build_requires; /* [build-system] requires (default setuptools, wheel) */
  char *build_backend;   /* [build-system] build-backend (default setuptools' legacy one) */
  char **backend_path;   /* [build-system] backend-path */
  char **po_files;       /* every .po under a LC_MESSAGES directory */
  char **static_inputs;  /* what collectstatic reads: settings, package markers, static files */
  char **locales;        /* "de", "fr" … */
  char **excludes;       /* the default ignore list, when the project has no .dockerignore */
  char **apt_build;      /* [tool.slipway] apt-build-packages */
  char **apt_runtime;    /* [tool.slipway] apt-packages */
  char *port;            /* default 8000 */
  char **notes;          /* what was chosen over what (printed by `slipway recipe`) */
} sw_recipe_t;

/* Does DIR look like a Python project (manage.py, pyproject.toml, setup.py, setup.cfg,
 * requirements*.txt, uv.lock, poetry.lock, Pipfile.lock)? */
bool sw_recipe_detect_python(const char *dir);
/* Read the project in DIR. BUILD_ARGS ("K=V") may set the [tool.slipway] keys
 * (SLIPWAY_SETTINGS_MODULE, SLIPWAY_WSGI_APP, SLIPWAY_EXTRAS, SLIPWAY_COLLECTSTATIC,
 * SLIPWAY_COMPILEMESSAGES, SLIPWAY_PORT, SLIPWAY_REQUIREMENTS). */
int sw_recipe_load(const char *dir, char *const *build_args, sw_recipe_t **out, sw_error_t *err);
void sw_recipe_free(sw_recipe_t *r);
static inline void
sw_recipe_freep(sw_recipe_t **r)
{
  sw_recipe_free(*r);
}

/* The Dockerfile the recipe builds (BuildKit accepts it too: 1.7-labs syntax for --parents
 * and --exclude). */
char *sw_recipe_dockerfile(const sw_recipe_t *r);
/* What was detected, for `slipway recipe`. */
char *sw_recipe_describe(const sw_recipe_t *r);
/* A failed build's message (MSG) explained by the recipe: pip's "No matching distribution found
 * for NAME" -> where NAME was required ("FILE:LINE: REQ"). NULL when there is nothing to add. */
char *sw_recipe_explain(const sw_recipe_t *r, const char *msg);

#endif
