/* slipway: `push`: blobs first (in parallel: HEAD, else cross-repository mount, else upload,
 * monolithic or in PATCH chunks), the manifest last and byte-identical to the stored one.
 * Also the blob-source hints (ROOT/registry-sources) that make mounts possible. */
#include "registry-private.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/file.h>

#define DEFAULT_CHUNK (64ull << 20)

/* ---- blob sources ---- */

void
sw_registry_source_add(sw_store_t *s, const char *host, const char *repo, const char *digest)
{
  _cleanup_free_ char *path = sw_store_path(s, "registry-sources");
  _cleanup_free_ char *line = xasprintf("%s %s %s\n", digest, host, repo);
  _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  /* One O_APPEND write per line: concurrent writers never interleave inside a line. */
  if (fd < 0 || sw_write_all(fd, line, strlen(line)) < 0)
    sw_debug("cannot record blob source in `%s`: %s", path, strerror(errno));
}

void
sw_registry_sources_add(sw_store_t *s, const char *host, const char *repo, const sw_rmanifest_t *m,
                        const char *manifest_digest)
{
  if (manifest_digest)
    sw_registry_source_add(s, host, repo, manifest_digest);
  sw_registry_source_add(s, host, repo, m->config.digest);
  for (size_t i = 0; i < m->n_layers; i++)
    sw_registry_source_add(s, host, repo, m->layers[i].digest);
}

char *
sw_registry_source_find(sw_store_t *s, const char *host, const char *digest, const char *not_repo)
{
  _cleanup_free_ char *path = sw_store_path(s, "registry-sources");
  _cleanup_fclose_ FILE *f = fopen(path, "re");
  _cleanup_free_ char *line = NULL;
  char *found = NULL;
  size_t cap = 0;

  if (f == NULL)
    return NULL;
  /* The last line wins: the most recent place we saw the blob. */
  while (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\n")] = '\0';
    char *h = strchr(line, ' ');
    char *rp = h ? strchr(h + 1, ' ') : NULL;
    if (rp == NULL)
      continue;
    *h++ = '\0';
    *rp++ = '\0';
    if (strcmp(line, digest) == 0 && strcmp(h, host) == 0 && strcmp(rp, not_repo) != 0) {
      free(found);
      found = xstrdup(rp);
    }
  }
  return found;
}

/* ---- one blob ---- */

typedef struct {
  const char *digest;
  int64_t size;
} push_blob_t;

typedef struct {
  sw_store_t *s;
  sw_reg_t *r;
  const char *repo;
  char *scope;
  push_blob_t *blobs;
  size_t n;
  uint64_t chunk;
  sw_bars_t *prog;
  size_t *line;
} push_t;

/* 1 if the repository already has the blob, 0 if not. */
static int
blob_exists(push_t *p, const char *digest, sw_error_t *err)
{
  _cleanup_free_ char *path = xasprintf("/v2/%s/blobs/%s", p->repo, digest);
  sw_http_req_t req = {.method = "HEAD", .url = path, .scope = p->scope, .body_fd = -1};
  sw_http_resp_t resp = {0};

  if (sw_reg_do(p->r, &req, &resp, err) < 0)
    return -1;
  int ret = resp.status == 200 ? 1 : resp.status == 404 ? 0 : -1;
  if (ret < 0)
    sw_reg_status_error(p->r, "HEAD", path, &resp, err);
  sw_http_resp_clear(&resp);
  return ret;
}

/* POST an upload session (a mount when from != NULL). Returns 1 when mounted (201), 0 with
 * *location set when an upload must follow (202). */
static int
upload_start(push_t *p, const char *digest, const char *from, char **location, sw_error_t *err)
{
  _cleanup_free_ char *path =
      from ? xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", p->repo, digest, from)
           : xasprintf("/v2/%s/blobs/uploads/", p->repo);
  _cleanup_free_ char *scope =
      from ? xasprintf("%s repository:%s:pull", p->scope, from) : xstrdup(p->scope);
  sw_http_req_t req = {.method = "POST", .url = path, .scope = scope, .body_fd = -1, .body = ""};
  sw_http_resp_t resp = {0};
  int ret = -1;

  if (sw_reg_do(p->r, &req, &resp, err) < 0)
    return -1;
  if (resp.status == 201 && from)
    ret = 1;
  else if (resp.status == 202 && resp.location) {
    *location = sw_reg_url(p->r, resp.location);
    ret = 0;
  } else if (resp.status == 202) {
    _cleanup_free_ char *url = sw_reg_url(p->r, path);
    sw_error(err, 0, "POST %s: HTTP 202 without a Location header", url);
  } else {
    sw_reg_status_error(p->r, "POST", path, &resp, err);
  }
  sw_http_resp_clear(&resp);
  return ret;
}

