/* slipway: the recipe's plan as a Dockerfile (see recipe.h), and its description.
 *
 * Stages, each reading only its inputs, each result joined into the runtime image by a
 * `COPY --from` (which keys on content, so an identical result does not invalidate what
 * follows):
 *   base      the Python image, pip's and Python's environment
 *   deps      the normalized requirement set (a heredoc) -> pip install --prefix=/install
 *   package   packaged projects: the package's files -> pip install --no-deps . -> /install
 *   messages  the .po files -> msgfmt -> .mo, placed where the app reads them
 *   static    deps + settings, package markers and static sources -> collectstatic
 *   app       unpackaged projects: the source tree (ignore-filtered) -> /app, bytecode
 *   runtime   base + user + entrypoint + the results above
 */
#include "recipe.h"

#include <ctype.h>

#define APP_UID "10001"
/* The build secret collectstatic's settings import may read (--secret id=django-env,src=F). */
#define SECRET_ID "django-env"
/* A COPY --from onto / gives /app the metadata of the source's /app: every stage that ships
 * something under /app gives its own /app the runtime's owner, so the app may write there
 * (sqlite, uploads) while its files stay root's. */
#define APP_DIR_OWNER "chown " APP_UID ":" APP_UID

static void
json_str(sw_buf_t *b, const char *s)
{
  sw_buf_putc(b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      sw_buf_putc(b, '\\');
    sw_buf_putc(b, *s);
  }
  sw_buf_putc(b, '"');
}

/* COPY --parents ["a", "b/c", DEST]: every file keeps its path under DEST. */
static void
copy_parents(sw_buf_t *b, char *const *files, const char *dest)
{
  sw_buf_puts(b, "COPY --parents [");
  for (size_t i = 0; files && files[i]; i++) {
    sw_buf_puts(b, " \\\n    ");
    json_str(b, files[i]);
    sw_buf_putc(b, ',');
  }
  sw_buf_puts(b, " \\\n    ");
  json_str(b, dest);
  sw_buf_puts(b, "]\n");
}

/* 'x' for sh, ' as '\'' */
static char *
shell_quote(const char *s)
{
  sw_buf_t b = {0};
  sw_buf_putc(&b, '\'');
  for (; *s; s++) {
    if (*s == '\'')
      sw_buf_puts(&b, "'\\''");
    else
      sw_buf_putc(&b, *s);
  }
  sw_buf_putc(&b, '\'');
  return sw_buf_steal(&b);
}

static void
pip_args(sw_buf_t *b)
{
  /* pip reads these from the environment; an ARG without a default stays unset. */
  sw_buf_puts(b, "ARG PIP_INDEX_URL\nARG PIP_EXTRA_INDEX_URL\nARG PIP_FIND_LINKS\n"
                 "ARG PIP_TRUSTED_HOST\n");
}

static void
apt_install(sw_buf_t *b, char *const *pkgs)
{
  if (pkgs == NULL || pkgs[0] == NULL)
    return;
  sw_buf_puts(b, "RUN apt-get update && apt-get install -y --no-install-recommends");
  for (size_t i = 0; pkgs[i]; i++)
    sw_buf_printf(b, " %s", pkgs[i]);
  sw_buf_puts(b, " && rm -rf /var/lib/apt/lists/*\n");
}

/* pip --prefix=/install, made layout-independent: Debian's pip writes PREFIX/local/…, and
 * bytecode compiled once, deterministically (unchecked-hash .pyc, paths as installed). */
/* The packaging lint (the article's addendum), run on the installed package: every .py under
 * a package that did not ship (a directory without __init__.py) and every template, static,
 * locale or fixture file, each with its fix. */
