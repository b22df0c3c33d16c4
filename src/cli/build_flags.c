/* slipway build: the `docker build`/buildx flags that act around the build rather than in it:
 * --pull (the FROM and --from images pulled again before the build), --push and
 * -o type=image|registry,name=…,push=true (the image pushed under its names once stored), and
 * --metadata-file (buildx's JSON about the image made). */
#include "build_private.h"

#include "../lib/image.h"
#include "../lib/ignore.h"
#include "../lib/lint.h"

#include <jansson.h>

/* ---- --shm-size: Docker's RAMInBytes (units are binary: 64m = 64 MiB) ---- */

int
build_ram_size(const char *s, uint64_t *out, sw_error_t *err)
{
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  uint64_t mult = 1;
  if (errno || end == s || v <= 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--shm-size `%s`: give a size (64m, 1g)", s);
  switch (*end | 0x20) {
  case 'k':
    mult = 1ull << 10;
    break;
  case 'm':
    mult = 1ull << 20;
    break;
  case 'g':
    mult = 1ull << 30;
    break;
  case 't':
    mult = 1ull << 40;
    break;
  }
  if (mult > 1)
    end++;
  if ((*end | 0x20) == 'b')
    end++;
  if (*end)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--shm-size `%s`: give a size (64m, 1g)", s);
  *out = (uint64_t)(v * (double)mult);
  return 0;
}

/* ---- --pull ---- */

/* "REF PLATFORM" once in *pairs (REF may be NULL: none). */
static void
add_ref(char ***pairs, const char *ref, const char *platform)
{
  /* An image ID or manifest digest (an oci-layout:// context) is local: nothing to pull. */
  if (ref == NULL || sw_str_has_prefix(ref, "sha256:"))
    return;
  _cleanup_free_ char *pair = xasprintf("%s %s", ref, platform);
  if (!sw_strv_contains(*pairs, pair))
    sw_strv_push(pairs, pair);
}

int
build_pull_bases(sw_store_t *store, sw_plan_t *const *plans, size_t n, const sw_registry_opts_t *ro,
                 sw_progress_t *p, sw_error_t *err)
{
  _cleanup_strv_ char **pairs = xcalloc(1, sizeof(char *));
  for (size_t k = 0; k < n; k++)
    for (size_t i = 0; i < plans[k]->n_stages; i++) {
      const sw_stage_t *s = &plans[k]->stages[i];
      if (!s->needed)
        continue;
      if (!s->scratch && s->base_stage < 0)
        add_ref(&pairs, s->base, s->platform);
      for (size_t j = 0; j < s->n_steps; j++) {
        add_ref(&pairs, s->steps[j].from_image, s->platform);
        for (size_t m = 0; m < s->steps[j].n_mounts; m++)
          add_ref(&pairs, s->steps[j].mount_images[m], s->platform);
      }
    }
  for (size_t i = 0; pairs[i]; i++) {
    _cleanup_free_ char *ref = xstrndup(pairs[i], strcspn(pairs[i], " "));
    const char *platform = strchr(pairs[i], ' ') + 1;
    sw_registry_opts_t o = *ro;
    o.platform = platform;
    o.keep_names = true; /* the name is given below, beside the other platforms' images */
    _cleanup_free_ char *name = n > 1 || strcmp(platform, plans[0]->build_platform) != 0
                                    ? xasprintf("pulling %s for %s (--pull)", ref, platform)
                                    : xasprintf("pulling %s (--pull)", ref);
    int id = sw_progress_begin(p, name);
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    if (sw_registry_pull(store, ref, &o, &img, err) < 0) {
      sw_error_wrap(err, "--pull: %s", ref);
      sw_progress_error(p, id, (*err)->msg);
      return -1;
    }
    if (img && sw_index_name_platform(store, ref, img->config_digest, platform, err) < 0) {
      sw_progress_error(p, id, (*err)->msg);
      return -1;
    }
    if (img && img->manifest_digest)
      sw_progress_log(p, id, "%s is %s", ref, img->manifest_digest);
    sw_progress_done(p, id);
  }
  return 0;
}

/* ---- -o type=image|registry ---- */

int
build_output_image(const char *spec, char ***tags, bool *push, sw_error_t *err)
{
  bool registry = strstr(spec, "type=registry") != NULL;
  if (strstr(spec, "type=image") == NULL && !registry)
    return 0; /* oci, docker, tar: export_output's */
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;
  _cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (sw_str_has_prefix(f, "name="))
      sw_strv_push(&names, f + 5);
    else if (strcmp(f, "push=true") == 0)
      *push = true;
    else if (!sw_str_has_prefix(f, "type=") && !sw_str_has_prefix(f, "push=") &&
             !sw_str_has_prefix(f, "oci-mediatypes=") && !sw_str_has_prefix(f, "compression") &&
             !sw_str_has_prefix(f, "force-compression=") && !sw_str_has_prefix(f, "unpack=") &&
             !sw_str_has_prefix(f, "store="))
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "-o %s: unknown field `%s` (type=image,name=NAME[,push=true])", spec, f);
  }
  *push = *push || registry;
  for (size_t i = 0; names[i]; i++) {
    _cleanup_free_ char *n = sw_ref_normalize(names[i], err);
    if (n == NULL)
      return sw_error_wrap(err, "-o %s", spec);
    sw_strv_push(tags, names[i]);
  }
  if (*push && (*tags == NULL || (*tags)[0] == NULL))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "-o %s: push=true needs name=REGISTRY/REPO:TAG",
                         spec);
  return 1;
}

