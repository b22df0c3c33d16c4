/* slipway build --platform A,B: one plan per target platform, solved at once (sw_solve_all:
 * stages with the same keys, those on $BUILDPLATFORM, are built once), each image committed
 * without a name, then one image index of them under the -t names. */
#include "cli.h"

#include "build_private.h"

#include <ctype.h>

#include "../lib/solve.h"

/* "linux/aarch64" → "linux/arm64", as containerd's normaliser for the spellings users write. */
static int
platform_norm(const char *in, char **out, sw_error_t *err)
{
  _cleanup_free_ char *p = xstrdup(in);
  for (char *c = p; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  char *arch = strchr(p, '/');
  if (arch == NULL || arch == p || arch[1] == '\0' || arch[1] == '/')
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--platform `%s`: expected OS/ARCH[/VARIANT], e.g. linux/arm64", in);
  *arch++ = '\0';
  char *variant = strchr(arch, '/');
  if (variant)
    *variant++ = '\0';
  if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0)
    arch = "amd64";
  else if (strcmp(arch, "aarch64") == 0)
    arch = "arm64";
  if (variant && (*variant == '\0' || (strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0)))
    variant = NULL;
  *out = xasprintf("%s/%s%s%s", p, arch, variant ? "/" : "", variant ? variant : "");
  return 0;
}

int
build_platforms_add(const char *spec, char ***platforms, sw_error_t *err)
{
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    _cleanup_free_ char *p = NULL;
    if (platform_norm(f, &p, err) < 0)
      return -1;
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

/* Until each stage's config says the platform it ran for (the emulation work), the image of a
 * target says it here. */
static void
set_config_platform(sw_image_t *img, const char *platform)
{
  _cleanup_free_ char *os = xstrndup(platform, strcspn(platform, "/"));
  const char *arch = platform + strlen(os) + 1;
  const char *variant = strchr(arch, '/');
  _cleanup_free_ char *a = xstrndup(arch, variant ? (size_t)(variant - arch) : strlen(arch));
  json_object_set_new(img->config, "os", json_string(os));
  json_object_set_new(img->config, "architecture", json_string(a));
  if (variant)
    json_object_set_new(img->config, "variant", json_string(variant + 1));
  else
    json_object_del(img->config, "variant");
}

static int
commit_images(sw_store_t *store, sw_image_t **imgs, char *const *platforms, char *const *labels,
              const sw_compression_t *comp, sw_progress_t *p, int id, sw_error_t *err)
{
  for (size_t k = 0; platforms[k]; k++) {
    set_config_platform(imgs[k], platforms[k]);
    build_apply_labels(imgs[k], labels);
    if (sw_image_make_blobs(store, imgs[k], comp, err) < 0 ||
        sw_image_commit(store, imgs[k], NULL, err) < 0)
      return sw_error_wrap(err, "the %s image", platforms[k]);
    sw_progress_log(p, id, "exporting manifest %s (%s) done", imgs[k]->manifest_digest,
                    platforms[k]);
    sw_progress_log(p, id, "exporting config %s done", imgs[k]->config_digest);
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
    rc = sw_plan_new(bo->df, &po, &plans[k], err);
    so[k] = *bo->solve_opts;
    so[k].plan = plans[k];
    sop[k] = &so[k];
  }
  if (rc == 0)
    rc = sw_solve_all(sop, n, imgs, err);
  if (rc == 0) {
    int id = sw_progress_begin(bo->progress, "exporting to image");
    _cleanup_strv_ char **digests = xcalloc(n + 1, sizeof(char *));
    rc = commit_images(bo->store, imgs, bo->platforms, bo->labels, &so[0].comp, bo->progress, id,
                       err);
    for (size_t k = 0; k < n && rc == 0; k++)
      digests[k] = xstrdup(imgs[k]->manifest_digest);
    if (rc == 0)
      rc = sw_index_commit(bo->store, digests, bo->tags, out, err);
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
    sw_plan_free(plans[k]);
    sw_image_free(imgs[k]);
  }
  free(plans);
  free(so);
  free(sop);
  free(imgs);
  return rc;
}
