/* slipway: the registry build cache: export a build's records (`--cache-to type=registry`) and
 * import them (`--cache-from`). The transport is the pull and push machinery (registry-pull.c,
 * registry-push.c); the record format is cacheconfig.c. Imported records are untrusted: the
 * manifest and config are bounded and digest-checked, every layer is checked (media type, size,
 * digest while streaming, diffID on import) and unpacked by layer_apply, which refuses to write
 * outside the snapshot. */
#include "registry-private.h"

#include <inttypes.h>
#include <stdlib.h>

/* ---- the build's log ---- */

void
sw_cache_log_init(sw_cache_log_t *l)
{
  memset(l, 0, sizeof(*l));
  pthread_mutex_init(&l->lock, NULL);
}

void
sw_cache_log_add(sw_cache_log_t *l, int stage, const sw_cache_entry_t *e)
{
  pthread_mutex_lock(&l->lock);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
  }
  l->v[l->n++] = (sw_cache_logged_t){*e, stage};
  pthread_mutex_unlock(&l->lock);
}

void
sw_cache_log_clear(sw_cache_log_t *l)
{
  free(l->v);
  pthread_mutex_destroy(&l->lock);
  memset(l, 0, sizeof(*l));
}

/* ---- import ---- */

typedef struct {
  sw_reg_t *r;
  char *repo, *scope;
} source_t;

typedef struct {
  sw_cache_entry_t e;
  size_t src;
} rentry_t;

struct sw_rcache_s {
  sw_registry_opts_t opts;
  source_t *src;
  size_t n_src;
  rentry_t *v; /* sorted by key once imported */
  size_t n;
};

sw_rcache_t *
sw_rcache_new(const sw_registry_opts_t *opts)
{
  sw_rcache_t *c = xcalloc(1, sizeof(*c));
  if (opts)
    c->opts = *opts;
  c->opts.quiet = true;
  c->opts.progress = false;
  return c;
}

void
sw_rcache_free(sw_rcache_t *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_src; i++) {
    sw_reg_free(c->src[i].r);
    free(c->src[i].repo);
    free(c->src[i].scope);
  }
  free(c->src);
  free(c->v);
  free(c);
}

static int
cmp_entry(const void *a, const void *b)
{
  return strcmp(((const rentry_t *)a)->e.key, ((const rentry_t *)b)->e.key);
}

size_t
sw_rcache_count(const sw_rcache_t *c)
{
  return c ? c->n : 0;
}

static int
cmp_desc(const void *a, const void *b)
{
  const sw_desc_t *x = a, *y = b;
  int c = strcmp(x->digest, y->digest);
  return c ? c : (x->size > y->size) - (x->size < y->size);
}

/* Every record's layer must be one of the manifest's layers (digest and size): sorted, so a
 * hostile config of many records costs n log n, not records x layers. */
static int
check_manifest(const sw_rmanifest_t *m, const sw_cache_entry_t *e, size_t n, const char *full,
               sw_error_t *err)
{
  _cleanup_free_ sw_desc_t *v = xcalloc(m->n_layers ? m->n_layers : 1, sizeof(*v));
  for (size_t i = 0; i < m->n_layers; i++) {
    if (m->layers[i].digest == NULL)
      return sw_error(err, 0, "%s: manifest layer %zu has no digest", full, i);
    v[i] = m->layers[i];
  }
  qsort(v, m->n_layers, sizeof(*v), cmp_desc);
  for (size_t i = 0; i < n; i++) {
    if (!e[i].has_layer)
      continue;
    sw_desc_t k = {.digest = (char *)e[i].layer.digest, .size = e[i].layer.size};
    if (m->n_layers == 0 || bsearch(&k, v, m->n_layers, sizeof(*v), cmp_desc) == NULL)
      return sw_error(err, 0, "%s: cache record %s names layer %s, which the manifest lacks", full,
                      e[i].key, e[i].layer.digest);
  }
  return 0;
}

int
sw_rcache_import(sw_rcache_t *c, const char *refstr, sw_error_t *err)
{
  _cleanup_(sw_ref_freep) sw_ref_t *ref = NULL;
  _cleanup_(sw_reg_freep) sw_reg_t *r = NULL;
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;
  _cleanup_free_ char *body = NULL, *ctype = NULL, *digest = NULL, *cfg = NULL, *full = NULL;
  _cleanup_free_ char *scope = NULL;
  _cleanup_free_ sw_cache_entry_t *e = NULL;
  size_t len = 0, clen = 0, n = 0;

  if (sw_ref_parse(refstr, &ref, err) < 0)
    return -1;
  full = sw_ref_string(ref);
  r = sw_reg_new(ref->domain, &c->opts, err);
  if (r == NULL)
    return sw_error_wrap(err, "cache %s", full);
  scope = xasprintf("repository:%s:pull", ref->path);
  if (sw_reg_get_manifest(r, ref->path, scope, ref->digest ? ref->digest : ref->tag, &body, &len,
                          &ctype, &digest, err) < 0 ||
      sw_rmanifest_parse(body, len, ctype, &m, err) < 0)
    return sw_error_wrap(err, "cache %s", full);
  if (m->kind != SW_MANIFEST_IMAGE || m->config.media_type == NULL ||
      strcmp(m->config.media_type, SW_MT_CACHE_CONFIG) != 0)
    return sw_error(err, 0, "cache %s: not a slipway build cache (config media type `%s`, not %s)",
                    full, m->config.media_type ? m->config.media_type : "(none)",
                    SW_MT_CACHE_CONFIG);
  if (m->config.size < 0 || (uint64_t)m->config.size > SW_CACHECONFIG_MAX)
    return sw_error(err, 0, "cache %s: cache config of %" PRId64 " bytes is too large", full,
                    m->config.size);
  if (sw_reg_get_blob_small(r, ref->path, scope, m->config.digest, &cfg, &clen, err) < 0 ||
      sw_cacheconfig_parse(cfg, clen, &e, &n, err) < 0 || check_manifest(m, e, n, full, err) < 0)
    return sw_error_wrap(err, "cache %s", full);

  c->src = xrealloc(c->src, (c->n_src + 1) * sizeof(*c->src));
  c->src[c->n_src] = (source_t){steal_ptr(&r), xstrdup(ref->path), steal_ptr(&scope)};
  c->v = xrealloc(c->v, (c->n + n + 1) * sizeof(*c->v));
  /* With several refs, the first one given wins for a key: search the (sorted) earlier ones. */
  size_t before = c->n;
  for (size_t i = 0; i < n; i++) {
    rentry_t k = {e[i], c->n_src};
    if (before == 0 || bsearch(&k, c->v, before, sizeof(*c->v), cmp_entry) == NULL)
      c->v[c->n++] = k;
  }
  c->n_src++;
  qsort(c->v, c->n, sizeof(*c->v), cmp_entry);
  sw_debug("cache %s: %zu records", full, n);
  return 0;
}

