/* slipway: `pull`: manifest (or index → the platform's manifest), config, then the layers.
 *
 * Two phases so that a bad blob leaves nothing behind: first every missing layer blob is
 * downloaded in parallel into ROOT/tmp, hashed while it streams and checked against its digest
 * (a mismatch aborts the pull, removes every temp file and names the blob); only when all are
 * good are they staged (sw_layer_stage: unpacked under ROOT/tmp with the diffID checked,
 * refused if the tar tries to leave its root), and only when every layer is staged are they
 * committed, then the config, the manifest and the image's name: a refused layer leaves nothing
 * stored. */
#include "registry-private.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/stat.h>

typedef struct {
  sw_store_t *s;
  sw_reg_t *r;
  const char *repo;
  char *scope;
  const sw_rmanifest_t *m;
  char **diff_ids;
  char **tmp; /* per layer: downloaded file in ROOT/tmp, or NULL if already in the store */
  sw_layer_staged_t *staged;
  sw_bars_t *prog;
  size_t *line;
  bool *dup;    /* per layer: staged by an earlier image of this pull (same digest and diffID) */
  char ***seen; /* "DIGEST DIFFID" of the layers this pull stages; NULL: one image */
} pull_t;

/* ---- small downloads (manifests, configs): buffered, digest-checked ---- */

static int
check_digest(const char *what, const char *url, const char *want, const char *data, size_t len,
             sw_error_t *err)
{
  _cleanup_free_ char *got = sw_sha256_digest(data, len);
  if (strcmp(got, want) != 0)
    return sw_error(err, 0,
                    "%s %s from %s: digest mismatch (received %s); the registry sent corrupt "
                    "data, nothing was stored",
                    what, want, url, got);
  return 0;
}

/* GET a manifest by tag or digest. *digest_out is the digest of the bytes received; when the
 * reference or the registry names one, they must agree. */
int
sw_reg_get_manifest(sw_reg_t *r, const char *repo, const char *scope, const char *reference,
                    char **body, size_t *len, char **ctype, char **digest_out, sw_error_t *err)
{
  _cleanup_free_ char *path = xasprintf("/v2/%s/manifests/%s", repo, reference);
  const char *hdrs[] = {"Accept: " SW_MANIFEST_ACCEPT, NULL};
  sw_http_req_t req = {.method = "GET",
                       .url = path,
                       .scope = scope,
                       .headers = hdrs,
                       .body_fd = -1,
                       .max_body = SW_MANIFEST_MAX,
                       .follow = true};
  sw_http_resp_t resp = {0};

  if (sw_reg_do(r, &req, &resp, err) < 0)
    return -1;
  if (resp.status != 200) {
    sw_reg_status_error(r, "GET", path, &resp, err);
    sw_http_resp_clear(&resp);
    return -1;
  }
  char *got = sw_sha256_digest(resp.body.data, resp.body.len);
  const char *want = sw_digest_valid(reference)            ? reference
                     : sw_digest_valid(resp.docker_digest) ? resp.docker_digest
                                                           : NULL;
  if (want && strcmp(want, got) != 0) {
    _cleanup_free_ char *url = sw_reg_url(r, path);
    sw_error(err, 0, "manifest %s from %s: digest mismatch (received %s); nothing was stored", want,
             url, got);
    free(got);
    sw_http_resp_clear(&resp);
    return -1;
  }
  *len = resp.body.len;
  *body = sw_buf_steal(&resp.body);
  *ctype = steal_ptr(&resp.content_type);
  *digest_out = got;
  sw_http_resp_clear(&resp);
  return 0;
}

