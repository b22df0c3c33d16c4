/* slipway: registry client internals shared by registry-*.c, the unit tests and the fuzz target.
 *
 * The pure parts (no network): WWW-Authenticate challenges, ~/.docker/config.json credentials,
 * manifest / index JSON, platform selection, the retry policy and distribution error bodies.
 * The HTTP session (`sw_reg_t`) wraps libcurl with auth and retries; pull and push use it.
 * Nothing outside src/lib/registry*.c should include this header: use registry.h.
 */
#ifndef SW_REGISTRY_PRIVATE_H
#define SW_REGISTRY_PRIVATE_H

#include "image.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* ---- media types ---- */
#define SW_MANIFEST_ACCEPT                                                                         \
  SW_MT_OCI_MANIFEST ", " SW_MT_OCI_INDEX ", " SW_MT_DOCKER_MANIFEST ", " SW_MT_DOCKER_LIST

/* Manifests and configs are small; a registry that sends more is broken or hostile. */
#define SW_MANIFEST_MAX (4u << 20)

/* ---- WWW-Authenticate ---- */
typedef struct {
  char *scheme; /* "bearer" or "basic", lower-cased */
  char *realm;
  char *service;
  char *scope;
  char *error; /* e.g. "insufficient_scope" */
} sw_auth_challenge_t;

/* Parse one WWW-Authenticate header value. With several challenges, Bearer wins over Basic. */
int sw_auth_challenge_parse(const char *header, sw_auth_challenge_t *out, sw_error_t *err);
void sw_auth_challenge_clear(sw_auth_challenge_t *c);

/* ---- ~/.docker/config.json ---- */
/* $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json (malloc'd). */
char *sw_docker_config_path(void);
/* The key Docker uses in `auths` for a registry host ("https://index.docker.io/v1/" for Hub). */
char *sw_docker_config_key(const char *host);
/* A config.json key ("https://host/v1/", "host") as a bare host, and whether it names HOST
 * (Docker Hub's many spellings are one). Shared by `auths` and `credHelpers` lookups. */
char *sw_config_key_host(const char *key);
bool sw_config_key_matches(const char *key, const char *host);
/* Find credentials for host in a config.json text. Returns 1 and fills user/pass when found,
 * 0 when there are none, -1 on a malformed file or entry. */
int sw_docker_config_lookup(const char *json, const char *host, char **user, char **pass,
                            sw_error_t *err);
/* Return a new config.json text: `json` (may be NULL) with host's entry set, other keys kept. */
int sw_docker_config_set(const char *json, const char *host, const char *user, const char *pass,
                         char **out, sw_error_t *err);
char *sw_base64_encode(const void *data, size_t len);

/* ---- credential helpers (registry-credhelper.c) ---- */
/* The helper NAME (docker-credential-NAME) a config.json text gives host: credHelpers (key by
 * host or server address) over credsStore; NULL if none. *where (may be NULL) gets which key
 * named it, for messages. */
char *sw_credhelper_name(const char *json, const char *host, char **where);
/* `get`: 1 with user/pass, 0 when the helper has none for host, -1 (naming the helper) when it
 * is missing or fails. */
int sw_credhelper_get(const char *name, const char *host, char **user, char **pass,
                      sw_error_t *err);
int sw_credhelper_store(const char *name, const char *host, const char *user, const char *pass,
                        sw_error_t *err);
int sw_credhelper_erase(const char *name, const char *host, sw_error_t *err);
/* `list`: 1 when the helper holds credentials for host, 0 when not. */
int sw_credhelper_has(const char *name, const char *host, sw_error_t *err);
/* `json` with host's `auths` entry an empty object (the secret is in a helper), as docker. */
int sw_docker_config_mark(const char *json, const char *host, char **out, sw_error_t *err);
/* Decodes standard base64 (padding required); NULL when malformed. */
char *sw_base64_decode(const char *s, size_t *len);

