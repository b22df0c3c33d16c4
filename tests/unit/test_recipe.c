/* Unit tests for the recipe's pure readers (recipe-req.c, recipe-toml.c) and for the plan it
 * renders from a project directory (recipe-detect.c, recipe-render.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "recipe.h"
#include "util.h"

#include <sys/stat.h>

static void
norm_is(const char *in, const char *want)
{
  char *out = NULL;
  sw_error_t err = NULL;
  if (sw_req_normalize(in, &out, &err) < 0)
    fail_msg("`%s`: %s", in, err->msg);
  if (strcmp(out, want) != 0)
    fail_msg("`%s` -> `%s`, want `%s`", in, out, want);
  free(out);
}

static void
norm_fails(const char *in)
{
  char *out = NULL;
  sw_error_t err = NULL;
  if (sw_req_normalize(in, &out, &err) == 0)
    fail_msg("`%s` should be refused, got `%s`", in, out);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  sw_error_release(&err);
}

static void
test_pep503(void **state)
{
  (void)state;
  _cleanup_free_ char *a = sw_pep503_name("Django", 6);
  _cleanup_free_ char *b = sw_pep503_name("zope.interface", 14);
  _cleanup_free_ char *c = sw_pep503_name("My__Pkg-_.x", 11);
  assert_string_equal(a, "django");
  assert_string_equal(b, "zope-interface");
  assert_string_equal(c, "my-pkg-x");
}

static void
test_normalize(void **state)
{
  (void)state;
  norm_is("Django", "django");
  norm_is("  Django >= 3.2 , <4.0  ", "django<4.0,>=3.2");
  norm_is("Django<4.0,>=3.2", "django<4.0,>=3.2");
  norm_is("django (>=3.2)", "django>=3.2");
  norm_is("Requests[Socks,security] ==2.31.0", "requests[security,socks]==2.31.0");
  norm_is("pywin32 ; sys_platform  ==  'win32'", "pywin32; sys_platform == 'win32'");
  norm_is("foo @ https://example.com/foo-1.0.whl ; python_version>'3'",
          "foo @ https://example.com/foo-1.0.whl; python_version>'3'");
  norm_is("foo==1.0a1.post2+local.3", "foo==1.0a1.post2+local.3");
  norm_fails("");
  norm_fails("./local/path");
  norm_fails("https://example.com/x.whl");
  norm_fails("foo >= 1 & 2");
  norm_fails("foo[bar");
  norm_fails("foo @");
}

typedef struct {
  const char *names[4];
  const char *texts[4];
} files_t;

static int
read_fake(void *ud, const char *path, char **text, sw_error_t *err)
{
  const files_t *f = ud;
  for (int i = 0; i < 4 && f->names[i]; i++)
    if (strcmp(f->names[i], path) == 0) {
      *text = xstrdup(f->texts[i]);
      return 0;
    }
  return sw_error(err, ENOENT, "open `%s`", path);
}

static char *
render(const char *text, const files_t *f, sw_error_t *err)
{
  sw_reqset_t s = {0};
  if (sw_reqset_parse(&s, "requirements.txt", text, strlen(text), read_fake, (void *)f, err) < 0) {
    sw_reqset_clear(&s);
    return NULL;
  }
  sw_reqset_finish(&s);
  char *out = sw_reqset_render(&s, "/c.txt");
  sw_reqset_clear(&s);
  return out;
}

static void
test_requirements_file(void **state)
{
  (void)state;
  files_t f = {{"req/base.txt", "req/pins.txt"},
               {"-c pins.txt\nsqlparse\n", "sqlparse==0.4.2 # pinned\n"}};
  sw_error_t err = NULL;
  _cleanup_free_ char *out = render("# comment\n"
                                    "--index-url https://pypi.example/simple\n"
                                    "Django>=3.2,<4.0   # the framework\n"
                                    "-r req/base.txt\n"
                                    "gunicorn \\\n"
                                    "  ==20.1.0 \\\n"
                                    "  --hash=sha256:bbb --hash sha256:aaa\n"
                                    "\n"
                                    "  pytz\r\n"
                                    "foo @ https://x.example/foo.whl#sha256=abc\n",
                                    &f, &err);
  if (out == NULL)
    fail_msg("%s", err->msg);
  assert_string_equal(out, "--index-url https://pypi.example/simple\n"
                           "-c /c.txt\n"
                           "django<4.0,>=3.2\n"
                           "foo @ https://x.example/foo.whl#sha256=abc\n"
                           "gunicorn==20.1.0 --hash=sha256:aaa --hash=sha256:bbb\n"
                           "pytz\n"
                           "sqlparse\n");
}

/* The point of normalizing: formatting, comments and order do not change the set. */
static void
test_same_set(void **state)
{
  (void)state;
  sw_error_t err = NULL;
  _cleanup_free_ char *a = render("Django>=3.2,<4.0\npytz\n", NULL, &err);
  _cleanup_free_ char *b =
      render("# deps\npytz  # tz\n\ndjango < 4.0 , >= 3.2\nDjango>=3.2,<4.0\n", NULL, &err);
  _cleanup_free_ char *c = render("Django>=3.2,<4.1\npytz\n", NULL, &err);
  assert_non_null(a);
  assert_string_equal(a, b);
  assert_string_not_equal(a, c);
}

