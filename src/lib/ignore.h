/* slipway: `.dockerignore` as Docker reads and matches it (moby/patternmatcher and BuildKit's
 * dockerignore reader).
 *
 * Reading: a UTF-8 BOM is dropped, each line is trimmed, lines starting with `#` and empty lines
 * are skipped, a leading `!` makes an exception, the pattern is cleaned like Go's
 * filepath.Clean (so `./a`, `a/`, `a//b`, `a/../b` normalise) and a leading `/` is dropped.
 * Patterns: Go filepath.Match syntax (`*`, `?`, `[a-z]`, `[^a]`, `\` escapes; `*` and `?` never
 * match `/`) plus `**` for any number of directories. A syntax error is reported at load time.
 *
 * Matching a path (relative to the context root, `/`-separated): the patterns are tried in
 * order, the last one that matches the path or one of its parent directories wins; an
 * exception re-includes. So `a` excludes `a/b/c`, and `!a/b/keep` brings one file back.
 *
 * Matching costs O(path length x pattern length) per pattern: no input can make it blow up.
 */
#ifndef SW_IGNORE_H
#define SW_IGNORE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sw_ignore_s sw_ignore_t;

/* Parse the text of a .dockerignore. SOURCE names it in messages. An empty text gives an empty
 * matcher (nothing excluded). */
int sw_ignore_parse(const char *source, const char *text, size_t len, sw_ignore_t **out,
                    sw_error_t *err);
/* Load from a file; a missing file gives an empty matcher. */
int sw_ignore_load(const char *path, sw_ignore_t **out, sw_error_t *err);
/* The ignore file of a build: `DOCKERFILE.dockerignore` beside the Dockerfile when it exists
 * (e.g. `dev.Dockerfile.dockerignore`), else CONTEXT/.dockerignore, else empty. DOCKERFILE may
 * be NULL (then only the context's file is looked at). */
int sw_ignore_load_for_build(const char *context_dir, const char *dockerfile, sw_ignore_t **out,
                             sw_error_t *err);
void sw_ignore_free(sw_ignore_t *ig);
static inline void
sw_ignore_freep(sw_ignore_t **ig)
{
  sw_ignore_free(*ig);
}

/* Is PATH (relative to the context root, '/'-separated; "./" and leading "/" are cleaned)
 * excluded from the context? */
bool sw_ignore_match(const sw_ignore_t *ig, const char *path);
/* For a context walker that found directory DIR excluded: could a path below DIR still be
 * re-included by an exception? When false the walker may skip DIR entirely; when true it must
 * descend and call sw_ignore_match() on each entry. Conservative: never false when an
 * exception could apply below DIR. */
bool sw_ignore_may_include_below(const sw_ignore_t *ig, const char *dir);
/* Number of patterns, and whether any is an exception. */
size_t sw_ignore_count(const sw_ignore_t *ig);
bool sw_ignore_has_exceptions(const sw_ignore_t *ig);

#endif