int
sw_reg_get_blob_small(sw_reg_t *r, const char *repo, const char *scope, const char *digest,
                      char **body, size_t *len, sw_error_t *err)
{
  _cleanup_free_ char *path = xasprintf("/v2/%s/blobs/%s", repo, digest);
  sw_http_req_t req = {.method = "GET",
                       .url = path,
                       .scope = scope,
                       .body_fd = -1,
                       .max_body = 16u << 20,
                       .follow = true};
  sw_http_resp_t resp = {0};

  if (sw_reg_do(r, &req, &resp, err) < 0)
    return -1;
  if (resp.status != 200) {
    sw_reg_status_error(r, "GET", path, &resp, err);
    sw_http_resp_clear(&resp);
    return -1;
  }
  _cleanup_free_ char *url = sw_reg_url(r, path);
  if (check_digest("blob", url, digest, resp.body.data, resp.body.len, err) < 0) {
    sw_http_resp_clear(&resp);
    return -1;
  }
  *len = resp.body.len;
  *body = sw_buf_steal(&resp.body);
  sw_http_resp_clear(&resp);
  return 0;
}

/* ---- layer blobs: streamed to a temp file, hashed on the way ---- */

typedef struct {
  int fd;
  sw_sha256_t *h;
  uint64_t written, limit;
  int write_errno; /* why the file could not be written (ENOSPC …) */
  bool write_failed, too_long;
} blob_sink_t;

static size_t
blob_sink_write(const void *p, size_t n, void *ud)
{
  blob_sink_t *b = ud;
  if (b->written + n > b->limit) {
    b->too_long = true; /* more than the descriptor's size: stop reading */
    return 0;
  }
  if (sw_write_all(b->fd, p, n) < 0) {
    b->write_errno = errno;
    b->write_failed = true;
    return 0;
  }
  sw_sha256_update(b->h, p, n);
  b->written += n;
  return n;
}

static void
blob_sink_restart(void *ud)
{
  blob_sink_t *b = ud;
  sw_sha256_free(b->h);
  b->h = sw_sha256_new();
  b->written = 0;
  if (ftruncate(b->fd, 0) < 0 || lseek(b->fd, 0, SEEK_SET) < 0) {
    b->write_errno = errno;
    b->write_failed = true;
  }
}

int
sw_reg_download_blob(sw_reg_t *r, sw_store_t *s, const char *repo, const char *scope,
                     const sw_desc_t *d, sw_bars_t *prog, size_t line, char **tmp_out,
                     sw_error_t *err)
{
  _cleanup_free_ char *path = xasprintf("/v2/%s/blobs/%s", repo, d->digest);
  _cleanup_free_ char *url = sw_reg_url(r, path);
  _cleanup_free_ char *tmp = NULL;
  sw_bars_line_t pl = {prog, line};
  blob_sink_t b = {.h = sw_sha256_new(), .limit = (uint64_t)d->size};
  sw_http_resp_t resp = {0};
  char got[SW_SHA256_HEX_LEN + 1];
  int ret = -1;

  b.fd = sw_store_mkstemp(s, "pull-", &tmp, err);
  if (b.fd < 0) {
    sw_sha256_free(b.h);
    return -1;
  }
  sw_http_req_t req = {.method = "GET",
                       .url = path,
                       .scope = scope,
                       .body_fd = -1,
                       .sink = blob_sink_write,
                       .restart = blob_sink_restart,
                       .sink_ud = &b,
                       .follow = true,
                       .progress = prog ? sw_bars_cb : NULL,
                       .progress_ud = &pl,
                       .xfer_size = (uint64_t)d->size};
  int rc = sw_reg_do(r, &req, &resp, err);
  if (b.write_failed) {
    sw_error(err, b.write_errno, "blob %s from %s: write `%s`", d->digest, url, tmp);
    sw_store_error_full(sw_store_root(s), err);
    goto out;
  }
  if (b.too_long) {
    sw_error(err, 0,
             "blob %s from %s: size differs: the manifest says %" PRId64
             " bytes, the registry sent more; nothing was stored",
             d->digest, url, d->size);
    goto out;
  }
  if (rc < 0)
    goto out;
  if (resp.status != 200) {
    sw_reg_status_error(r, "GET", path, &resp, err);
    goto out;
  }
  sw_sha256_final_hex(b.h, got);
  b.h = NULL;
  if (b.written != (uint64_t)d->size) {
    sw_error(err, 0,
             "blob %s from %s: size differs: the manifest says %" PRId64
             " bytes, the registry sent %" PRIu64 " (sha256:%s%s); nothing was stored",
             d->digest, url, d->size, b.written, got,
             strcmp(got, d->digest + 7) == 0 ? ", the right digest: the manifest is wrong" : "");
    goto out;
  }
  if (strcmp(got, d->digest + 7) != 0) {
    sw_error(err, 0,
             "blob %s from %s: digest mismatch (received sha256:%s, %" PRIu64
             " bytes); the registry sent corrupt data, nothing was stored",
             d->digest, url, got, b.written);
    goto out;
  }
  *tmp_out = steal_ptr(&tmp);
  ret = 0;
out:
  sw_sha256_free(b.h);
  close(b.fd);
  if (tmp)
    unlink(tmp);
  sw_http_resp_clear(&resp);
  return ret;
}

