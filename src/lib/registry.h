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

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  char **insecure;           /* hosts ("host[:port]") reached over plain HTTP; NULL-terminated */
  const char *platform;      /* "os/arch[/variant]" picked from an index; NULL = linux/amd64 */
  bool progress;             /* progress bars on stderr (the CLI sets it when stderr is a TTY) */
  bool quiet;                /* no per-blob status lines */
  const char *docker_config; /* NULL = $DOCKER_CONFIG/config.json or ~/.docker/config.json */
  unsigned jobs;             /* parallel transfers; 0 = 3 */
  uint64_t chunk_size;       /* push: blobs larger than this go up in PATCH chunks of it;
                                0 = $SLIPWAY_PUSH_CHUNK_SIZE or 64 MiB */
} sw_registry_opts_t;

/* Check user/pass against REGISTRY's /v2/ (following a bearer challenge if there is one), then
 * store them in the docker config file (mode 0600), keeping its other entries. */
int sw_registry_login(const char *registry, const char *user, const char *pass,
                      const sw_registry_opts_t *opts, sw_error_t *err);

#endif
