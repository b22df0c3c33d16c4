/* slipway: the registry build cache's record format (`--cache-to/--cache-from type=registry`).
 *
 * Owns the cache config JSON (media type application/vnd.buildkit.cacheconfig.v0, BuildKit's
 * shape):
 *   {"layers":  [{"blob", "parent", "annotations": {"mediaType", "diffID", "size", "createdAt"}}],
 *    "records": [{"digest": "sha256:<step key>", "layers": [{"layer": I, "createdAt"}],
 *                 "inputs": [[{"link": J}]], "createdAt"}]}
 * Our record digests are slipway step keys (cachekey.h), not BuildKit's, so the cache is
 * slipway-to-slipway. A record with no layer (the step changed nothing) has an empty "layers"
 * and keeps its time in its own "createdAt" (a slipway extension). Pure: no network, no store.
 * The parser takes untrusted input: sizes bounded, digests and media types checked.
 */
#ifndef SW_CACHECONFIG_H
#define SW_CACHECONFIG_H

#include "error.h"
#include "image.h"

#include <stdbool.h>
#include <stdint.h>

#define SW_MT_CACHE_CONFIG "application/vnd.buildkit.cacheconfig.v0"
/* A cache config larger than this, or with more entries, is refused. */
#define SW_CACHECONFIG_MAX       (16u << 20)
#define SW_CACHECONFIG_MAX_ITEMS 100000

typedef struct {
  char key[SW_DIGEST_LEN + 1];        /* "sha256:<hex>": the step's cache key */
  bool has_layer;                     /* false: the step added no layer */
  sw_layer_desc_t layer;              /* diff_id, digest, size, media_type (has_layer) */
  char parent[SW_DIGEST_LEN + 1];     /* diffID of the layer below ("" = none or unknown) */
  char parent_key[SW_DIGEST_LEN + 1]; /* key of the step before ("" = none known) */
  int64_t created;                    /* unix seconds */
} sw_cache_entry_t;

/* Encode entries (each with_layer one has a blob digest) as a cache config JSON (*config) and
 * the OCI image manifest that carries it (*manifest; config descriptor = the config text's
 * digest and size, layers = the distinct blobs in first-use order). Both are malloc'd. */
int sw_cacheconfig_encode(const sw_cache_entry_t *e, size_t n, char **config, char **manifest,
                          sw_error_t *err);
/* Parse a cache config. *out (malloc'd) gets its records; n counts them. A record whose layer
 * index or digest is malformed fails the whole parse: the cache is all or nothing. */
int sw_cacheconfig_parse(const char *data, size_t len, sw_cache_entry_t **out, size_t *n,
                         sw_error_t *err);
/* Is this a layer media type slipway can apply (OCI/Docker tar, +gzip, +zstd)? */
bool sw_cacheconfig_layer_type_ok(const char *media_type);

#endif
