/* libFuzzer target: .dockerignore. Input: the first line is a path to test, the rest is the
 * ignore file; the matcher and the directory-pruning query must answer in bounded time. */
#include "ignore.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  const char *nl = memchr(s, '\n', size);
  size_t plen = nl ? (size_t)(nl - s) : size;
  char *path;
  sw_ignore_t *ig = NULL;
  sw_error_t err = NULL;

  if (size > 16384)
    return 0;
  path = xstrndup(s, plen);
  if (sw_ignore_parse("fuzz", nl ? nl + 1 : "", nl ? size - plen - 1 : 0, &ig, &err) < 0) {
    sw_error_release(&err);
  } else {
    (void)sw_ignore_match(ig, path);
    (void)sw_ignore_may_include_below(ig, path);
    sw_ignore_free(ig);
  }
  free(path);
  return 0;
}