static char *
with_digest(const char *location, const char *digest)
{
  return xasprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', digest);
}

/* PUT (final, with ?digest=) or PATCH (a chunk) [off, off+len) of fd to url. */
static int
upload_send(push_t *p, const char *method, const char *url, int fd, uint64_t off, uint64_t len,
            double deadline, long want, char **location, sw_bars_line_t *pl, bool *transient,
            sw_error_t *err)
{
  _cleanup_free_ char *range =
      len ? xasprintf("Content-Range: %" PRIu64 "-%" PRIu64, off, off + len - 1) : NULL;
  const char *hdrs[] = {"Content-Type: application/octet-stream",
                        strcmp(method, "PATCH") == 0 ? range : NULL, NULL};
  sw_http_req_t req = {.method = method,
                       .url = url,
                       .scope = p->scope,
                       .headers = hdrs,
                       .body_fd = len ? fd : -1,
                       .body_off = off,
                       .body_size = len,
                       .progress = sw_bars_cb,
                       .progress_ud = pl,
                       .no_retry = true,
                       .xfer_size = len,
                       .deadline = deadline};
  sw_http_resp_t resp = {0};

  if (sw_reg_do(p->r, &req, &resp, err) < 0) {
    /* no response: dropped connection, stall; past the blob's deadline, giving up */
    *transient = (*err)->status != ETIMEDOUT;
    return -1;
  }
  if (resp.status != want) {
    *transient = sw_retry_wanted(resp.status, 0, NULL);
    sw_reg_status_error(p->r, method, url, &resp, err);
    sw_http_resp_clear(&resp);
    return -1;
  }
  if (location) {
    free(*location);
    *location = resp.location ? sw_reg_url(p->r, resp.location) : xstrdup(url);
  }
  sw_http_resp_clear(&resp);
  return 0;
}

/* Upload blob i in the session at location (consumed); deadline: sw_now() seconds. */
static int
upload_blob(push_t *p, size_t i, char *location, double deadline, bool *transient, sw_error_t *err)
{
  const push_blob_t *b = &p->blobs[i];
  _cleanup_close_ int fd = -1;
  int64_t size = 0;
  sw_bars_line_t pl = {p->prog, p->line[i]};
  _cleanup_free_ char *loc = location;

  fd = sw_blob_open(p->s, b->digest, &size, err);
  if (fd < 0)
    return -1;
  if ((uint64_t)size <= p->chunk) {
    _cleanup_free_ char *url = with_digest(loc, b->digest);
    return upload_send(p, "PUT", url, fd, 0, (uint64_t)size, deadline, 201, NULL, &pl, transient,
                       err);
  }
  for (uint64_t off = 0; off < (uint64_t)size; off += p->chunk) {
    uint64_t n = (uint64_t)size - off < p->chunk ? (uint64_t)size - off : p->chunk;
    _cleanup_free_ char *url = xstrdup(loc);
    if (upload_send(p, "PATCH", url, fd, off, n, deadline, 202, &loc, &pl, transient, err) < 0)
      return -1;
  }
  _cleanup_free_ char *url = with_digest(loc, b->digest);
  return upload_send(p, "PUT", url, fd, 0, 0, deadline, 201, NULL, &pl, transient, err);
}

/* Upload in a session (location, consumed); when it fails on the way (dropped connection, 5xx)
 * the session's state is unknown: if the blob landed anyway we are done, else start a new
 * session from zero. Each retry is reported. */
static int
upload_with_retries(push_t *p, size_t i, char *location, sw_error_t *err)
{
  const char *digest = p->blobs[i].digest;
  unsigned attempts = sw_reg_attempts(p->r);
  /* One deadline for the blob, whatever the sessions and chunks it takes. */
  double deadline = sw_now() + sw_reg_deadline_s(p->r, (uint64_t)p->blobs[i].size);

  for (unsigned n = 1;; n++) {
    bool transient = false;
    if (location == NULL && upload_start(p, digest, NULL, &location, err) < 0)
      return -1;
    if (upload_blob(p, i, steal_ptr(&location), deadline, &transient, err) == 0)
      return 0;
    if (!transient)
      return -1;
    sw_error_t herr = NULL;
    if (blob_exists(p, digest, &herr) == 1) {
      sw_error_release(err);
      return 0;
    }
    sw_error_release(&herr);
    if (n >= attempts)
      return sw_error_wrap(err, "gave up after %u upload attempts", n);
    unsigned ms = sw_retry_delay_ms(sw_reg_retry_base_ms(p->r), n);
    fprintf(stderr, "slipway: retry %u/%u: upload of %s: %s; new upload session in %.1fs\n", n,
            attempts - 1, digest, (*err)->msg, ms / 1000.0);
    sw_error_release(err);
    usleep(ms * 1000);
  }
}

