/* slipway: OCI distribution-spec client over libcurl: pull, push and login.
 *
 * Owns: reference → registry host, plain HTTP for localhost / --insecure-registry hosts, auth
 * (anonymous, bearer-token challenges with a per-scope token cache, basic; credentials from
 * ~/.docker/config.json), manifests (Docker schema 2, OCI, indexes with platform selection),
 * digest verification of every downloaded blob, push (HEAD first, cross-repo mount, monolithic
 * or chunked upload, manifest last), parallel transfers with progress bars and retries with
 * backoff on 5xx / dropped connections.
 */
#ifndef SW_REGISTRY_H
#define SW_REGISTRY_H

#include "compress.h"
#include "error.h"
#include "image.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  char **insecure;           /* hosts ("host[:port]") reached over plain HTTP; NULL-terminated */
  const char *platform;      /* "os/arch[/variant]" picked from an index; NULL = the host's */
  bool all_platforms;        /* pull: every image of an index, and the index (its digest kept) */
  bool progress;             /* progress bars on stderr (the CLI sets it when stderr is a TTY) */
  bool quiet;                /* no per-blob status lines */
  const char *docker_config; /* NULL = $DOCKER_CONFIG/config.json or ~/.docker/config.json */
  unsigned jobs;             /* parallel transfers; 0 = 3 */
  uint64_t chunk_size;       /* push: blobs larger than this go up in PATCH chunks of it;
                                0 = $SLIPWAY_PUSH_CHUNK_SIZE or 64 MiB */
  bool no_stored_creds;      /* do not read the docker config's credentials (login has its
                                own: no credential helper `get` for them) */
  bool keep_names;           /* pull: store the image without moving the name to it (a build's
                                base for a second platform: the name keeps the first's) */
} sw_registry_opts_t;

/* Check user/pass against REGISTRY's /v2/ (following a bearer challenge if there is one), then
 * store them in the docker config file (mode 0600), keeping its other entries. */
int sw_registry_login(const char *registry, const char *user, const char *pass,
                      const sw_registry_opts_t *opts, sw_error_t *err);
/* Remove REGISTRY's credentials (NULL = Docker Hub): `erase` through its credential helper
 * when one is configured, and its `auths` entries. *was_in: there was something to remove. */
int sw_registry_logout(const char *registry, const sw_registry_opts_t *opts, bool *was_in,
                       sw_error_t *err);

/* Pull NAME ("python:slim", "localhost:5000/x/y:t", "…@sha256:…") into the store and name it
 * with its normalised reference (a digest-only reference gives no name). *out (may be NULL)
 * gets the stored image. An index gives its opts->platform image (as docker), or with
 * opts->all_platforms every image and the index itself, recorded under the name (*out NULL):
 * every entry's manifest and config are fetched and checked before any layer. Every blob is
 * digest-checked before use; on failure nothing of this pull is left in the store but layers that
 * were complete and valid. The build engine calls this for a `FROM` image the store does not have:
 *     if (sw_image_get(s, ref, &img, err) == 0)
 *       sw_registry_pull(s, ref, &opts, &img, err);          // opts: {0} = defaults */
int sw_registry_pull(sw_store_t *s, const char *name, const sw_registry_opts_t *opts,
                     sw_image_t **out, sw_error_t *err);

/* For the build engine (FROM, COPY --from=IMAGE): sw_image_get, and when the store does not have
 * the image, pull it (quietly; localhost registries over plain HTTP, credentials from the docker
 * config). Returns 1 with *out set, or -1: a failed pull says the image is not in the store and
 * why it could not be pulled. */
int sw_registry_get_or_pull(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err);

/* Push the stored image or index SRC (any reference sw_image_get or sw_index_get takes) to DEST
 * (NULL = SRC's name); an index goes as each image (blobs, then its manifest by digest) and then
 * the index blob under DEST's tag. For an image: each
 * blob is HEADed first, mounted from another repository of the same registry when one is known
 * to hold it, else uploaded (monolithic, or chunked above opts->chunk_size); the manifest goes
 * last, byte-identical to the stored one, so the digest is the same. *digest_out (may be NULL)
 * gets the manifest digest. */
int sw_registry_push(sw_store_t *s, const char *src, const char *dest,
                     const sw_registry_opts_t *opts, char **digest_out, sw_error_t *err);

/* ---- registry build cache (`build --cache-to/--cache-from type=registry`, registry-cache.c) ----
 * The records of a build (step key → layer, time) go to a registry as an OCI manifest whose
 * config is a cache config (cacheconfig.h) and whose layers are the steps' layer blobs. */
#include "cacheconfig.h"

#include <pthread.h>

/* The records a build hit or wrote, in step order per stage (solve fills it). */
typedef struct {
  sw_cache_entry_t e;
  int stage; /* plan stage index */
} sw_cache_logged_t;
typedef struct {
  pthread_mutex_t lock;
  sw_cache_logged_t *v;
  size_t n, cap;
} sw_cache_log_t;
void sw_cache_log_init(sw_cache_log_t *l);
void sw_cache_log_add(sw_cache_log_t *l, int stage, const sw_cache_entry_t *e);
void sw_cache_log_clear(sw_cache_log_t *l);

/* Records imported from --cache-from refs. */
typedef struct sw_rcache_s sw_rcache_t;
sw_rcache_t *sw_rcache_new(const sw_registry_opts_t *opts);
void sw_rcache_free(sw_rcache_t *c);
static inline void
sw_rcache_freep(sw_rcache_t **c)
{
  sw_rcache_free(*c);
}
/* Read REF's cache manifest and config (both digest-checked and bounded). Returns -1 with err
 * set when the ref cannot be read; the build warns and goes on without it. */
int sw_rcache_import(sw_rcache_t *c, const char *ref, sw_error_t *err);
size_t sw_rcache_count(const sw_rcache_t *c);
/* The imported record for a step key, or NULL. */
const sw_cache_entry_t *sw_rcache_find(const sw_rcache_t *c, const char *key);
/* Bring e's layer into the store (download, sha256 checked while streaming, import with the
 * diffID checked, unpack refusing paths out of the root); *out gets the stored layer. -1: it
 * could not be downloaded; -2: it was downloaded but refused (a hostile or wrong layer:
 * nothing stored; the build must fail rather than run the step). */
int sw_rcache_fetch(sw_rcache_t *c, sw_store_t *s, const sw_cache_entry_t *e, sw_layer_desc_t *out,
                    sw_error_t *err);
/* Export entries (deduplicated by key; layers without a blob get one with comp) to REF. */
int sw_rcache_export(sw_store_t *s, const char *ref, const sw_cache_entry_t *e, size_t n,
                     const sw_compression_t *comp, const sw_registry_opts_t *opts, sw_error_t *err);

#endif
