/* slipway: the error contract; see error.h. */
#include "error.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
error_vset(sw_error_t *err, int code, int status, const char *fmt, va_list ap)
{
  char *msg = NULL;

  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  if (err == NULL) {
    free(msg);
    return -1;
  }
  if (*err != NULL)
    sw_error_release(err);
  *err = xcalloc(1, sizeof(**err));
  (*err)->status = status;
  (*err)->code = code;
  if (status > 0) {
    (*err)->msg = xasprintf("%s: %s", msg, strerror(status));
    free(msg);
  } else {
    (*err)->msg = msg;
  }
  return -1;
}

int
sw_error(sw_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  int ret;

  va_start(ap, fmt);
  ret = error_vset(err, SW_EXIT_FAILURE, status, fmt, ap);
  va_end(ap);
  return ret;
}

int
sw_error_code(sw_error_t *err, int code, int status, const char *fmt, ...)
{
  va_list ap;
  int ret;

  va_start(ap, fmt);
  ret = error_vset(err, code, status, fmt, ap);
  va_end(ap);
  return ret;
}

int
sw_error_wrap(sw_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *prefix = NULL;
  char *msg;

  if (err == NULL || *err == NULL)
    return -1;
  va_start(ap, fmt);
  if (vasprintf(&prefix, fmt, ap) < 0)
    abort();
  va_end(ap);
  msg = xasprintf("%s: %s", prefix, (*err)->msg);
  free(prefix);
  free((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

void
sw_error_release(sw_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

int
sw_error_report(sw_error_t *err)
{
  int code;

  if (err == NULL || *err == NULL)
    return 0;
  fprintf(stderr, "slipway: error: %s\n", (*err)->msg);
  code = (*err)->code ? (*err)->code : SW_EXIT_FAILURE;
  sw_error_release(err);
  return code;
}