static int
push_job(void *ctx, size_t i, sw_error_t *err)
{
  push_t *p = ctx;
  const char *digest = p->blobs[i].digest;
  _cleanup_free_ char *from = NULL;
  char *location = NULL;
  int r;

  r = blob_exists(p, digest, err);
  if (r != 0) {
    if (r == 1)
      sw_bars_done(p->prog, p->line[i], "Layer already exists");
    return r < 0 ? -1 : 0;
  }
  from = sw_registry_source_find(p->s, sw_reg_host(p->r), digest, p->repo);
  if (from) {
    sw_error_t merr = NULL;
    r = upload_start(p, digest, from, &location, &merr);
    if (r == 1) {
      _cleanup_free_ char *msg = xasprintf("Mounted from %s", from);
      sw_bars_done(p->prog, p->line[i], msg);
      sw_registry_source_add(p->s, sw_reg_host(p->r), p->repo, digest);
      return 0;
    }
    if (r < 0) { /* a stale hint or a registry without mounts: upload normally */
      sw_debug("mount of %s from %s failed: %s", digest, from, merr->msg);
      sw_error_release(&merr);
    }
  }
  if (upload_with_retries(p, i, location, err) < 0)
    return sw_error_wrap(err, "uploading blob %s", digest);
  sw_bars_done(p->prog, p->line[i], "Pushed");
  sw_registry_source_add(p->s, sw_reg_host(p->r), p->repo, digest);
  return 0;
}

/* ---- the push ---- */

static int
put_manifest(push_t *p, const char *reference, const char *body, size_t len, const char *media_type,
             sw_error_t *err)
{
  _cleanup_free_ char *path = xasprintf("/v2/%s/manifests/%s", p->repo, reference);
  _cleanup_free_ char *ct = xasprintf("Content-Type: %s", media_type);
  const char *hdrs[] = {ct, NULL};
  sw_http_req_t req = {.method = "PUT",
                       .url = path,
                       .scope = p->scope,
                       .headers = hdrs,
                       .body = body,
                       .body_len = len,
                       .body_fd = -1};
  sw_http_resp_t resp = {0};

  if (sw_reg_do(p->r, &req, &resp, err) < 0)
    return -1;
  int ret = 0;
  if (resp.status != 201 && resp.status != 200)
    ret = sw_reg_status_error(p->r, "PUT", path, &resp, err);
  sw_http_resp_clear(&resp);
  return ret;
}

static uint64_t
chunk_size(const sw_registry_opts_t *opts)
{
  if (opts && opts->chunk_size)
    return opts->chunk_size;
  const char *e = getenv("SLIPWAY_PUSH_CHUNK_SIZE");
  uint64_t v;
  if (e && *e && sw_parse_size(e, &v, NULL) == 0 && v > 0)
    return v;
  return DEFAULT_CHUNK;
}

static int
push_blobs(push_t *p, const sw_rmanifest_t *m, unsigned jobs, sw_error_t *err)
{
  if (m->kind == SW_MANIFEST_INDEX)
    return 0; /* its manifests were pushed before it, each with its blobs */
  p->n = m->n_layers + 1;
  p->blobs = xcalloc(p->n, sizeof(push_blob_t));
  p->line = xcalloc(p->n, sizeof(size_t));
  for (size_t i = 0; i < m->n_layers; i++)
    p->blobs[i] = (push_blob_t){m->layers[i].digest, m->layers[i].size};
  p->blobs[m->n_layers] = (push_blob_t){m->config.digest, m->config.size};
  for (size_t i = 0; i < p->n; i++) {
    char label[32];
    snprintf(label, sizeof(label), "%.19s", p->blobs[i].digest);
    p->line[i] = sw_bars_add(p->prog, label, (uint64_t)p->blobs[i].size);
  }
  return sw_parallel(p->n, jobs, push_job, p, err);
}

