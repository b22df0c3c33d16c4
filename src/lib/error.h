/* slipway: the error contract (one place, as in crun).
 *
 * A function that can fail takes `sw_error_t *err` last, returns a negative value (or NULL)
 * and fills *err. The caller owns the error and releases it with sw_error_release().
 *
 *   return sw_error (err, errno, "open `%s`", path);        // appends ": strerror(errno)"
 *   return sw_error (err, 0, "%s:%d:%d: unknown flag", ...); // no errno
 *   return sw_error_wrap (err, "building stage `%s`", name); // prefixes context, keeps status
 *
 * `code` is the process exit status the CLI should use (1 by default, 2 for bad input such as
 * a broken Dockerfile or bad flags).
 */
#ifndef SW_ERROR_H
#define SW_ERROR_H

#include <stdarg.h>

typedef struct sw_error_s {
  int status; /* errno, or 0 */
  int code;   /* exit status for the CLI */
  char *msg;
} * sw_error_t;

#define SW_EXIT_FAILURE 1
#define SW_EXIT_USAGE   2

int sw_error(sw_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like sw_error() but also sets the exit code. */
int sw_error_code(sw_error_t *err, int code, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sw_error_wrap(sw_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sw_error_release(sw_error_t *err);
/* Print "slipway: error: MSG" to stderr, release the error and return its exit code. */
int sw_error_report(sw_error_t *err);

#endif