static const char lint_py[] =
    "# slipway's packaging lint (the article's addendum): every file of the package's source that\n"
    "# the installed package lacks, with the fix. Warnings; SLIPWAY_LINT=error fails the build.\n"
    "import glob, os, sys\n"
    "src, inst = sys.argv[1], sys.argv[2]\n"
    "sites = glob.glob(inst + \"/lib/python*/*-packages\")\n"
    "DATA = (\"templates\", \"static\", \"locale\", \"fixtures\")\n"
    "holes, data = {}, {}\n"
    "for top in sorted(os.listdir(src)) if sites else []:\n"
    "    if not os.path.isfile(os.path.join(src, top, \"__init__.py\")):\n"
    "        continue\n"
    "    for d, dirs, files in os.walk(os.path.join(src, top)):\n"
    "        dirs[:] = sorted(x for x in dirs if x != \"__pycache__\" and not "
    "x.startswith(\".\"))\n"
    "        parts = os.path.relpath(d, src).split(os.sep)\n"
    "        for f in sorted(files):\n"
    "            r = \"/\".join(parts + [f])\n"
    "            if f.endswith((\".pyc\", \".mo\")) or f.startswith(\".\") or "
    "os.path.exists(os.path.join(sites[0], r)):\n"
    "                continue\n"
    "            if f.endswith(\".py\"):\n"
    "                hole = \" and \".join(\"/\".join(parts[:i]) + \"/__init__.py\" for i in "
    "range(1, len(parts) + 1)\n"
    "                                    if not os.path.isfile(os.path.join(src, *parts[:i], "
    "\"__init__.py\")))\n"
    "                holes.setdefault(hole, []).append(r)\n"
    "            elif any(p in DATA for p in parts[1:]):\n"
    "                k = next(i for i in range(1, len(parts)) if parts[i] in DATA)\n"
    "                data.setdefault((\"/\".join(parts[:k + 1]), parts[0], \"/\".join(parts[1:k + "
    "1])), []).append(r)\n"
    "def some(files):\n"
    "    return \", \".join(files[:3]) + (\" and %d more\" % (len(files) - 3) if len(files) > 3 "
    "else \"\")\n"
    "n = 0\n"
    "for hole, files in sorted(holes.items()):\n"
    "    n += 1\n"
    "    if hole:\n"
    "        print(\"slipway lint: warning: %s did not ship: no %s, so package discovery skips it. "
    "\"\n"
    "              \"Fix: add an empty %s\" % (some(files), hole, hole))\n"
    "    else:\n"
    "        print(\"slipway lint: warning: %s did not ship: its package is not in the build's "
    "packages. \"\n"
    "              \"Fix: list it in packages= (or use find_packages())\" % some(files))\n"
    "for (base, top, sub), files in sorted(data.items()):\n"
    "    n += 1\n"
    "    print(\"slipway lint: warning: %s did not ship. Fix: `recursive-include %s *` in "
    "MANIFEST.in with \"\n"
    "          \"include_package_data=True (setup.py, setup.cfg), or in pyproject.toml \"\n"
    "          \"[tool.setuptools.package-data] %s = [\\\"%s/**/*\\\"]\" % (some(files), base, "
    "top, sub))\n"
    "if n and os.environ.get(\"SLIPWAY_LINT\") == \"error\":\n"
    "    print(\"slipway lint: %d finding(s), and SLIPWAY_LINT=error: failing the build\" % n)\n"
    "    sys.exit(1)\n";

/* What follows every install into /install: Debian's pip writes PREFIX/local/…, folded into
 * /install; bytecode compiled once, deterministically (unchecked-hash, paths as installed). */
static void
install_tail(sw_buf_t *b, const char *then)
{
  sw_buf_printf(b,
                " \\\n && if [ -d /install/local ]; then cp -a /install/local/. /install/ "
                "&& rm -rf /install/local; fi \\\n"
                " && python -m compileall -q -j 0 --invalidation-mode unchecked-hash "
                "-s /install -p /usr/local /install%s\n",
                then);
}

static void
pip_install(sw_buf_t *b, const char *what, const char *then)
{
  sw_buf_printf(b,
                "RUN pip install --no-warn-script-location --no-compile --ignore-installed "
                "--prefix=/install %s",
                what);
  install_tail(b, then);
}