static void
expect_error(const char *text, const files_t *f, const char *needle)
{
  sw_error_t err = NULL;
  char *out = render(text, f, &err);
  if (out)
    fail_msg("`%s` should fail, gave `%s`", text, out);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("`%s`: message `%s` lacks `%s`", text, err->msg, needle);
  sw_error_release(&err);
}

static void
test_requirements_errors(void **state)
{
  (void)state;
  files_t loop = {{"a.txt"}, {"-r a.txt\n"}};
  expect_error("ok\n-e .\n", NULL, "requirements.txt:2: editable");
  expect_error("--frobnicate\n", NULL, "unknown pip option");
  expect_error("-r missing.txt\n", &loop, "requirements.txt:1");
  expect_error("-r a.txt\n", &loop, "nested more than");
  expect_error("-r https://x/y.txt\n", NULL, "URL");
  expect_error("foo --install-option=x\n", NULL, "only --hash");
  expect_error("ok\n\n./dir\n", NULL, "requirements.txt:3");
}

static void
test_reqset_has(void **state)
{
  (void)state;
  sw_reqset_t s = {0};
  sw_error_t err = NULL;
  assert_int_equal(sw_reqset_add(&s, "Gunicorn[gevent]>=20", "x", &err), 0);
  assert_int_equal(sw_reqset_add(&s, "gunicorn-extras", "x", &err), 0);
  assert_true(sw_reqset_has(&s, "gunicorn"));
  assert_true(sw_reqset_has(&s, "GUNICORN"));
  assert_false(sw_reqset_has(&s, "guni"));
  sw_reqset_clear(&s);
}

static sw_toml_t *
toml(const char *text)
{
  sw_toml_t *t = NULL;
  sw_error_t err = NULL;
  if (sw_toml_parse("pyproject.toml", text, strlen(text), &t, &err) < 0)
    fail_msg("%s", err->msg);
  return t;
}

static void
test_toml(void **state)
{
  (void)state;
  _cleanup_(sw_toml_freep) sw_toml_t *t =
      toml("# top\n"
           "[build-system]\n"
           "requires = [\"setuptools>=61\", 'wheel']  # backend\n"
           "build-backend = \"setuptools.build_meta\"\n"
           "\n"
           "[project]\n"
           "name = \"blog\"\n"
           "version = '0.1.0'\n"
           "dependencies = [\n"
           "  \"Django >= 3.2\",  # comment\n"
           "  \"\"\"pytz\"\"\",\n"
           "]\n"
           "authors = [{name = \"A\", email = \"a@x\"}]\n"
           "optional-dependencies.dev = [\"pytest\"]\n"
           "[project.optional-dependencies]\n"
           "s3 = [\"boto3\"]\n"
           "[tool.slipway]\n"
           "\"settings-module\" = \"blog.settings\"\n"
           "collectstatic = false\n"
           "escaped = \"a\\tb\\u00e9\"\n"
           "[[package]]\n"
           "name = \"x\"\n"
           "[[package]]\n"
           "name = \"y\"\n");
  assert_string_equal(sw_toml_get(t, "project.name"), "blog");
  assert_string_equal(sw_toml_get(t, "project.version"), "0.1.0");
  char *const *deps = sw_toml_array(t, "project.dependencies");
  assert_non_null(deps);
  assert_string_equal(deps[0], "Django >= 3.2");
  assert_string_equal(deps[1], "pytz");
  assert_null(deps[2]);
  assert_string_equal(sw_toml_array(t, "build-system.requires")[1], "wheel");
  assert_string_equal(sw_toml_get(t, "project.authors.0.name"), "A");
  assert_string_equal(sw_toml_array(t, "project.optional-dependencies.dev")[0], "pytest");
  assert_string_equal(sw_toml_array(t, "project.optional-dependencies.s3")[0], "boto3");
  assert_string_equal(sw_toml_get(t, "tool.slipway.settings-module"), "blog.settings");
  assert_string_equal(sw_toml_get(t, "tool.slipway.collectstatic"), "false");
  assert_string_equal(sw_toml_get(t, "tool.slipway.escaped"), "a\tb\xc3\xa9");
  assert_string_equal(sw_toml_get(t, "package.1.name"), "y");
  assert_true(sw_toml_has(t, "build-system"));
  assert_false(sw_toml_has(t, "build"));
  _cleanup_strv_ char **extras = sw_toml_children(t, "project.optional-dependencies");
  assert_string_equal(extras[0], "dev");
  assert_string_equal(extras[1], "s3");
  assert_null(extras[2]);
  assert_null(sw_toml_get(t, "project.nope"));
}

