/* libFuzzer target: the build checks (lint.c) over any Dockerfile the parser accepts, with a
 * base image env callback; and the untrusted strings of the remote sources: a download's file
 * name from a URL and a server's Content-Disposition, the git source syntax. */
#include "fetch-git.h"
#include "fetch-url.h"
#include "lint.h"
#include "util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char **
env_of(void *ud, const char *ref)
{
  (void)ud;
  if (ref[0] == 'u')
    return NULL; /* unknown base */
  char **v = xcalloc(2, sizeof(char *));
  v[0] = xstrdup("PATH=/bin");
  return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  _cleanup_free_ char *s = xstrndup((const char *)data, size);
  /* "URL\nCONTENT-DISPOSITION": the naming rules; the whole input as a git source too. */
  char *nl = strchr(s, '\n');
  if (nl) {
    _cleanup_free_ char *url = xstrndup(s, (size_t)(nl - s));
    free(sw_url_file_name(url, nl + 1));
  }
  sw_git_src_t g;
  sw_error_t err = NULL;
  if (sw_git_parse(s, &g, &err) == 0)
    sw_git_src_clear(&g);
  sw_error_release(&err);
  (void)sw_url_is_http(s);

  sw_dockerfile_t *df = NULL;
  if (sw_dockerfile_parse("fuzz", (const char *)data, size, &df, &err) < 0) {
    sw_error_release(&err);
    return 0;
  }
  sw_lint_opts_t o = {.image_env = env_of};
  sw_lint_t l;
  sw_lint_run(df, &o, &l);
  for (size_t i = 0; i < l.n; i++)
    free(sw_lint_format(df, &l.v[i]));
  sw_lint_clear(&l);
  sw_dockerfile_free(df);
  return 0;
}