int
sw_reg_push_manifest(sw_store_t *s, const sw_ref_t *ref, const char *body, size_t len,
                     const sw_rmanifest_t *m, const char *reference, const sw_registry_opts_t *opts,
                     sw_error_t *err)
{
  _cleanup_(sw_reg_freep) sw_reg_t *r = sw_reg_new(ref->domain, opts, err);
  push_t p = {.s = s, .chunk = chunk_size(opts)};
  int ret = -1;

  if (r == NULL)
    return -1;
  p.r = r;
  p.repo = ref->path;
  p.scope = xasprintf("repository:%s:pull,push", ref->path);
  p.prog = sw_bars_new(opts && opts->progress, opts && opts->quiet);
  if (push_blobs(&p, m, opts && opts->jobs ? opts->jobs : 3, err) == 0 &&
      put_manifest(&p, reference, body, len, m->media_type, err) == 0)
    ret = 0;
  free(p.scope);
  free(p.blobs);
  free(p.line);
  sw_bars_free(p.prog);
  return ret;
}

/* Push the stored manifest (an image's, or an index's when top) digest to ref under reference;
 * *len_out (may be NULL) gets its size. */
static int
push_stored(sw_store_t *s, const sw_ref_t *ref, const char *digest, const char *reference, bool top,
            const sw_registry_opts_t *opts, size_t *len_out, sw_error_t *err)
{
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;
  _cleanup_free_ char *body = NULL;
  size_t len = 0;

  if (sw_blob_read(s, digest, SW_MANIFEST_MAX, &body, &len, err) < 0 ||
      sw_rmanifest_parse(body, len, NULL, &m, err) < 0)
    return sw_error_wrap(err, "stored manifest %s", digest);
  if (m->kind == SW_MANIFEST_INDEX && !top)
    return sw_error(err, 0, "stored manifest %s is an index inside an index", digest);
  if (m->kind == SW_MANIFEST_INDEX && sw_index_check(m, err) < 0)
    return sw_error_wrap(err, "stored index %s", digest);
  for (size_t i = 0; i < m->n_manifests; i++) /* before anything is sent */
    if (sw_desc_is_attestation(&m->manifests[i]) && !sw_blob_exists(s, m->manifests[i].digest))
      return sw_error(err, 0,
                      "index %s lists the attestation manifest %s (platform unknown/unknown), "
                      "which slipway does not keep when it pulls or loads an index: the "
                      "registry would refuse the index without it; copy the original with "
                      "`skopeo copy --all`, or push a slipway build of it",
                      digest, m->manifests[i].digest);
  for (size_t i = 0; i < m->n_manifests; i++) {
    const sw_desc_t *d = &m->manifests[i];
    if (push_stored(s, ref, d->digest, d->digest, false, opts, NULL, err) < 0)
      return sw_error_wrap(err, "index %s: entry %s/%s%s%s", digest, d->os ? d->os : "?",
                           d->arch ? d->arch : "?", d->variant ? "/" : "",
                           d->variant ? d->variant : "");
  }
  if (sw_reg_push_manifest(s, ref, body, len, m, reference, opts, err) < 0)
    return -1;
  sw_registry_source_add(s, ref->domain, ref->path, digest);
  if (len_out)
    *len_out = len;
  return 0;
}

int
sw_registry_push(sw_store_t *s, const char *src, const char *dest, const sw_registry_opts_t *opts,
                 char **digest_out, sw_error_t *err)
{
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  _cleanup_(sw_ref_freep) sw_ref_t *ref = NULL;
  _cleanup_free_ char *full = NULL;
  size_t len = 0;

  int fi = sw_index_get(s, src, &idx, err);
  if (fi < 0 || (fi == 0 && sw_image_find(s, src, &img, err) < 0))
    return -1;
  char *const *names = idx ? idx->names : img->names;
  const char *digest = idx ? idx->digest : img->manifest_digest;
  if (dest == NULL &&
      (names == NULL || names[0] == NULL || strchr(src, '@') || sw_str_has_prefix(src, "sha256:")))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "push %s: name a destination (slipway push %s HOST/REPO:TAG)", src, src);
  if (sw_ref_parse(dest ? dest : src, &ref, err) < 0)
    return -1;
  full = sw_ref_string(ref);
  if (ref->digest && strcmp(ref->digest, digest) != 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "push %s: the %s's digest is %s", full,
                         idx ? "index" : "image", digest);
  if (push_stored(s, ref, digest, ref->tag ? ref->tag : digest, true, opts, &len, err) < 0)
    return sw_error_wrap(err, "push %s", full);
  if (!(opts && opts->quiet))
    printf("%s: digest: %s size: %zu\n", ref->tag ? ref->tag : full, digest, len);
  if (digest_out)
    *digest_out = xstrdup(digest);
  return 0;
}