/* ---- manifests and indexes ---- */
typedef struct {
  char *media_type;
  char *digest;
  int64_t size;
  char *os, *arch, *variant; /* platform, index entries only */
} sw_desc_t;

typedef enum { SW_MANIFEST_IMAGE, SW_MANIFEST_INDEX } sw_rmanifest_kind_t;

typedef struct {
  sw_rmanifest_kind_t kind;
  char *media_type;
  sw_desc_t config;  /* image manifests */
  sw_desc_t *layers; /* image manifests */
  size_t n_layers;
  sw_desc_t *manifests; /* indexes */
  size_t n_manifests;
} sw_rmanifest_t;

/* Parse a manifest or index. content_type (may be NULL) is the HTTP Content-Type, used when
 * the body has no mediaType. Schema 1 and unknown types are refused with a clear message. */
int sw_rmanifest_parse(const char *data, size_t len, const char *content_type, sw_rmanifest_t **out,
                       sw_error_t *err);
void sw_rmanifest_free(sw_rmanifest_t *m);
static inline void
sw_rmanifest_freep(sw_rmanifest_t **m)
{
  sw_rmanifest_free(*m);
}

typedef struct {
  char os[32], arch[32], variant[32];
} sw_platform_t;

/* "os/arch[/variant]"; NULL or "" means the host's (linux/amd64 on x86-64). Aliases: x86_64 →
 * amd64, aarch64 → arm64. */
int sw_platform_parse(const char *s, sw_platform_t *out, sw_error_t *err);
/* The index entry for the platform; the error lists what the index offers. */
const sw_desc_t *sw_index_select(const sw_rmanifest_t *idx, const sw_platform_t *p,
                                 sw_error_t *err);

/* An index's entries are checked before any of them is fetched (pull --all-platforms, push):
 * image manifests only (a nested index is refused, so no chain or loop of indexes is followed),
 * each listed once, at most SW_INDEX_MAX_ENTRIES, at least one that is not an attestation. */
#define SW_INDEX_MAX_ENTRIES 256
int sw_index_check(const sw_rmanifest_t *idx, sw_error_t *err);
/* BuildKit's attestation manifests (platform unknown/unknown): no image to pull or run. */
bool sw_desc_is_attestation(const sw_desc_t *d);

typedef enum { SW_COMP_NONE, SW_COMP_GZIP, SW_COMP_ZSTD, SW_COMP_UNKNOWN } sw_comp_t;
/* Compression of a layer from its media type; SW_COMP_UNKNOWN for non-layer types. */
sw_comp_t sw_layer_media_comp(const char *media_type);

/* The config's rootfs.diff_ids (sha256 of each uncompressed layer), validated. */
int sw_config_diff_ids(const char *data, size_t len, char ***out, sw_error_t *err);

/* ---- distribution error bodies and the retry policy ---- */
/* "CODE: message; CODE2: message2" from {"errors":[...]}, or NULL. */
char *sw_registry_error_body(const char *body, size_t len);
/* Should a request to URL (NULL: unknown) that ended with this HTTP status (0 if none) / curl
 * code be retried? An unresolvable host or a connection refused on loopback is not retried. */
bool sw_retry_wanted(long http_status, int curl_code, const char *url);
/* Backoff before attempt n (1-based retry count): base * 2^(n-1), capped at 10 s. */
unsigned sw_retry_delay_ms(unsigned base_ms, unsigned n);
/* A Retry-After header value (delay-seconds or an HTTP-date, compared with now) in ms, capped at
 * SW_RETRY_AFTER_MAX_MS (a date in the past: 0); -1 when value is NULL or malformed. */
