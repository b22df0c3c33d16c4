/* slipway: word expansion as BuildKit's shell lexer (frontend/dockerfile/shell) does it.
 *
 * `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?msg}`, `${V?msg}`, `${V#p}`,
 * `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`; single quotes (literal), double
 * quotes (only `$`, `"` and the escape character are special inside), the escape character
 * (`\` or `` ` `` per the Dockerfile's escape directive); splitting into words where an
 * instruction takes several (splitting happens on the expanded text of `$` substitutions and
 * unquoted text, never inside quotes). No command substitution, no globbing.
 *
 * The environment is a NULL-terminated vector of "KEY=VALUE" strings; a bare "KEY" entry means
 * set and empty; an absent key is unset (which `${V-w}` and `${V:-w}` tell apart). When a key
 * appears twice the last entry wins.
 *
 * Errors (bad substitution, unterminated quote, `${V?msg}`) have code SW_EXIT_FAILURE and a
 * message like BuildKit's: `failed to process "${x": syntax error: missing '}'`; the engine
 * prefixes it with the Dockerfile location (sw_dockerfile_error).
 */
#ifndef SW_SHELLWORD_H
#define SW_SHELLWORD_H

#include "error.h"

#include <stdbool.h>

/* No expansion may produce more than this (nested `${V//p/r}` can grow exponentially). */
#define SW_SHLEX_MAX_RESULT (1 << 20)

/* BuildKit Lex options, for the few places where the engine needs them. */
enum {
  SW_SHLEX_RAW_QUOTES = 1 << 0,  /* keep quote characters in the result */
  SW_SHLEX_RAW_ESCAPES = 1 << 1, /* keep escape characters in the result */
  SW_SHLEX_SKIP_UNSET = 1 << 2,  /* leave references to unset variables as written */
  SW_SHLEX_SKIP_QUOTES = 1 << 3, /* quotes are ordinary characters (heredoc bodies) */
};

typedef struct {
  char escape;    /* '\\' or '`'; 0 means '\\' */
  unsigned flags; /* SW_SHLEX_* */
  /* Out, optional: when `track` is set, the names of variables the word referenced that were
   * set in env are appended (each once); the caller frees with sw_strv_free. BuildKit uses
   * this to know which build args a step depends on. */
  bool track;
  char **matched;
} sw_shlex_t;

/* Expand WORD into one string (quotes removed, spaces kept). LX may be NULL (defaults). */
int sw_shlex_expand(sw_shlex_t *lx, const char *word, char *const *env, char **out,
                    sw_error_t *err);
/* Expand WORD and split it into words; returns a NULL-terminated vector (possibly empty). */
int sw_shlex_expand_words(sw_shlex_t *lx, const char *word, char *const *env, char ***out,
                          sw_error_t *err);

/* Convenience for the common case: default options with the given escape character. */
int sw_word_expand(const char *word, char *const *env, char escape, char **out, sw_error_t *err);
int sw_word_expand_words(const char *word, char *const *env, char escape, char ***out,
                         sw_error_t *err);

#endif
