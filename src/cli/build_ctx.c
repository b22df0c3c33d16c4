/* slipway build --build-context NAME=VALUE (buildx's named contexts): a local directory
 * (copied from with COPY --from=NAME), docker-image://REF (FROM NAME, COPY --from=NAME, a stage
 * of that name replaced), oci-layout://DIR[@sha256:…] (the image in an OCI layout, loaded into
 * the store first). The plan decides what each name replaces (plan-context.c). */
#include "build_private.h"

#include "../lib/image.h"
#include "../lib/image_archive.h"

#include <limits.h>
#include <sys/stat.h>

void
build_named_clear(build_named_t *n)
{
  for (size_t i = 0; n->paths && n->paths[i]; i++)
    sw_context_free(n->ctxs[i]);
  free(n->ctxs);
  sw_strv_free(n->paths);
  sw_strv_free(n->plan);
  memset(n, 0, sizeof(*n));
}

/* The image of an OCI layout: the only one, or the one whose manifest digest is `want`. */
static int
load_layout(sw_store_t *store, const char *spec, const char *value, char **ref, sw_error_t *err)
{
  _cleanup_free_ char *dir = xstrdup(value);
  char *at = strrchr(dir, '@');
  const char *want = NULL;
  if (at && sw_str_has_prefix(at + 1, "sha256:")) {
    *at = '\0';
    want = at + 1;
  }
  sw_image_t **imgs = NULL;
  sw_index_t **idxs = NULL;
  size_t n = 0, n_idx = 0;
  if (sw_archive_load(store, dir, &imgs, &n, &idxs, &n_idx, err) < 0)
    return sw_error_wrap(err, "--build-context %s: OCI layout `%s`", spec, dir);
  /* An index stands for its host platform's image (as a FROM of its name would), or for the
   * entry that @DIGEST names. */
  for (size_t i = 0; i < n_idx; i++) {
    sw_error_t e = NULL;
    const sw_index_entry_t *pick = NULL;
    sw_image_t *img = NULL;
    if (!want || strcmp(want, idxs[i]->digest) == 0)
      pick = sw_index_entry_for(idxs[i], NULL, &e);
    for (size_t k = 0; want && !pick && k < idxs[i]->n_entries; k++)
      if (strcmp(want, idxs[i]->entries[k].manifest_digest) == 0)
        pick = &idxs[i]->entries[k];
    if (pick && sw_image_get(store, pick->manifest_digest, &img, &e) == 1) {
      imgs = xrealloc(imgs, (n + 1) * sizeof(*imgs));
      imgs[n++] = img;
      if (want)
        want = img->manifest_digest;
    }
    sw_error_release(&e);
  }
  sw_index_list_free(idxs, n_idx);
  int rc = -1;
  for (size_t i = 0; i < n && rc < 0; i++)
    if ((want && strcmp(imgs[i]->manifest_digest, want) == 0) || (!want && n == 1)) {
      *ref = xstrdup(imgs[i]->manifest_digest);
      rc = 0;
    }
  if (rc < 0 && want)
    sw_error_code(err, SW_EXIT_USAGE, 0, "--build-context %s: no image %s in the OCI layout `%s`",
                  spec, want, dir);
  else if (rc < 0)
    sw_error_code(err, SW_EXIT_USAGE, 0,
                  "--build-context %s: the OCI layout `%s` holds %zu images: name one with "
                  "oci-layout://DIR@sha256:DIGEST",
                  spec, dir, n);
  for (size_t i = 0; i < n; i++)
    sw_image_free(imgs[i]);
  free(imgs);
  return rc;
}

static int
open_dir(build_named_t *out, const char *spec, const char *path, const char *ctx_cache,
         char **abs_out, sw_error_t *err)
{
  char abs[PATH_MAX];
  struct stat st;
  if (realpath(path, abs) == NULL || stat(abs, &st) < 0)
    return sw_error_code(err, SW_EXIT_USAGE, errno, "--build-context %s: `%s`", spec, path);
  if (!S_ISDIR(st.st_mode))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--build-context %s: `%s` is not a directory (give DIR, "
                         "docker-image://REF or oci-layout://DIR)",
                         spec, path);
  size_t n = sw_strv_len(out->paths);
  sw_context_t *c = NULL;
  if (sw_context_open(abs, NULL, ctx_cache, &c, err) < 0)
    return sw_error_wrap(err, "--build-context %s", spec);
  out->ctxs = xrealloc(out->ctxs, (n + 1) * sizeof(*out->ctxs));
  out->ctxs[n] = c;
  sw_strv_push(&out->paths, abs);
  *abs_out = xstrdup(abs);
  return 0;
}

static int
resolve_one(sw_store_t *store, const char *spec, const char *ctx_cache, build_named_t *out,
            sw_error_t *err)
{
  const char *eq = strchr(spec, '=');
  if (eq == NULL || eq == spec || eq[1] == '\0')
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--build-context %s: give NAME=DIR, NAME=docker-image://REF or "
                         "NAME=oci-layout://DIR",
                         spec);
  _cleanup_free_ char *name = xstrndup(spec, (size_t)(eq - spec));
  const char *v = eq + 1;
  _cleanup_free_ char *ref = NULL, *dir = NULL;
  if (sw_str_has_prefix(v, "docker-image://")) {
    ref = sw_ref_normalize(v + 15, err);
    if (ref == NULL)
      return sw_error_wrap(err, "--build-context %s", spec);
  } else if (sw_str_has_prefix(v, "oci-layout://")) {
    if (load_layout(store, spec, v + 13, &ref, err) < 0)
      return -1;
  } else if (strstr(v, "://") || sw_str_has_prefix(v, "git@") || sw_str_has_prefix(v, "target:")) {
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--build-context %s: slipway takes a directory, docker-image:// or "
                         "oci-layout:// (not git or URL contexts)",
                         spec);
  } else if (open_dir(out, spec, v, ctx_cache, &dir, err) < 0) {
    return -1;
  }
  sw_strv_push_take(&out->plan,
                    ref ? xasprintf("%s=image:%s", name, ref) : xasprintf("%s=dir:%s", name, dir));
  return 0;
}

int
build_named_resolve(sw_store_t *store, char *const *specs, const char *ctx_cache,
                    build_named_t *out, sw_error_t *err)
{
  memset(out, 0, sizeof(*out));
  out->plan = xcalloc(1, sizeof(char *));
  out->paths = xcalloc(1, sizeof(char *));
  for (size_t i = 0; specs && specs[i]; i++)
    if (resolve_one(store, specs[i], ctx_cache, out, err) < 0) {
      build_named_clear(out);
      return -1;
    }
  return 0;
}