static int
download_layer(pull_t *p, size_t i, sw_error_t *err)
{
  if (sw_reg_download_blob(p->r, p->s, p->repo, p->scope, &p->m->layers[i], p->prog, p->line[i],
                           &p->tmp[i], err) < 0)
    return -1;
  sw_bars_done(p->prog, p->line[i], "Download complete");
  return 0;
}

static int
download_job(void *ctx, size_t i, sw_error_t *err)
{
  pull_t *p = ctx;
  if (p->line[i] == (size_t)-1)
    return 0;
  return download_layer(p, i, err);
}

/* Stage a downloaded blob (unpacked under ROOT/tmp in the same read; the download itself
 * becomes the blob at the commit, renamed, not copied): a layer that tries to leave its root is
 * refused by the pull, not by the first build that uses it. Layers that were already in the
 * store are unpacked too if they are not yet. */
static int
stage_job(void *ctx, size_t i, sw_error_t *err)
{
  pull_t *p = ctx;
  const sw_desc_t *d = &p->m->layers[i];
  if (p->dup[i])
    return 0;
  _cleanup_close_ int fd = p->tmp[i] ? open(p->tmp[i], O_RDONLY | O_CLOEXEC) : -1;

  if (p->tmp[i] && fd < 0)
    return sw_error(err, errno, "open `%s`", p->tmp[i]);
  if (sw_layer_stage(p->s, fd, p->tmp[i], d->media_type, d->digest, p->diff_ids[i], &p->staged[i],
                     err) < 0)
    return sw_error_wrap(err, "layer %s of %s/%s", d->digest, sw_reg_host(p->r), p->repo);
  return 0;
}

static int
commit_layers(pull_t *p, sw_error_t *err)
{
  for (size_t i = 0; i < p->m->n_layers; i++) {
    const sw_desc_t *d = &p->m->layers[i];
    if (p->dup[i])
      continue;
    if (sw_layer_stage_commit(p->s, &p->staged[i], err) < 0)
      return sw_error_wrap(err, "layer %s of %s/%s", d->digest, sw_reg_host(p->r), p->repo);
    if (p->line[i] != (size_t)-1)
      sw_bars_done(p->prog, p->line[i], "Pull complete");
  }
  return 0;
}

/* ---- the pull ---- */

static void
pull_cleanup(pull_t *p)
{
  for (size_t i = 0; p->tmp && i < p->m->n_layers; i++)
    if (p->tmp[i]) {
      unlink(p->tmp[i]); /* ENOENT once adopted */
      free(p->tmp[i]);
    }
  for (size_t i = 0; p->staged && i < p->m->n_layers; i++)
    sw_layer_staged_clear(&p->staged[i]);
  free(p->staged);
  free(p->tmp);
  free(p->line);
  free(p->dup);
}