/* ---- --push ---- */

int
build_push(sw_store_t *store, const char *src, char *const *tags, const sw_registry_opts_t *ro,
           sw_progress_t *p, sw_error_t *err)
{
  if (tags == NULL || tags[0] == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "--push: name the image with -t REGISTRY/REPO:TAG to push it");
  for (size_t i = 0; tags[i]; i++) {
    _cleanup_free_ char *name = xasprintf("pushing %s", tags[i]);
    int id = sw_progress_begin(p, name);
    _cleanup_free_ char *digest = NULL;
    if (sw_registry_push(store, src, tags[i], ro, &digest, err) < 0) {
      sw_error_wrap(err, "--push %s (the image %s is stored)", tags[i], src);
      sw_progress_error(p, id, (*err)->msg);
      return -1;
    }
    sw_progress_log(p, id, "pushed %s@%s", tags[i], digest);
    sw_progress_done(p, id);
  }
  return 0;
}

/* ---- --metadata-file ---- */

int
build_write_metadata(sw_store_t *store, const sw_image_t *img, char *const *tags, const char *path,
                     sw_error_t *err)
{
  _cleanup_free_ char *manifest = NULL;
  size_t len = 0;
  if (sw_blob_read(store, img->manifest_digest, 0, &manifest, &len, err) < 0)
    return sw_error_wrap(err, "--metadata-file");
  json_t *m = json_loadb(manifest, len, 0, NULL);
  const char *mt = json_string_value(json_object_get(m, "mediaType"));
  json_t *desc = json_pack("{s:s, s:s, s:I}", "mediaType", mt ? mt : SW_MT_OCI_MANIFEST, "digest",
                           img->manifest_digest, "size", (json_int_t)len);
  json_decref(m);
  json_t *j =
      json_pack("{s:s, s:s, s:o}", "containerimage.config.digest", img->config_digest,
                "containerimage.digest", img->manifest_digest, "containerimage.descriptor", desc);
  sw_buf_t names = {0};
  for (size_t i = 0; tags && tags[i]; i++) {
    _cleanup_free_ char *n = sw_ref_normalize(tags[i], NULL);
    sw_buf_printf(&names, "%s%s", i ? "," : "", n ? n : tags[i]);
  }
  if (names.len)
    json_object_set_new(j, "image.name", json_string(names.data));
  sw_buf_free(&names);
  _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(j);
  return sw_write_file_atomic(path, text, strlen(text), 0644, err);
}

/* ---- build checks (--check, and warnings on every build) ---- */

/* A base image's Env from the store (no pull: unknown images give NULL). */
static char **
store_image_env(void *ud, const char *ref)
{
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  sw_error_t e = NULL;
  if (sw_image_get(ud, ref, &img, &e) != 1) {
    sw_error_release(&e);
    return NULL;
  }
  json_t *env = json_object_get(sw_config_container(img->config), "Env");
  char **v = xcalloc(1, sizeof(char *));
  size_t i;
  json_t *s;
  json_array_foreach(env, i, s) if (json_is_string(s)) sw_strv_push(&v, json_string_value(s));
  return v;
}

int
build_lint(sw_store_t *store, const sw_dockerfile_t *df, const char *context, const char *df_path,
           bool check_only, sw_error_t *err)
{
  _cleanup_(sw_ignore_freep) sw_ignore_t *ig = NULL;
  sw_error_t e = NULL;
  if (sw_ignore_load_for_build(context, df_path, &ig, &e) < 0)
    sw_error_release(&e); /* the build reports a broken .dockerignore itself */
  sw_lint_opts_t lo = {.ignore = ig, .image_env = store ? store_image_env : NULL, .ud = store};
  sw_lint_t l;
  sw_lint_run(df, &lo, &l);
  FILE *f = check_only ? stdout : stderr;
  if (l.invalid)
    fprintf(f, "%s: %s\n", df->path, l.invalid);
  for (size_t i = 0; i < l.n; i++) {
    _cleanup_free_ char *line = sw_lint_format(df, &l.v[i]);
    fprintf(f, check_only ? "%s\n" : "slipway: warning: %s\n", line);
  }
  int rc = 0;
  if (check_only) {
    if (l.n)
      printf("Check complete, %zu warning%s found.\n", l.n, l.n == 1 ? "" : "s");
    else
      printf("Check complete, no warnings found.\n");
    rc = l.n ? 1 : 0;
  } else if (l.error && l.n) {
    rc = sw_error(err, 0,
                  "%s: %zu build check warning%s and `# check=error=true`: fix them, or skip the "
                  "rules with `# check=skip=RULE`",
                  df->path, l.n, l.n == 1 ? "" : "s");
  }
  sw_lint_clear(&l);
  return rc;
}