#define SW_RETRY_AFTER_MAX_MS 60000L
long sw_retry_after_ms(const char *value, time_t now);
/* The wait before retry n: the server's Retry-After when it sent one (429, 503), else backoff. */
unsigned sw_retry_wait_ms(unsigned base_ms, unsigned n, const char *retry_after, time_t now);
/* A transfer's deadline: base seconds (SLIPWAY_BLOB_TIMEOUT, 60 by default) plus its size at
 * SW_TRANSFER_MIN_RATE, so that a drip-feeding registry cannot keep a pull running forever. */
#define SW_TRANSFER_MIN_RATE (100.0 * 1024)
double sw_transfer_deadline_s(unsigned base_s, uint64_t size);

/* ---- registry hosts (references: sw_ref_parse in image.h) ---- */
/* Host that serves the API for a reference host (docker.io → registry-1.docker.io). */
const char *sw_registry_api_host(const char *host);
/* Plain HTTP: localhost, 127.0.0.0/8, ::1, or a host listed as insecure. */
bool sw_registry_is_insecure(const char *host, char *const *insecure);

/* ---- the HTTP session with one registry ---- */
typedef struct sw_reg_s sw_reg_t;

typedef struct {
  const char *method;         /* GET HEAD PUT POST PATCH DELETE */
  const char *url;            /* absolute, or a path starting with "/" */
  const char *scope;          /* token scopes, space separated: "repository:a/b:pull,push" */
  const char *const *headers; /* extra "Key: value" lines, NULL-terminated, may be NULL */
  /* request body: memory, or a range of a file */
  const void *body;
  size_t body_len;
  int body_fd; /* -1 = none */
  uint64_t body_off, body_size;
  /* response body: buffered (up to max_body) unless sink is set */
  size_t (*sink)(const void *p, size_t n, void *ud);
  void (*restart)(void *ud); /* before a retry: the sink starts over */
  void *sink_ud;
  size_t max_body;
  bool follow;   /* follow redirects (blob GETs may go to a CDN) */
  bool no_retry; /* upload bodies: a resend into the same session is unsafe; the caller
                    starts a new session instead */
  void (*progress)(void *ud, uint64_t now, uint64_t total);
  void *progress_ud;
  /* The request, with its retries, fails once past its deadline: `deadline` (sw_now() seconds)
   * when set, else sw_transfer_deadline_s() of xfer_size (the body's size when known) from the
   * start. */
  uint64_t xfer_size;
  double deadline;
} sw_http_req_t;

typedef struct {
  long status;
  sw_buf_t body;
  char *location;
  char *content_type;
  char *docker_digest;
  char *www_auth;
  char *range;
  char *retry_after;
  char *url;               /* the URL that answered (after redirects) */
  uint64_t received, sent; /* body bytes of the last attempt */
} sw_http_resp_t;

void sw_http_resp_clear(sw_http_resp_t *r);

sw_reg_t *sw_reg_new(const char *host, const sw_registry_opts_t *opts, sw_error_t *err);
void sw_reg_free(sw_reg_t *r);
static inline void
sw_reg_freep(sw_reg_t **r)
{
  sw_reg_free(*r);
}
const char *sw_reg_host(const sw_reg_t *r);
/* Use these credentials instead of the docker config file's (login). */
void sw_reg_set_creds(sw_reg_t *r, const char *user, const char *pass);
const char *sw_reg_base(const sw_reg_t *r);
/* Send a request with auth and retries. Returns 0 with resp->status set whenever a response
 * arrived (even 4xx); -1 when none did after all retries, or when auth failed. */
int sw_reg_do(sw_reg_t *r, const sw_http_req_t *req, sw_http_resp_t *resp, sw_error_t *err);
/* Fill err for an unexpected status: "METHOD URL: HTTP 401 (UNAUTHORIZED: …); run …". */
int sw_reg_status_error(sw_reg_t *r, const char *method, const char *url,
                        const sw_http_resp_t *resp, sw_error_t *err);