/* Download the missing layers and stage them all (nothing visible yet: commit_layers). */
static int
stage_layers(pull_t *p, unsigned jobs, sw_error_t *err)
{
  size_t n = p->m->n_layers;
  p->tmp = xcalloc(n ? n : 1, sizeof(char *));
  p->line = xcalloc(n ? n : 1, sizeof(size_t));
  p->staged = xcalloc(n ? n : 1, sizeof(*p->staged));
  p->dup = xcalloc(n ? n : 1, sizeof(bool));
  for (size_t i = 0; i < n; i++) {
    const sw_desc_t *d = &p->m->layers[i];
    sw_layer_desc_t have;
    char label[32];
    snprintf(label, sizeof(label), "%.19s", d->digest);
    if (sw_layer_media_comp(d->media_type) == SW_COMP_UNKNOWN)
      return sw_error(err, 0,
                      "layer %s has media type `%s`, which is not a layer slipway can "
                      "apply (tar, tar+gzip, tar+zstd)",
                      d->digest, d->media_type ? d->media_type : "(none)");
    int r = sw_layer_get_by_digest(p->s, d->digest, &have, err);
    if (r < 0)
      return -1;
    p->line[i] = sw_bars_add(p->prog, label, (uint64_t)d->size);
    if (r == 1 && strcmp(have.diff_id, p->diff_ids[i]) != 0)
      return sw_error(err, 0, "layer %s: the image config says its diffID is %s, but it is %s",
                      d->digest, p->diff_ids[i], have.diff_id);
    _cleanup_free_ char *key = xasprintf("%s %s", d->digest, p->diff_ids[i]);
    p->dup[i] = r == 0 && p->seen && sw_strv_contains(*p->seen, key);
    if (r == 1 || p->dup[i]) {
      sw_bars_done(p->prog, p->line[i], "Already exists");
      p->line[i] = (size_t)-1;
    } else if (p->seen) {
      sw_strv_push(p->seen, key);
    }
  }
  if (sw_parallel(n, jobs, download_job, p, err) < 0)
    return -1;
  return sw_parallel(n, jobs > 2 ? 2 : jobs, stage_job, p, err);
}

/* An image manifest of the pull and its config, fetched and checked before any layer is. */
typedef struct {
  char *body, *digest, *config;
  size_t len, config_len;
  sw_rmanifest_t *m;
  char **diff_ids;
} rimage_t;

static void
rimage_clear(rimage_t *ri)
{
  free(ri->body);
  free(ri->digest);
  free(ri->config);
  sw_rmanifest_free(ri->m);
  sw_strv_free(ri->diff_ids);
  memset(ri, 0, sizeof(*ri));
}

/* GET a manifest by tag or digest and parse it (image or index). */
static int
rimage_get(sw_reg_t *r, const char *repo, const char *scope, const char *reference, rimage_t *ri,
           sw_error_t *err)
{
  _cleanup_free_ char *ctype = NULL;
  if (sw_reg_get_manifest(r, repo, scope, reference, &ri->body, &ri->len, &ctype, &ri->digest,
                          err) < 0 ||
      sw_rmanifest_parse(ri->body, ri->len, ctype, &ri->m, err) < 0)
    return -1;
  return 0;
}

/* Complete ri (a manifest received): it must be an image manifest; its config is fetched
 * (digest-checked) and must list a diffID per layer. */
static int
rimage_config(sw_reg_t *r, const char *repo, const char *scope, rimage_t *ri, sw_error_t *err)
{
  if (ri->m->kind != SW_MANIFEST_IMAGE)
    return sw_error(err, 0, "manifest %s is an index, not an image manifest", ri->digest);
  if (sw_reg_get_blob_small(r, repo, scope, ri->m->config.digest, &ri->config, &ri->config_len,
                            err) < 0 ||
      sw_config_diff_ids(ri->config, ri->config_len, &ri->diff_ids, err) < 0)
    return -1;
  if (sw_strv_len(ri->diff_ids) != ri->m->n_layers)
    return sw_error(err, 0, "image config %s lists %zu diff_ids but the manifest has %zu layers",
                    ri->m->config.digest, sw_strv_len(ri->diff_ids), ri->m->n_layers);
  return 0;
}

