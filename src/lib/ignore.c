/* slipway: .dockerignore matching; see ignore.h. (Early landing: the matcher is being written.) */
#include "ignore.h"
#include "util.h"

struct sw_ignore_s {
  size_t n;
};

int
sw_ignore_parse(const char *source, const char *text, size_t len, sw_ignore_t **out,
                sw_error_t *err)
{
  (void)source;
  (void)text;
  (void)len;
  (void)err;
  *out = xcalloc(1, sizeof(**out));
  return 0;
}

int
sw_ignore_load(const char *path, sw_ignore_t **out, sw_error_t *err)
{
  return sw_ignore_parse(path, "", 0, out, err);
}

int
sw_ignore_load_for_build(const char *context_dir, const char *dockerfile, sw_ignore_t **out,
                         sw_error_t *err)
{
  (void)dockerfile;
  return sw_ignore_parse(context_dir, "", 0, out, err);
}

void
sw_ignore_free(sw_ignore_t *ig)
{
  free(ig);
}

bool
sw_ignore_match(const sw_ignore_t *ig, const char *path)
{
  (void)ig;
  (void)path;
  return false;
}

bool
sw_ignore_may_include_below(const sw_ignore_t *ig, const char *dir)
{
  (void)ig;
  (void)dir;
  return true;
}

size_t
sw_ignore_count(const sw_ignore_t *ig)
{
  return ig ? ig->n : 0;
}

bool
sw_ignore_has_exceptions(const sw_ignore_t *ig)
{
  (void)ig;
  return false;
}