/* The session's retry budget (attempts, including the first) and backoff base. */
unsigned sw_reg_attempts(const sw_reg_t *r);
unsigned sw_reg_retry_base_ms(const sw_reg_t *r);
/* The deadline, in seconds from now, of a transfer of size bytes (SLIPWAY_BLOB_TIMEOUT). */
double sw_reg_deadline_s(const sw_reg_t *r, uint64_t size);
/* Absolute URL for a path or a Location header value. */
char *sw_reg_url(const sw_reg_t *r, const char *path_or_url);

typedef struct sw_bars_s sw_bars_t;

/* ---- building blocks of pull and push, also used by the registry build cache ---- */
/* GET a manifest by tag or digest (bounded by SW_MANIFEST_MAX); *digest_out is the digest of
 * the bytes received, checked against the reference / Docker-Content-Digest when given. */
int sw_reg_get_manifest(sw_reg_t *r, const char *repo, const char *scope, const char *reference,
                        char **body, size_t *len, char **ctype, char **digest_out, sw_error_t *err);
/* GET a small blob (config; at most 16 MiB), digest-checked. */
int sw_reg_get_blob_small(sw_reg_t *r, const char *repo, const char *scope, const char *digest,
                          char **body, size_t *len, sw_error_t *err);
/* Stream blob d into a new file under ROOT/tmp (*tmp_out), sha256 checked while it streams,
 * capped at d->size. prog may be NULL. On failure nothing is left behind. */
int sw_reg_download_blob(sw_reg_t *r, sw_store_t *s, const char *repo, const char *scope,
                         const sw_desc_t *d, sw_bars_t *prog, size_t line, char **tmp_out,
                         sw_error_t *err);
/* Push the blobs m names (layers + config: all must be in the store; HEAD first, cross-repo
 * mount, parallel uploads) then body as the manifest under reference (tag or digest). */
int sw_reg_push_manifest(sw_store_t *s, const sw_ref_t *ref, const char *body, size_t len,
                         const sw_rmanifest_t *m, const char *reference,
                         const sw_registry_opts_t *opts, sw_error_t *err);

/* ---- where blobs live (registry-push.c): ROOT/registry-sources, lines "DIGEST HOST REPO",
 * appended after each pull and push, read to pick a cross-repository mount source. A hint
 * only: a stale line costs one failed mount attempt, then a normal upload. ---- */
void sw_registry_source_add(sw_store_t *s, const char *host, const char *repo, const char *digest);
/* All blobs of a pulled/pushed image (config + layers). */
void sw_registry_sources_add(sw_store_t *s, const char *host, const char *repo,
                             const sw_rmanifest_t *m, const char *manifest_digest);
/* Another repository of host known to hold digest, or NULL. */
char *sw_registry_source_find(sw_store_t *s, const char *host, const char *digest,
                              const char *not_repo);

/* ---- parallel transfers and progress (registry-xfer.c) ---- */
/* Run fn(ctx, i) for i in [0, n) on up to `jobs` threads. The first failure stops new jobs
 * from starting; its error is returned. */
int sw_parallel(size_t n, unsigned jobs, int (*fn)(void *ctx, size_t i, sw_error_t *err), void *ctx,
                sw_error_t *err);

/* Per-blob progress: bars redrawn in place on a TTY, one status line per blob otherwise. */
sw_bars_t *sw_bars_new(bool tty, bool quiet);
void sw_bars_free(sw_bars_t *p);
/* Register a line (e.g. "sha256:1a2b3c4d5e6f") with its total size; returns its id. */
size_t sw_bars_add(sw_bars_t *p, const char *label, uint64_t total);
/* A libcurl-style callback: ud is a sw_bars_line_t. */
typedef struct {
  sw_bars_t *p;
  size_t id;
} sw_bars_line_t;
void sw_bars_cb(void *ud, uint64_t now, uint64_t total);
/* Final state of a line: "Pushed", "Already exists", "Mounted from x", "Pull complete" … */
void sw_bars_done(sw_bars_t *p, size_t id, const char *status);

#endif
