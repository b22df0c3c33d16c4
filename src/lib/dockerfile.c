/* slipway: Dockerfile parser; see dockerfile.h. (Early landing: the API compiles, parsing is
 * being written.) */
#include "dockerfile.h"
#include "util.h"

#include <stdarg.h>

int
sw_dockerfile_parse(const char *path, const char *data, size_t len, sw_dockerfile_t **out,
                    sw_error_t *err)
{
  (void)data;
  (void)len;
  (void)out;
  return sw_error_code(err, SW_EXIT_USAGE, 0, "%s: the Dockerfile parser is not landed yet", path);
}

int
sw_dockerfile_load(const char *path, sw_dockerfile_t **out, sw_error_t *err)
{
  return sw_dockerfile_parse(path, "", 0, out, err);
}

void
sw_dockerfile_free(sw_dockerfile_t *df)
{
  free(df);
}

char *
sw_dockerfile_dump(const sw_dockerfile_t *df)
{
  (void)df;
  return xstrdup("");
}

char *
sw_insn_dump(const sw_insn_t *insn)
{
  (void)insn;
  return xstrdup("");
}

sw_insn_kind_t
sw_insn_kind_from_name(const char *name)
{
  (void)name;
  return SW_INSN_UNKNOWN;
}

const char *
sw_insn_kind_name(sw_insn_kind_t kind)
{
  (void)kind;
  return "UNKNOWN";
}

const char *
sw_insn_flag(const sw_insn_t *insn, const char *name)
{
  (void)insn;
  (void)name;
  return NULL;
}

char **
sw_insn_flag_all(const sw_insn_t *insn, const char *name)
{
  (void)insn;
  (void)name;
  return xcalloc(1, sizeof(char *));
}

char *
sw_heredoc_content(const sw_heredoc_t *h)
{
  return xstrdup(h->content);
}

int
sw_dockerfile_error(const sw_dockerfile_t *df, int line, int col, sw_error_t *err,
                    const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  int ret;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  ret = sw_error_code(err, SW_EXIT_USAGE, 0, "%s:%d:%d: %s", df ? df->path : "Dockerfile", line,
                      col, msg);
  free(msg);
  return ret;
}