/* The package build without pip (see build_py): half the time of `pip install .` here. */
static const char build_py[] =
    "# slipway's package build: the PEP 517 backend called in this process (no pip, no isolated\n"
    "# environment: its requirements were installed in the step before), then the wheel unpacked\n"
    "# into --prefix /install as pip would for a pure-Python wheel. A wheel with scripts or .data\n"
    "# goes through pip instead. argv: BACKEND[:OBJECT] [BACKEND-PATH...]\n"
    "import importlib, os, subprocess, sys, sysconfig, tempfile, zipfile\n"
    "spec = sys.argv[1]\n"
    "sys.path[:0] = [os.path.abspath(p) for p in sys.argv[2:]]\n"
    "mod, _, obj = spec.partition(\":\")\n"
    "backend = importlib.import_module(mod)\n"
    "for part in obj.split(\".\") if obj else []:\n"
    "    backend = getattr(backend, part)\n"
    "out = tempfile.mkdtemp(prefix=\"slipway-wheel-\")\n"
    "log = tempfile.TemporaryFile(mode=\"w+\")\n"
    "saved = os.dup(1), os.dup(2)\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
    "os.dup2(log.fileno(), 1); os.dup2(log.fileno(), 2)\n"
    "try:\n"
    "    name = backend.build_wheel(out)\n"
    "except BaseException:\n"
    "    sys.stdout.flush(); sys.stderr.flush()\n"
    "    os.dup2(saved[0], 1); os.dup2(saved[1], 2)\n"
    "    log.seek(0)\n"
    "    sys.stderr.write(log.read())\n"
    "    raise\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
    "os.dup2(saved[0], 1); os.dup2(saved[1], 2)\n"
    "whl = os.path.join(out, name)\n"
    "z = zipfile.ZipFile(whl)\n"
    "names = z.namelist()\n"
    "scripts = any(n.split(\"/\")[0].endswith(\".data\") for n in names) or any(\n"
    "    n.endswith(\".dist-info/entry_points.txt\") and b\"_scripts]\" in z.read(n) for n in "
    "names)\n"
    "if scripts:\n"
    "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", "
    "\"--no-deps\",\n"
    "                           \"--no-compile\", \"--no-warn-script-location\", "
    "\"--ignore-installed\",\n"
    "                           \"--prefix=/install\", whl])\n"
    "else:\n"
    "    site = sysconfig.get_path(\"purelib\", vars={\"base\": \"/install\", \"platbase\": "
    "\"/install\"})\n"
    "    z.extractall(site)\n"
    "    info = next(n.split(\"/\")[0] for n in names if "
    "n.split(\"/\")[0].endswith(\".dist-info\"))\n"
    "    with open(os.path.join(site, info, \"INSTALLER\"), \"w\") as f:\n"
    "        f.write(\"slipway\\n\")\n"
    "print(\"built %s (%d files) and installed it into /install\" % (name, len(names)))\n";

/* A setup.py that computes install_requires: the article's egg_info, in a stage of its own
 * with no network, reading the top-level files (what such a setup.py opens: requirements
 * files, a VERSION file) and the packages' __init__.py; its requires.txt up to the first
 * extras section becomes a requirements file, so deps re-runs only when that list changes. */
static void
stage_egg_info(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# install_requires as setup.py computes it (the article's egg_info).\n"
                 "FROM base AS egginfo\n");
  pip_args(b);
  sw_buf_puts(b, "RUN python -c 'import setuptools' 2>/dev/null || pip install "
                 "--no-warn-script-location setuptools\n"
                 "WORKDIR /src\n");
  copy_parents(b, r->egg_info_files, "/src/");
  sw_buf_puts(b, "RUN --network=none mkdir -p /slipway /tmp/egg \\\n"
                 " && python setup.py -q egg_info --egg-base /tmp/egg \\\n"
                 " && sed -n '/^\\[/q;p' /tmp/egg/*.egg-info/requires.txt > "
                 "/slipway/requires.txt\n");
}