/* The manifest an index entry names, by digest, with its config. */
static int
rimage_get_entry(sw_reg_t *r, const char *repo, const char *scope, const sw_desc_t *d, rimage_t *ri,
                 sw_error_t *err)
{
  if (rimage_get(r, repo, scope, d->digest, ri, err) < 0 ||
      rimage_config(r, repo, scope, ri, err) < 0)
    return sw_error_wrap(err, "index entry %s (%s/%s%s%s)", d->digest, d->os ? d->os : "?",
                         d->arch ? d->arch : "?", d->variant ? "/" : "",
                         d->variant ? d->variant : "");
  if ((int64_t)ri->len != d->size)
    return sw_error(err, 0,
                    "index entry %s: the index says %" PRId64 " bytes, the manifest has %zu",
                    d->digest, d->size, ri->len);
  return 0;
}

static pull_t
pull_new(sw_store_t *s, sw_reg_t *r, const sw_ref_t *ref, char *scope, sw_bars_t *prog,
         const rimage_t *ri, char ***seen)
{
  return (pull_t){.s = s,
                  .r = r,
                  .repo = ref->path,
                  .scope = scope,
                  .m = ri->m,
                  .diff_ids = ri->diff_ids,
                  .prog = prog,
                  .seen = seen};
}

/* Commit p's staged layers, then store ri's config and manifest and record the image under
 * names (may be NULL). */
static int
commit_image(pull_t *p, const sw_ref_t *ref, const rimage_t *ri, char *const *names,
             sw_image_t **out, sw_error_t *err)
{
  if (commit_layers(p, err) < 0 ||
      sw_blob_put(p->s, ri->config, ri->config_len, ri->m->config.digest, NULL, err) < 0 ||
      sw_blob_put(p->s, ri->body, ri->len, ri->digest, NULL, err) < 0 ||
      sw_image_commit_manifest(p->s, ri->digest, names, out, err) < 0)
    return -1;
  sw_registry_sources_add(p->s, ref->domain, ref->path, ri->m, ri->digest);
  return 0;
}

/* Download, stage and commit ri's layers, then the image. */
static int
pull_image(sw_store_t *s, sw_reg_t *r, const sw_ref_t *ref, char *scope, sw_bars_t *prog,
           rimage_t *ri, char *const *names, unsigned jobs, sw_image_t **out, sw_error_t *err)
{
  pull_t p = pull_new(s, r, ref, scope, prog, ri, NULL);
  int ret = stage_layers(&p, jobs, err) == 0 ? commit_image(&p, ref, ri, names, out, err) : -1;
  pull_cleanup(&p);
  return ret;
}

/* pull --all-platforms of an index: every entry's manifest and config are fetched and checked
 * first (a missing or nested entry refuses the pull before any layer is downloaded), then every
 * image's layers are downloaded and staged (a layer two platforms share, once), and only then
 * committed with the images, and the index blob stored and recorded under names (digest kept):
 * a refused layer of any platform leaves nothing stored. BuildKit's attestation manifests are
 * not pulled (the store leaves them out of its rows). */