static void
test_toml_errors(void **state)
{
  (void)state;
  const char *bad[] = {"a = \"open\n", "[x\n",        "a = [1, 2\n",
                       "= 1\n",        "a = 'x' b\n", "a = {b = 1\n"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(bad); i++) {
    sw_toml_t *t = NULL;
    sw_error_t err = NULL;
    if (sw_toml_parse("p.toml", bad[i], strlen(bad[i]), &t, &err) == 0)
      fail_msg("`%s` should not parse", bad[i]);
    assert_true(sw_str_has_prefix(err->msg, "p.toml:"));
    sw_error_release(&err);
  }
}

static void
test_setup_cfg_and_py(void **state)
{
  (void)state;
  const char *cfg = "[metadata]\nname = shop\nversion: 2.0\n\n[options]\n"
                    "packages = find:\ninstall_requires =\n    Django>=3.2\n    # c\n\n"
                    "    pytz\npython_requires = >=3.10\n";
  _cleanup_free_ char *name = sw_ini_get(cfg, strlen(cfg), "metadata", "name");
  _cleanup_free_ char *version = sw_ini_get(cfg, strlen(cfg), "metadata", "version");
  _cleanup_free_ char *reqs = sw_ini_get(cfg, strlen(cfg), "options", "install_requires");
  _cleanup_free_ char *none = sw_ini_get(cfg, strlen(cfg), "metadata", "install_requires");
  assert_string_equal(name, "shop");
  assert_string_equal(version, "2.0");
  assert_string_equal(reqs, "\nDjango>=3.2\npytz");
  assert_null(none);

  const char *py = "from setuptools import setup\n"
                   "setup(name='foo', version = \"1.0\",\n"
                   "  install_requires=[\n    'Django>=3.2',  # web\n    \"pytz\",\n  ],\n"
                   "  extras_require={'dev': ['x']})\n";
  _cleanup_strv_ char **list = NULL;
  assert_int_equal(sw_setuppy_list(py, strlen(py), "install_requires", &list), 1);
  assert_string_equal(list[0], "Django>=3.2");
  assert_string_equal(list[1], "pytz");
  assert_null(list[2]);
  _cleanup_free_ char *v = sw_py_assigned_string(py, strlen(py), "version");
  assert_string_equal(v, "1.0");
  const char *dyn = "setup(install_requires=read_reqs())\n";
  char **l2 = NULL;
  assert_int_equal(sw_setuppy_list(dyn, strlen(dyn), "install_requires", &l2), -1);
  assert_int_equal(sw_setuppy_list(dyn, strlen(dyn), "tests_require", &l2), 0);

  const char *manage = "os.environ.setdefault(\n  'DJANGO_SETTINGS_MODULE', \"mysite.settings\")\n";
  _cleanup_free_ char *m =
      sw_py_setdefault_string(manage, strlen(manage), "DJANGO_SETTINGS_MODULE");
  assert_string_equal(m, "mysite.settings");
  const char *settings = "WSGI_APPLICATION == 'no'\nWSGI_APPLICATION = 'a.wsgi.application'\n";
  _cleanup_free_ char *w = sw_py_assigned_string(settings, strlen(settings), "WSGI_APPLICATION");
  assert_string_equal(w, "a.wsgi.application");
}

static char *
pins(const char *path, const char *lock, const char *pyproject, char *const *extras)
{
  _cleanup_(sw_toml_freep) sw_toml_t *py = pyproject ? toml(pyproject) : NULL;
  sw_reqset_t s = {0};
  sw_error_t err = NULL;
  if (sw_lock_pins(path, lock, strlen(lock), py, extras, &s, &err) < 0)
    fail_msg("%s", err->msg);
  sw_reqset_finish(&s);
  char *out = sw_reqset_render(&s, "/c.txt");
  sw_reqset_clear(&s);
  return out;
}