static void
stage_deps(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_printf(b,
                "\n# Dependencies: the normalized set read from %s (names canonical, "
                "sorted,\n# comments and formatting dropped), so only a changed "
                "requirement reinstalls.\n",
                r->deps_source);
  sw_buf_puts(b, "FROM base AS deps\n");
  apt_install(b, r->apt_build);
  pip_args(b);
  if (r->deps.constraints && r->deps.constraints[0]) {
    sw_buf_puts(b, "COPY <<'EOF' /slipway/constraints.txt\n");
    for (size_t i = 0; r->deps.constraints[i]; i++)
      sw_buf_printf(b, "%s\n", r->deps.constraints[i]);
    sw_buf_puts(b, "EOF\n");
  }
  _cleanup_free_ char *reqs = sw_reqset_render(&r->deps, "/slipway/constraints.txt");
  if (r->egg_info)
    sw_buf_puts(b, "COPY --from=egginfo /slipway/requires.txt /slipway/requires.txt\n");
  sw_buf_printf(b, "COPY <<'EOF' /slipway/requirements.txt\n%s%sEOF\n",
                r->egg_info ? "-r /slipway/requires.txt\n" : "", reqs);
  pip_install(b, "-r /slipway/requirements.txt", "");
}

static void
stage_package(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# The project's package, from exactly its files; only its own code "
                 "(dependencies are in deps).\n"
                 "FROM base AS package\n");
  apt_install(b, r->apt_build);
  pip_args(b);
  /* The build backend once, in its own cached step: the package build itself then needs no
   * isolated environment (pip would set one up, from the index, on every code change). */
  sw_buf_puts(b, "RUN pip install --no-warn-script-location");
  for (size_t i = 0; r->build_requires && r->build_requires[i]; i++) {
    _cleanup_free_ char *q = shell_quote(r->build_requires[i]);
    sw_buf_printf(b, " %s", q);
  }
  sw_buf_printf(b, "\nCOPY <<'EOF' /slipway/build.py\n%sEOF\n", build_py);
  sw_buf_printf(b,
                "COPY <<'EOF' /slipway/lint.py\n%sEOF\n"
                "ARG SLIPWAY_LINT\n"
                "WORKDIR /src\n",
                lint_py);
  copy_parents(b, r->package_files, "/src/");
  _cleanup_free_ char *lint =
      xasprintf(" \\\n && python /slipway/lint.py /src/%s /install", r->pkg_root);
  _cleanup_free_ char *backend = shell_quote(r->build_backend);
  sw_buf_printf(b, "RUN python /slipway/build.py %s", backend);
  for (size_t i = 0; r->backend_path && r->backend_path[i]; i++) {
    _cleanup_free_ char *q = shell_quote(r->backend_path[i]);
    sw_buf_printf(b, " %s", q);
  }
  install_tail(b, lint);
}

static void
stage_messages(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# compilemessages: reads only the .po files (msgfmt --check-format, as "
                 "Django runs it).\n"
                 "FROM base AS messages\n"
                 "WORKDIR /src\n");
  copy_parents(b, r->po_files, "/src/");
  sw_buf_puts(b, "RUN command -v msgfmt >/dev/null 2>&1 || { apt-get update && apt-get install "
                 "-y --no-install-recommends gettext; } ; \\\n"
                 "    find . -name '*.po' | sort | while read -r po; do \\\n"
                 "      msgfmt --check-format -o \"${po%.po}.mo\" \"$po\" && rm \"$po\" || exit 1; "
                 "\\\n"
                 "    done \\\n");
  if (r->packaged)
    sw_buf_printf(b,
                  " && sp=$(python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))') "
                  "\\\n && mkdir -p \"/out$sp\" && cp -a /src/%s. \"/out$sp/\"\n",
                  r->pkg_root);
  else
    sw_buf_puts(b,
                " && mkdir -p /out/app && cp -a /src/. /out/app/ && " APP_DIR_OWNER " /out/app\n");
}