static int
pull_index(sw_store_t *s, sw_reg_t *r, const sw_ref_t *ref, char *scope, sw_bars_t *prog,
           rimage_t *idx, char *const *names, unsigned jobs, sw_error_t *err)
{
  const sw_rmanifest_t *m = idx->m;
  size_t n = m->n_manifests;
  rimage_t *imgs = xcalloc(n ? n : 1, sizeof(*imgs));
  pull_t *ps = xcalloc(n ? n : 1, sizeof(*ps));
  _cleanup_strv_ char **seen = NULL;
  int ret = -1;

  if (sw_index_check(m, err) < 0) {
    sw_error_wrap(err, "index %s", idx->digest);
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (!sw_desc_is_attestation(&m->manifests[i]) &&
        rimage_get_entry(r, ref->path, scope, &m->manifests[i], &imgs[i], err) < 0)
      goto out;
  for (size_t i = 0; i < n; i++) {
    if (imgs[i].m == NULL)
      continue;
    ps[i] = pull_new(s, r, ref, scope, prog, &imgs[i], &seen);
    if (stage_layers(&ps[i], jobs, err) < 0)
      goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (imgs[i].m && commit_image(&ps[i], ref, &imgs[i], NULL, NULL, err) < 0)
      goto out;
  if (sw_blob_put(s, idx->body, idx->len, idx->digest, NULL, err) < 0 ||
      sw_index_commit_blob(s, idx->digest, names, NULL, err) < 0)
    goto out;
  sw_registry_source_add(s, ref->domain, ref->path, idx->digest);
  ret = 0;
out:
  for (size_t i = 0; i < n; i++) {
    if (ps[i].m)
      pull_cleanup(&ps[i]);
    rimage_clear(&imgs[i]);
  }
  free(ps);
  free(imgs);
  return ret;
}

int
sw_registry_pull(sw_store_t *s, const char *name, const sw_registry_opts_t *opts, sw_image_t **out,
                 sw_error_t *err)
{
  _cleanup_(sw_ref_freep) sw_ref_t *ref = NULL;
  _cleanup_(sw_reg_freep) sw_reg_t *r = NULL;
  _cleanup_free_ char *full = NULL, *scope = NULL;
  rimage_t top = {0}, one = {0};
  sw_bars_t *prog = NULL;
  sw_platform_t plat;
  unsigned jobs = opts && opts->jobs ? opts->jobs : 3;
  int ret = -1;

  if (sw_ref_parse(name, &ref, err) < 0 ||
      sw_platform_parse(opts ? opts->platform : NULL, &plat, err) < 0)
    return -1;
  full = sw_ref_string(ref);
  r = sw_reg_new(ref->domain, opts, err);
  if (r == NULL)
    return -1;
  scope = xasprintf("repository:%s:pull", ref->path);
  prog = sw_bars_new(opts && opts->progress, opts && opts->quiet);
  char *names[] = {ref->tag && !(opts && opts->keep_names) ? full : NULL, NULL};
  const char *digest = NULL;
  if (rimage_get(r, ref->path, scope, ref->digest ? ref->digest : ref->tag, &top, err) < 0)
    goto out;
  digest = top.digest;
  if (top.m->kind == SW_MANIFEST_INDEX && opts && opts->all_platforms) {
    if (pull_index(s, r, ref, scope, prog, &top, names, jobs, err) < 0)
      goto out;
    if (out)
      *out = NULL; /* several images: the caller looks up the one it wants */
  } else if (top.m->kind == SW_MANIFEST_INDEX) {
    /* As docker: the platform's image only, named as the index was. */
    const sw_desc_t *d = sw_index_select(top.m, &plat, err);
    if (d == NULL || rimage_get(r, ref->path, scope, d->digest, &one, err) < 0 ||
        rimage_config(r, ref->path, scope, &one, err) < 0 ||
        pull_image(s, r, ref, scope, prog, &one, names, jobs, out, err) < 0)
      goto out;
    digest = one.digest;
  } else if (rimage_config(r, ref->path, scope, &top, err) < 0 ||
             pull_image(s, r, ref, scope, prog, &top, names, jobs, out, err) < 0) {
    goto out;
  }
  if (!(opts && opts->quiet))
    fprintf(stderr, "Digest: %s\nPulled %s\n", digest, full);
  ret = 0;
out:
  if (ret < 0)
    sw_error_wrap(err, "pull %s", full);
  rimage_clear(&top);
  rimage_clear(&one);
  sw_bars_free(prog);
  return ret;
}

int
sw_registry_get_or_pull(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err)
{
  sw_registry_opts_t opts = {.quiet = true};
  int f = sw_image_get(s, ref, out, err);
  if (f != 0)
    return f;
  if (sw_registry_pull(s, ref, &opts, out, err) < 0)
    return sw_error_wrap(err,
                         "`%s` is not in the store and could not be pulled (or load it: "
                         "`slipway import`, `slipway load`)",
                         ref);
  if (out && *out == NULL)
    return sw_image_get(s, ref, out, err);
  return 1;
}
