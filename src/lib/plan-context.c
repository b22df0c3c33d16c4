/* slipway: named build contexts (`build --build-context NAME=…`), as buildx has them: which
 * named context a FROM base, a stage name or a `--from` value refers to. */
#include "plan.h"

#include "image.h"

#include <strings.h>

/* Do a name as written in the Dockerfile and a context name denote the same thing? Equal
 * ignoring case (stage names), or the same image reference once normalised (`alpine` and
 * `docker.io/library/alpine:latest`), as BuildKit matches a FROM base to a context. */
static bool
same_name(const char *a, const char *b)
{
  if (strcasecmp(a, b) == 0)
    return true;
  _cleanup_free_ char *na = sw_ref_normalize(a, NULL);
  _cleanup_free_ char *nb = na ? sw_ref_normalize(b, NULL) : NULL;
  return na && nb && strcmp(na, nb) == 0;
}

const char *
sw_plan_named_context(const sw_plan_t *p, const char *name, sw_named_kind_t *kind)
{
  for (size_t i = 0; p->contexts && p->contexts[i]; i++) {
    const char *c = p->contexts[i];
    const char *eq = strchr(c, '=');
    _cleanup_free_ char *k = xstrndup(c, (size_t)(eq - c));
    if (!same_name(name, k))
      continue;
    if (sw_str_has_prefix(eq + 1, "image:")) {
      *kind = SW_NAMED_IMAGE;
      return eq + 1 + 6;
    }
    *kind = SW_NAMED_DIR;
    return eq + 1 + 4; /* "dir:" */
  }
  return NULL;
}