static void
stage_static(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# collectstatic: reads the settings, the package markers and apps.py "
                 "(so INSTALLED_APPS import)\n# and the static sources; not the rest of the "
                 "code.\n"
                 "FROM base AS static\n"
                 "COPY --from=deps /install /usr/local\n"
                 "WORKDIR /app\n");
  copy_parents(b, r->static_inputs, "/app/");
  sw_buf_printf(b, "ENV DJANGO_SETTINGS_MODULE=%s PYTHONPATH=/app/%s\n", r->settings_module,
                r->pkg_root);
  /* Values the settings need at import time: a KEY=VALUE file given as a build secret, read
   * into this step's environment only (never in a layer, the history or a cache key). */
  sw_buf_printf(b,
                "RUN --mount=type=secret,id=" SECRET_ID ",required=false \\\n"
                "    set -a; if [ -f /run/secrets/" SECRET_ID " ]; then . /run/secrets/" SECRET_ID
                "; fi; set +a; \\\n"
                "    python -m django collectstatic --noinput || { echo \"slipway recipe: "
                "collectstatic failed importing the settings %s (traceback above). Values they "
                "need at build time: a file of KEY=VALUE lines given with --secret id=" SECRET_ID
                ",src=FILE (never stored in the image, its history or the cache)\"; exit 1; } \\\n",
                r->settings_module);
  sw_buf_puts(b, " && root=$(python -c 'from django.conf import settings; "
                 "print(settings.STATIC_ROOT)') \\\n"
                 " && mkdir -p \"$root\" \"/out$root\" && cp -a \"$root/.\" \"/out$root/\" \\\n"
                 " && if [ -d /out/app ]; then " APP_DIR_OWNER " /out/app; fi\n");
}

static void
stage_app(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# The source tree (.dockerignore, or the recipe's default list), with its "
                 "bytecode.\n"
                 "FROM base AS app\n"
                 "COPY");
  for (size_t i = 0; r->excludes && r->excludes[i]; i++)
    sw_buf_printf(b, " --exclude=%s", r->excludes[i]);
  sw_buf_puts(b, " . /app/\n"
                 "RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash /app "
                 "&& " APP_DIR_OWNER " /app\n");
}

static void
entrypoint(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_printf(b,
                "COPY --chmod=755 <<'EOF' /usr/local/bin/slipway-entrypoint\n"
                "#!/bin/sh\n"
                "# slipway's recipe: migrate (MIGRATE_ON_START=0 skips it), then gunicorn.\n"
                "# With arguments, runs them instead (a management command, a shell).\n"
                "set -e\n"
                "if [ \"$#\" -gt 0 ]; then exec \"$@\"; fi\n"
                "if [ \"${MIGRATE_ON_START:-1}\" != 0 ]; then python -m django migrate "
                "--noinput; fi\n"
                "exec gunicorn --bind \"[::]:${PORT:-%s}\" --worker-tmp-dir /dev/shm "
                "--workers \"${GUNICORN_WORKERS:-3}\" %s\n"
                "EOF\n",
                r->port, r->wsgi_app);
}

static void
stage_runtime(sw_buf_t *b, const sw_recipe_t *r)
{
  sw_buf_puts(b, "\n# The runtime image: no compiler, no build tools, a non-root user.\n"
                 "FROM base AS runtime\n");
  apt_install(b, r->apt_runtime);
  sw_buf_puts(b, "RUN echo 'app:x:" APP_UID ":" APP_UID ":app:/app:/usr/sbin/nologin' "
                 ">> /etc/passwd \\\n"
                 " && echo 'app:x:" APP_UID ":' >> /etc/group && install -d -o " APP_UID
                 " -g " APP_UID " /app\n");
  entrypoint(b, r);
  sw_buf_printf(b, "ENV DJANGO_SETTINGS_MODULE=%s%s\n", r->settings_module,
                r->packaged ? "" : " PYTHONPATH=/app");
  sw_buf_puts(b, "LABEL org.opencontainers.image.title=");
  json_str(b, r->name);
  if (r->version) {
    sw_buf_puts(b, " org.opencontainers.image.version=");
    json_str(b, r->version);
  }
  /* What changes most often comes last: a new layer there re-runs nothing after it. */
  sw_buf_puts(b, "\nCOPY --from=deps /install /usr/local\n");
  if (r->compilemessages)
    sw_buf_puts(b, "COPY --from=messages /out/ /\n");
  if (r->collectstatic)
    sw_buf_puts(b, "COPY --from=static /out/ /\n");
  sw_buf_puts(b, r->packaged ? "COPY --from=package /install /usr/local\n"
                             : "COPY --from=app /app /app\n");
  sw_buf_printf(b,
                "WORKDIR /app\n"
                "USER " APP_UID ":" APP_UID "\n"
                "EXPOSE %s\n"
                "ENTRYPOINT [\"/usr/local/bin/slipway-entrypoint\"]\n"
                "CMD []\n",
                r->port);
}