static void
test_uv_lock(void **state)
{
  (void)state;
  const char *lock = "version = 1\n"
                     "requires-python = \">=3.11\"\n\n"
                     "[[package]]\n"
                     "name = \"asgiref\"\nversion = \"3.8.1\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n"
                     "wheels = [{ url = \"https://x/asgiref.whl\", hash = \"sha256:aa\" }]\n\n"
                     "[[package]]\n"
                     "name = \"Django\"\nversion = \"5.0.6\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n"
                     "dependencies = [\n  { name = \"asgiref\" },\n  { name = \"sqlparse\" },\n"
                     "  { name = \"tzdata\", marker = \"sys_platform == 'win32'\" },\n]\n\n"
                     "[[package]]\n"
                     "name = \"pytest\"\nversion = \"8.2.0\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n\n"
                     "[[package]]\n"
                     "name = \"shop\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\n"
                     "dependencies = [\n  { name = \"django\" },\n]\n\n"
                     "[package.optional-dependencies]\nredis = [\n  { name = \"redis\" },\n]\n\n"
                     "[package.dev-dependencies]\ndev = [\n  { name = \"pytest\" },\n]\n\n"
                     "[[package]]\n"
                     "name = \"redis\"\nversion = \"5.0.4\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n\n"
                     "[[package]]\n"
                     "name = \"sqlparse\"\nversion = \"0.5.0\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n\n"
                     "[[package]]\n"
                     "name = \"tzdata\"\nversion = \"2024.1\"\n"
                     "source = { registry = \"https://pypi.org/simple\" }\n";
  const char *py = "[project]\nname = \"shop\"\n";
  _cleanup_free_ char *out = pins("uv.lock", lock, py, NULL);
  /* Dev groups (pytest) and unselected extras (redis) stay out; markers are kept. */
  assert_string_equal(out, "asgiref==3.8.1\ndjango==5.0.6\nsqlparse==0.5.0\n"
                           "tzdata==2024.1; sys_platform == 'win32'\n");
  char *extras[] = {"redis", NULL};
  _cleanup_free_ char *with = pins("uv.lock", lock, py, extras);
  assert_non_null(strstr(with, "redis==5.0.4\n"));

  sw_reqset_t s = {0};
  sw_error_t err = NULL;
  const char *noroot = "[[package]]\nname = \"a\"\nversion = \"1\"\n";
  assert_int_equal(sw_lock_pins("uv.lock", noroot, strlen(noroot), NULL, NULL, &s, &err), -1);
  assert_non_null(strstr(err->msg, "uv lock"));
  sw_error_release(&err);
  sw_reqset_clear(&s);
}

static void
test_poetry_lock(void **state)
{
  (void)state;
  const char *lock = "[[package]]\nname = \"django\"\nversion = \"4.2.13\"\n"
                     "[package.dependencies]\nasgiref = \">=3.6.0,<4\"\nsqlparse = \">=0.3.1\"\n"
                     "tzdata = {version = \"*\", markers = \"sys_platform == \\\"win32\\\"\"}\n"
                     "argon2-cffi = {version = \">=19.1.0\", optional = true}\n\n"
                     "[[package]]\nname = \"asgiref\"\nversion = \"3.8.1\"\n\n"
                     "[[package]]\nname = \"sqlparse\"\nversion = \"0.5.0\"\n\n"
                     "[[package]]\nname = \"tzdata\"\nversion = \"2024.1\"\n\n"
                     "[[package]]\nname = \"argon2-cffi\"\nversion = \"23.1.0\"\n\n"
                     "[[package]]\nname = \"pytest\"\nversion = \"8.2.0\"\n";
  const char *py = "[tool.poetry.dependencies]\npython = \"^3.11\"\nDjango = \"^4.2\"\n"
                   "[tool.poetry.group.dev.dependencies]\npytest = \"^8\"\n";
  _cleanup_free_ char *out = pins("poetry.lock", lock, py, NULL);
  assert_string_equal(out, "asgiref==3.8.1\ndjango==4.2.13\nsqlparse==0.5.0\n"
                           "tzdata==2024.1; sys_platform == \"win32\"\n");
  /* Old locks mark the groups themselves. */
  const char *old = "[[package]]\nname = \"django\"\nversion = \"3.2\"\ncategory = \"main\"\n"
                    "[[package]]\nname = \"pytest\"\nversion = \"7\"\ncategory = \"dev\"\n";
  _cleanup_free_ char *o = pins("poetry.lock", old, NULL, NULL);
  assert_string_equal(o, "django==3.2\n");
}

/* ---- a project on disk ---- */

