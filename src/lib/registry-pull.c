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
  free(p->scope);
  sw_strv_free(p->diff_ids);
  sw_bars_free(p->prog);
}

/* Resolve ref to an image manifest: follow an index to the platform's entry. */
static int
resolve_manifest(sw_reg_t *r, const sw_ref_t *ref, const char *scope, const sw_platform_t *plat,
                 char **body, size_t *len, char **digest, sw_rmanifest_t **m, sw_error_t *err)
{
  _cleanup_free_ char *ctype = NULL;
  const char *reference = ref->digest ? ref->digest : ref->tag;

  if (sw_reg_get_manifest(r, ref->path, scope, reference, body, len, &ctype, digest, err) < 0 ||
      sw_rmanifest_parse(*body, *len, ctype, m, err) < 0)
    return -1;
  if ((*m)->kind == SW_MANIFEST_IMAGE)
    return 0;
  const sw_desc_t *d = sw_index_select(*m, plat, err);
  if (d == NULL)
    return -1;
  _cleanup_free_ char *want = xstrdup(d->digest);
  sw_rmanifest_free(*m);
  *m = NULL;
  free(*body);
  free(*digest);
  free(ctype);
  ctype = NULL;
  *body = *digest = NULL;
  if (sw_reg_get_manifest(r, ref->path, scope, want, body, len, &ctype, digest, err) < 0 ||
      sw_rmanifest_parse(*body, *len, ctype, m, err) < 0)
    return -1;
  if ((*m)->kind != SW_MANIFEST_IMAGE)
    return sw_error(err, 0, "%s: the index entry for %s/%s is another index", want, plat->os,
                    plat->arch);
  return 0;
}

static int
pull_layers(pull_t *p, unsigned jobs, sw_error_t *err)
{
  size_t n = p->m->n_layers;
  p->tmp = xcalloc(n ? n : 1, sizeof(char *));
  p->line = xcalloc(n ? n : 1, sizeof(size_t));
  p->staged = xcalloc(n ? n : 1, sizeof(*p->staged));
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
    if (r == 1) {
      sw_bars_done(p->prog, p->line[i], "Already exists");
      p->line[i] = (size_t)-1;
    }
  }
  if (sw_parallel(n, jobs, download_job, p, err) < 0)
    return -1;
  if (sw_parallel(n, jobs > 2 ? 2 : jobs, stage_job, p, err) < 0)
    return -1;
  return commit_layers(p, err);
}

int
sw_registry_pull(sw_store_t *s, const char *name, const sw_registry_opts_t *opts, sw_image_t **out,
                 sw_error_t *err)
{
  _cleanup_(sw_ref_freep) sw_ref_t *ref = NULL;
  _cleanup_(sw_reg_freep) sw_reg_t *r = NULL;
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;
  _cleanup_free_ char *body = NULL, *digest = NULL, *config = NULL, *full = NULL;
  size_t len = 0, config_len = 0;
  sw_platform_t plat;
  pull_t p = {.s = s};
  int ret = -1;

  if (sw_ref_parse(name, &ref, err) < 0 ||
      sw_platform_parse(opts ? opts->platform : NULL, &plat, err) < 0)
    return -1;
  full = sw_ref_string(ref);
  r = sw_reg_new(ref->domain, opts, err);
  if (r == NULL)
    return -1;
  p.r = r;
  p.repo = ref->path;
  p.scope = xasprintf("repository:%s:pull", ref->path);
  p.prog = sw_bars_new(opts && opts->progress, opts && opts->quiet);
  if (resolve_manifest(r, ref, p.scope, &plat, &body, &len, &digest, &m, err) < 0)
    goto out;
  p.m = m;
  if (sw_reg_get_blob_small(r, ref->path, p.scope, m->config.digest, &config, &config_len, err) <
          0 ||
      sw_config_diff_ids(config, config_len, &p.diff_ids, err) < 0)
    goto out;
  if (sw_strv_len(p.diff_ids) != m->n_layers) {
    sw_error(err, 0, "image config %s lists %zu diff_ids but the manifest has %zu layers",
             m->config.digest, sw_strv_len(p.diff_ids), m->n_layers);
    goto out;
  }
  if (pull_layers(&p, opts && opts->jobs ? opts->jobs : 3, err) < 0)
    goto out;
  char *names[] = {ref->tag ? full : NULL, NULL};
  if (sw_blob_put(s, config, config_len, m->config.digest, NULL, err) < 0 ||
      sw_blob_put(s, body, len, digest, NULL, err) < 0 ||
      sw_image_commit_manifest(s, digest, names, out, err) < 0)
    goto out;
  sw_registry_sources_add(s, ref->domain, ref->path, m, digest);
  if (!(opts && opts->quiet))
    fprintf(stderr, "Digest: %s\nPulled %s\n", digest, full);
  ret = 0;
out:
  if (ret < 0)
    sw_error_wrap(err, "pull %s", full);
  pull_cleanup(&p);
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
