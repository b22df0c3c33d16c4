/* slipway build --platform A,B: one plan per target platform, solved at once (sw_solve_all:
 * stages with the same keys, those on $BUILDPLATFORM, are built once), each image committed
 * without a name, then one image index of them under the -t names. */
#include "cli.h"

#include "build_private.h"

#include "../lib/platform.h"
#include "../lib/solve.h"

int
build_platforms_add(const char *spec, char ***platforms, sw_error_t *err)
{
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    _cleanup_free_ char *p = NULL;
    if (sw_platform_normalize(f, &p, err) < 0)
      return sw_error_wrap(err, "--platform");
    if (!sw_strv_contains(*platforms, p))
      sw_strv_push(platforms, p);
  }
  return 0;
}

void
build_apply_labels(sw_image_t *img, char *const *labels)
{
  for (size_t i = 0; labels && labels[i]; i++) {
    _cleanup_free_ char *k = xstrndup(labels[i], strcspn(labels[i], "="));
    sw_config_label_set(img->config, k, strchr(labels[i], '=') + 1);
  }
}

/* As a build of one platform commits its image: imported layers get their smaller blob, layers
 * committed without a blob get one with the build's codec. */
static int
commit_images(const build_platforms_opts_t *bo, sw_image_t **imgs, const sw_compression_t *comp,
              int id, sw_error_t *err)
{
  sw_store_t *store = bo->store;
  char *const *platforms = bo->platforms;
  for (size_t k = 0; platforms[k]; k++) {
    build_apply_labels(imgs[k], bo->labels);
    if (sw_reblob_apply(store, bo->reblob, imgs[k], NULL, err) < 0 ||
        sw_image_make_blobs(store, imgs[k], comp, err) < 0 ||
        sw_image_commit(store, imgs[k], NULL, err) < 0)
      return sw_error_wrap(err, "the %s image", platforms[k]);
    sw_progress_log(bo->progress, id, "exporting manifest %s (%s) done", imgs[k]->manifest_digest,
                    platforms[k]);
    sw_progress_log(bo->progress, id, "exporting config %s done", imgs[k]->config_digest);
  }
  return 0;
}

int
build_platforms(const build_platforms_opts_t *bo, sw_index_t **out, sw_error_t *err)
{
  size_t n = sw_strv_len(bo->platforms);
  sw_plan_t **plans = xcalloc(n, sizeof(*plans));
  sw_solve_opts_t *so = xcalloc(n, sizeof(*so));
  const sw_solve_opts_t **sop = xcalloc(n, sizeof(*sop));
  sw_image_t **imgs = xcalloc(n, sizeof(*imgs));
  int rc = 0;
  for (size_t k = 0; k < n && rc == 0; k++) {
    sw_plan_opts_t po = *bo->plan_opts;
    po.platform = bo->platforms[k];
    if (k == 0)
      plans[k] = bo->first; /* the caller's: its used build args are what it warns about */
    else
      rc = sw_plan_new(bo->df, &po, &plans[k], err);
    so[k] = *bo->solve_opts;
    so[k].plan = plans[k];
    sop[k] = &so[k];
  }
  if (rc == 0 && bo->pull)
    rc = build_pull_bases(bo->store, plans, n, bo->pull, bo->progress, err);
  if (rc == 0)
    rc = sw_solve_all(sop, n, imgs, err);
  if (rc == 0) {
    int id = sw_progress_begin(bo->progress, "exporting to image");
    _cleanup_strv_ char **digests = xcalloc(n + 1, sizeof(char *));
    rc = commit_images(bo, imgs, &so[0].comp, id, err);
    for (size_t k = 0; k < n && rc == 0; k++)
      digests[k] = xstrdup(imgs[k]->manifest_digest);
    if (rc == 0)
      rc = sw_index_commit_platforms(bo->store, digests, bo->platforms, bo->tags, out, err);
    if (rc == 0) {
      sw_progress_log(bo->progress, id, "exporting manifest list %s done", (*out)->digest);
      for (size_t i = 0; (*out)->names[i]; i++)
        sw_progress_log(bo->progress, id, "naming to %s done", (*out)->names[i]);
      sw_progress_done(bo->progress, id);
    } else {
      sw_progress_error(bo->progress, id, (*err)->msg);
    }
  }
  for (size_t k = 0; k < n; k++) {
    if (k > 0)
      sw_plan_free(plans[k]);
    sw_image_free(imgs[k]);
  }
  free(plans);
  free(so);
  free(sop);
  free(imgs);
  return rc;
}
