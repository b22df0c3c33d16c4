/* libFuzzer target: the recipe's readers of untrusted project files (recipe.h): requirements
 * files (includes read the input again, so nesting and cycles are exercised), TOML, setup.cfg,
 * Python string literals, and the uv.lock/poetry.lock walks. Each must end in bounded time and
 * never read out of bounds. */
#include "recipe.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current;

static int
read_same(void *ud, const char *path, char **text, sw_error_t *err)
{
  (void)ud;
  (void)path;
  (void)err;
  *text = xstrdup(current);
  return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 65536)
    return 0;
  /* NUL-terminated copy: the readers take text (a NUL inside ends it for some of them). */
  _cleanup_free_ char *text = xstrndup((const char *)data, size);
  size_t len = strlen(text);
  sw_error_t err = NULL;
  current = text;

  sw_reqset_t s = {0};
  if (sw_reqset_parse(&s, "requirements.txt", text, len, read_same, NULL, &err) < 0)
    sw_error_release(&err);
  sw_reqset_finish(&s);
  free(sw_reqset_render(&s, "/c.txt"));
  (void)sw_reqset_has(&s, "django");
  sw_reqset_clear(&s);

  char *norm = NULL;
  if (sw_req_normalize(text, &norm, &err) < 0)
    sw_error_release(&err);
  free(norm);

  sw_toml_t *t = NULL;
  if (sw_toml_parse("pyproject.toml", (const char *)data, size, &t, &err) < 0) {
    sw_error_release(&err);
  } else {
    (void)sw_toml_get(t, "project.name");
    (void)sw_toml_array(t, "project.dependencies");
    (void)sw_toml_has(t, "build-system");
    sw_strv_free(sw_toml_children(t, "project.optional-dependencies"));
    sw_toml_free(t);
  }

  const char *locks[] = {"uv.lock", "poetry.lock"};
  for (size_t i = 0; i < 2; i++) {
    sw_reqset_t pins = {0};
    if (sw_lock_pins(locks[i], (const char *)data, size, NULL, NULL, &pins, &err) < 0)
      sw_error_release(&err);
    sw_reqset_clear(&pins);
  }

  free(sw_ini_get((const char *)data, size, "options", "install_requires"));
  char **list = NULL;
  if (sw_setuppy_list((const char *)data, size, "install_requires", &list) == 1)
    sw_strv_free(list);
  free(sw_py_assigned_string((const char *)data, size, "WSGI_APPLICATION"));
  free(sw_py_setdefault_string((const char *)data, size, "DJANGO_SETTINGS_MODULE"));
  return 0;
}