static void
put(const char *dir, const char *rel, const char *text)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
  _cleanup_free_ char *d = xstrdup(p);
  *strrchr(d, '/') = '\0';
  sw_error_t err = NULL;
  assert_int_equal(sw_mkdir_p(d, 0755, &err), 0);
  assert_int_equal(sw_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

static char *
project(void)
{
  char tmpl[] = "/tmp/test_recipe.XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *dir = xstrdup(tmpl);
  put(dir, "manage.py", "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n");
  put(dir, "requirements.txt", "Django>=3.2 # web\n");
  put(dir, "mysite/__init__.py", "");
  put(dir, "mysite/settings.py",
      "INSTALLED_APPS = ['django.contrib.staticfiles', 'pages']\n"
      "WSGI_APPLICATION = 'mysite.wsgi.application'\nSTATIC_ROOT = BASE_DIR / 'static'\n");
  put(dir, "pages/__init__.py", "");
  put(dir, "pages/views.py", "x = 1\n");
  put(dir, "pages/static/pages/a.css", "a{}\n");
  put(dir, "pages/locale/de/LC_MESSAGES/django.po", "msgid \"\"\nmsgstr \"\"\n");
  put(dir, ".venv/lib/site.py", "");
  return dir;
}

static void
test_project_plan(void **state)
{
  (void)state;
  _cleanup_free_ char *dir = project();
  sw_error_t err = NULL;
  assert_true(sw_recipe_detect_python(dir));
  _cleanup_(sw_recipe_freep) sw_recipe_t *r = NULL;
  if (sw_recipe_load(dir, NULL, &r, &err) < 0)
    fail_msg("%s", err->msg);
  assert_false(r->packaged);
  assert_string_equal(r->settings_module, "mysite.settings");
  assert_string_equal(r->wsgi_app, "mysite.wsgi:application");
  assert_true(r->collectstatic);
  assert_true(r->compilemessages);
  assert_string_equal(r->locales[0], "de");
  assert_true(r->gunicorn_added);
  _cleanup_free_ char *df = sw_recipe_dockerfile(r);
  /* The deps heredoc holds the normalized set, not the file's text. */
  assert_non_null(strstr(df, "COPY <<'EOF' /slipway/requirements.txt\ndjango>=3.2\ngunicorn\nEOF"));
  /* collectstatic reads the settings, the markers and the static files, not views.py. */
  const char *st = strstr(df, "FROM base AS static");
  assert_non_null(st);
  const char *st_end = strstr(st, "RUN --mount=type=secret,id=django-env");
  assert_non_null(st_end);
  _cleanup_free_ char *static_stage = xstrndup(st, (size_t)(st_end - st));
  assert_non_null(strstr(static_stage, "\"mysite/settings.py\""));
  assert_non_null(strstr(static_stage, "\"pages/static/pages/a.css\""));
  assert_null(strstr(static_stage, "views.py"));
  assert_null(strstr(df, ".venv/lib"));
  assert_non_null(strstr(df, "--exclude=.venv"));
  assert_non_null(strstr(df, "mysite.wsgi:application"));

  /* A setting by build arg. */
  char *args[] = {"SLIPWAY_WSGI_APP=other.wsgi:app", "SLIPWAY_COLLECTSTATIC=false", NULL};
  _cleanup_(sw_recipe_freep) sw_recipe_t *r2 = NULL;
  assert_int_equal(sw_recipe_load(dir, args, &r2, &err), 0);
  assert_string_equal(r2->wsgi_app, "other.wsgi:app");
  assert_false(r2->collectstatic);

  /* No WSGI app: the error says what was searched and which key sets it. */
  put(dir, "mysite/settings.py", "STATIC_ROOT = '/s'\n");
  _cleanup_(sw_recipe_freep) sw_recipe_t *r3 = NULL;
  assert_int_equal(sw_recipe_load(dir, NULL, &r3, &err), -1);
  assert_non_null(strstr(err->msg, "WSGI_APPLICATION"));
  assert_non_null(strstr(err->msg, "wsgi-app"));
  sw_error_release(&err);
  assert_int_equal(sw_rm_rf(dir, &err), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pep503),
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_requirements_file),
      cmocka_unit_test(test_same_set),
      cmocka_unit_test(test_requirements_errors),
      cmocka_unit_test(test_reqset_has),
      cmocka_unit_test(test_toml),
      cmocka_unit_test(test_toml_errors),
      cmocka_unit_test(test_setup_cfg_and_py),
      cmocka_unit_test(test_uv_lock),
      cmocka_unit_test(test_poetry_lock),
      cmocka_unit_test(test_project_plan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
