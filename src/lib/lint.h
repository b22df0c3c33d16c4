/* slipway: Dockerfile build checks, as BuildKit (>= 0.14) has them: `slipway build --check`
 * runs them without building, every build prints them as warnings, and the Dockerfile's
 * `# check=skip=RULE,RULE|all;error=true` directive skips rules or makes a warning fail the
 * build. Rules: StageNameCasing, FromAsCasing, NoEmptyContinuation,
 * ConsistentInstructionCasing, DuplicateStageName, ReservedStageName, JSONArgsRecommended,
 * MaintainerDeprecated, UndefinedArgInFrom, WorkdirRelativePath, UndefinedVar,
 * MultipleInstructionsDisallowed, LegacyKeyValueFormat, RedundantTargetPlatform,
 * SecretsUsedInArgOrEnv, InvalidDefaultArgInFrom, FromPlatformFlagConstDisallowed,
 * CopyIgnoredFile. Pure: the AST, the .dockerignore matcher and (optionally) the env of base
 * images in; warnings out.
 */
#ifndef SW_LINT_H
#define SW_LINT_H

#include "dockerfile.h"
#include "ignore.h"
#include "util.h"

typedef struct {
  const char *rule;
  int line;
  char *msg; /* what is wrong, then "; " and the fix, one line */
} sw_lint_warning_t;

typedef struct {
  sw_lint_warning_t *v;
  size_t n;
  bool error;    /* `# check=error=true`: a warning fails the build */
  char *invalid; /* a check directive that could not be read (message), or NULL */
} sw_lint_t;

typedef struct {
  const sw_ignore_t *ignore; /* the build's .dockerignore (may be NULL) */
  /* The Env of a base image ("K=V" vector, caller frees), or NULL when unknown (then
   * UndefinedVar is not checked in that stage). May be NULL. */
  char **(*image_env)(void *ud, const char *ref);
  void *ud;
} sw_lint_opts_t;

void sw_lint_run(const sw_dockerfile_t *df, const sw_lint_opts_t *o, sw_lint_t *out);
void sw_lint_clear(sw_lint_t *l);
/* "FILE:LINE: RULE: msg" */
char *sw_lint_format(const sw_dockerfile_t *df, const sw_lint_warning_t *w);

#endif