char *
sw_recipe_dockerfile(const sw_recipe_t *r)
{
  sw_buf_t b = {0};
  sw_buf_printf(&b,
                "# syntax=docker/dockerfile:1.7-labs\n"
                "# Written by `slipway recipe --dockerfile` for the %s Django project `%s`.\n"
                "ARG PYTHON_IMAGE=%s\n"
                "\nFROM ${PYTHON_IMAGE} AS base\n"
                "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 "
                "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1\n",
                r->packaged ? "packaged" : "unpackaged", r->name, r->python_image);
  if (r->egg_info)
    stage_egg_info(&b, r);
  stage_deps(&b, r);
  if (r->packaged)
    stage_package(&b, r);
  if (r->compilemessages)
    stage_messages(&b, r);
  if (r->collectstatic)
    stage_static(&b, r);
  if (!r->packaged)
    stage_app(&b, r);
  stage_runtime(&b, r);
  return sw_buf_steal(&b);
}

static void
list(sw_buf_t *b, const char *title, char *const *v, const char *none)
{
  sw_buf_printf(b, "%-18s", title);
  if (v == NULL || v[0] == NULL) {
    sw_buf_printf(b, "%s\n", none);
    return;
  }
  for (size_t i = 0; v[i]; i++)
    sw_buf_printf(b, "%s%s", i ? ", " : "", v[i]);
  sw_buf_putc(b, '\n');
}

char *
sw_recipe_describe(const sw_recipe_t *r)
{
  sw_buf_t b = {0};
  sw_buf_printf(&b, "%-18s%s%s%s\n", "project:", r->name, r->version ? " " : "",
                r->version ? r->version : "");
  sw_buf_printf(&b, "%-18s%s%s\n", "shape:",
                r->packaged ? "packaged (built into a wheel; no source tree in the image)"
                            : "unpackaged (the source tree goes to /app)",
                *r->pkg_root ? ", src/ layout" : "");
  sw_buf_printf(&b, "%-18s%s (%s; --build-arg PYTHON_IMAGE=... overrides)\n",
                "python image:", r->python_image, r->python_reason);
  sw_buf_printf(&b, "%-18s%s%s\n", "dependencies:", r->deps_source,
                r->gunicorn_added ? " (+ gunicorn, which it does not list)" : "");
  for (size_t i = 0; r->deps.options && r->deps.options[i]; i++)
    sw_buf_printf(&b, "  %s\n", r->deps.options[i]);
  for (size_t i = 0; r->deps.constraints && r->deps.constraints[i]; i++)
    sw_buf_printf(&b, "  -c %s\n", r->deps.constraints[i]);
  for (size_t i = 0; r->deps.reqs && r->deps.reqs[i]; i++)
    sw_buf_printf(&b, "  %s\n", r->deps.reqs[i]);
  sw_buf_printf(&b, "%-18s%s (from %s)\n", "settings module:", r->settings_module,
                r->settings_from);
  sw_buf_printf(&b, "%-18s%s (from %s)\n", "WSGI app:", r->wsgi_app, r->wsgi_from);
  sw_buf_printf(&b, "%-18s%s\n", "STATIC_ROOT:", r->static_root ? r->static_root : "(not set)");
  sw_buf_printf(&b, "%-18s%s\n", "collectstatic:",
                r->collectstatic ? "yes" : "no (no STATIC_ROOT or no django.contrib.staticfiles)");
  list(&b, "locales:", r->locales, "none (no .po files under LC_MESSAGES)");
  sw_buf_printf(&b, "%-18s%s\n", "ignore list:",
                r->excludes ? "the recipe's default (no .dockerignore)" : ".dockerignore");
  for (size_t i = 0; r->notes && r->notes[i]; i++)
    sw_buf_printf(&b, "note: %s\n", r->notes[i]);
  sw_buf_puts(&b, "\nplan (each step reads only what is listed):\n");
  sw_buf_printf(&b, "  deps       %zu requirements -> pip install --prefix=/install\n",
                sw_strv_len(r->deps.reqs));
  if (r->packaged)
    sw_buf_printf(&b, "  package    %zu files -> pip install --no-deps .\n",
                  sw_strv_len(r->package_files));
  if (r->compilemessages)
    sw_buf_printf(&b, "  messages   %zu .po files -> msgfmt\n", sw_strv_len(r->po_files));
  if (r->collectstatic)
    sw_buf_printf(&b,
                  "  static     %zu files (settings, package markers, static sources) "
                  "-> collectstatic\n",
                  sw_strv_len(r->static_inputs));
  if (!r->packaged)
    sw_buf_puts(&b, "  app        the source tree -> /app, bytecode\n");
  sw_buf_printf(&b,
                "  runtime    base + deps%s%s%s%s, user " APP_UID ", entrypoint: migrate, "
                "then gunicorn %s on [::]:${PORT:-%s}\n",
                r->packaged ? " + package" : "", r->compilemessages ? " + .mo" : "",
                r->collectstatic ? " + static" : "", r->packaged ? "" : " + /app", r->wsgi_app,
                r->port);
  return sw_buf_steal(&b);
}