const sw_cache_entry_t *
sw_rcache_find(const sw_rcache_t *c, const char *key)
{
  if (c == NULL || c->n == 0)
    return NULL;
  rentry_t k;
  snprintf(k.e.key, sizeof(k.e.key), "%s", key);
  const rentry_t *f = bsearch(&k, c->v, c->n, sizeof(*c->v), cmp_entry);
  return f ? &f->e : NULL;
}

int
sw_rcache_fetch(sw_rcache_t *c, sw_store_t *s, const sw_cache_entry_t *e, sw_layer_desc_t *out,
                sw_error_t *err)
{
  const rentry_t *re = (const rentry_t *)e;
  const source_t *src = &c->src[re->src];
  const sw_layer_desc_t *l = &e->layer;
  /* A layer stored already (by this blob, or by its diffID with another blob) is not
   * downloaded again. */
  int have = sw_layer_get_by_digest(s, l->digest, out, err);
  if (have == 0)
    have = sw_layer_get(s, l->diff_id, l->media_type, out, err);
  if (have < 0)
    return -1;
  if (have == 1 && strcmp(out->diff_id, l->diff_id) != 0)
    return sw_error(err, 0, "cache layer %s: the record says diffID %s, but it is %s", l->digest,
                    l->diff_id, out->diff_id);
  if (have == 0) {
    sw_desc_t d = {
        .media_type = (char *)l->media_type, .digest = (char *)l->digest, .size = l->size};
    _cleanup_free_ char *tmp = NULL;
    if (sw_reg_download_blob(src->r, s, src->repo, src->scope, &d, NULL, 0, &tmp, err) < 0)
      return -1;
    /* Strict, as every door: a layer that would leave its root is refused, nothing stored. */
    int rc = sw_layer_import_path(s, tmp, l->media_type, l->digest, l->diff_id, out, err);
    unlink(tmp);
    if (rc < 0) {
      sw_error_wrap(err, "cache layer %s of %s/%s", l->digest, sw_reg_host(src->r), src->repo);
      return -2;
    }
    sw_registry_source_add(s, sw_reg_host(src->r), src->repo, l->digest);
  }
  if (sw_snapshot_ensure(s, l->diff_id, err) < 0) {
    sw_error_wrap(err, "applying cache layer %s of %s/%s", l->digest, sw_reg_host(src->r),
                  src->repo);
    return -2;
  }
  return 0;
}

/* ---- export ---- */

int
sw_rcache_export(sw_store_t *s, const char *refstr, const sw_cache_entry_t *in, size_t n,
                 const sw_compression_t *comp, const sw_registry_opts_t *opts, sw_error_t *err)
{
  _cleanup_(sw_ref_freep) sw_ref_t *ref = NULL;
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;
  _cleanup_free_ char *config = NULL, *manifest = NULL, *full = NULL;
  _cleanup_free_ sw_cache_entry_t *e = xcalloc(n ? n : 1, sizeof(*e));
  size_t k = 0;

  if (sw_ref_parse(refstr, &ref, err) < 0)
    return -1;
  full = sw_ref_string(ref);
  if (ref->digest)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "cache %s: name a tag (ref=HOST/REPO:TAG), not a digest: the cache "
                         "manifest is new each build",
                         full);
  for (size_t i = 0; i < n; i++) {
    bool dup = false;
    for (size_t j = 0; j < k && !dup; j++)
      dup = strcmp(e[j].key, in[i].key) == 0;
    if (dup)
      continue;
    e[k] = in[i];
    /* Layers of intermediate stages have no blob yet (only a snapshot). */
    if (e[k].has_layer && sw_layer_make_blob(s, &e[k].layer, comp, err) < 0)
      return sw_error_wrap(err, "cache %s: layer %s", full, e[k].layer.diff_id);
    k++;
  }
  if (sw_cacheconfig_encode(e, k, &config, &manifest, err) < 0 ||
      sw_blob_put(s, config, strlen(config), NULL, NULL, err) < 0 ||
      sw_rmanifest_parse(manifest, strlen(manifest), NULL, &m, err) < 0 ||
      sw_reg_push_manifest(s, ref, manifest, strlen(manifest), m, ref->tag, opts, err) < 0)
    return sw_error_wrap(err, "cache %s", full);
  return 0;
}