/* The project name right after NEEDLE in MSG, canonical; NULL if NEEDLE is not there. */
static char *
name_after(const char *msg, const char *needle)
{
  const char *p = strstr(msg, needle);
  if (p == NULL)
    return NULL;
  p += strlen(needle);
  size_t n = 0;
  while (p[n] && (isalnum((unsigned char)p[n]) || strchr("-_.", p[n])))
    n++;
  return n ? sw_pep503_name(p, n) : NULL;
}

char *
sw_recipe_explain(const sw_recipe_t *r, const char *msg)
{
  static const char *const pip_says[] = {
      "No matching distribution found for ",
      "Could not find a version that satisfies the requirement ",
  };
  _cleanup_free_ char *name = NULL;
  for (size_t i = 0; i < SW_ARRAY_SIZE(pip_says) && name == NULL; i++)
    name = name_after(msg, pip_says[i]);
  if (name == NULL)
    return NULL;
  sw_buf_t b = {0};
  for (size_t i = 0; r->deps.sources && r->deps.sources[i]; i++) {
    /* "FILE:LINE: REQ": the requirement's own canonical name. */
    const char *req = strstr(r->deps.sources[i], ": ");
    while (req && strstr(req + 2, ": "))
      req = strstr(req + 2, ": ");
    if (req == NULL)
      continue;
    req += 2;
    while (*req == ' ')
      req++;
    size_t n = 0;
    while (req[n] && (isalnum((unsigned char)req[n]) || strchr("-_.", req[n])))
      n++;
    _cleanup_free_ char *have = sw_pep503_name(req, n);
    if (strcmp(have, name) == 0)
      sw_buf_printf(&b, "%s`%s` is required by %s", b.len ? "; " : "", name, r->deps.sources[i]);
  }
  if (b.len == 0)
    sw_buf_printf(&b, "`%s` is not in the project's own list (%s): another requirement needs it",
                  name, r->deps_source);
  sw_buf_puts(&b, ". pip reads the index from --build-arg PIP_INDEX_URL (and PIP_EXTRA_INDEX_URL, "
                  "PIP_FIND_LINKS); `slipway recipe` shows the set it was given");
  return sw_buf_steal(&b);
}
