/* slipway: image formats. The OCI image config (with Docker's extra keys), OCI manifest and
 * index, Docker schema2 manifest, the in-memory image (sw_image_t) that the store, the build
 * engine, `run`, archives and the registry client pass around, and image references
 * normalised as Docker does (`foo` -> `docker.io/library/foo:latest`).
 *
 * JSON is written deterministically: objects that are Go structs in Docker/BuildKit keep their
 * Go field order, map-like objects (Labels, ExposedPorts, Volumes, annotations) are sorted by
 * key, no whitespace. So an image's digests depend only on its content and timestamps
 * (SOURCE_DATE_EPOCH makes those fixed). */
#ifndef SW_IMAGE_H
#define SW_IMAGE_H

#include "error.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- media types ---- */
#define SW_MT_OCI_MANIFEST      "application/vnd.oci.image.manifest.v1+json"
#define SW_MT_OCI_INDEX         "application/vnd.oci.image.index.v1+json"
#define SW_MT_OCI_CONFIG        "application/vnd.oci.image.config.v1+json"
#define SW_MT_OCI_LAYER         "application/vnd.oci.image.layer.v1.tar"
#define SW_MT_OCI_LAYER_GZIP    "application/vnd.oci.image.layer.v1.tar+gzip"
#define SW_MT_OCI_LAYER_ZSTD    "application/vnd.oci.image.layer.v1.tar+zstd"
#define SW_MT_DOCKER_MANIFEST   "application/vnd.docker.distribution.manifest.v2+json"
#define SW_MT_DOCKER_LIST       "application/vnd.docker.distribution.manifest.list.v2+json"
#define SW_MT_DOCKER_CONFIG     "application/vnd.docker.container.image.v1+json"
#define SW_MT_DOCKER_LAYER      "application/vnd.docker.image.rootfs.diff.tar"
#define SW_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define SW_MT_DOCKER_LAYER_ZSTD "application/vnd.docker.image.rootfs.diff.tar.zstd"

/* Annotation naming an image in an OCI layout's index.json. */
#define SW_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

/* ---- references ---- */
typedef struct {
  char *domain; /* "docker.io", "localhost:5000", "registry.example.com" */
  char *path;   /* "library/foo", "x/y" */
  char *tag;    /* "latest" by default when there is no digest; NULL if digest only */
  char *digest; /* "sha256:..." or NULL */
} sw_ref_t;

/* Parse as Docker's reference.ParseNormalizedNamed (+ default tag "latest" unless a digest is
 * given). Uppercase repository names, empty components, bad tags or digests are rejected with
 * an SW_EXIT_USAGE error that names the reference. */
int sw_ref_parse(const char *s, sw_ref_t **out, sw_error_t *err);
void sw_ref_free(sw_ref_t *r);
static inline void
sw_ref_freep(sw_ref_t **r)
{
  sw_ref_free(*r);
}
/* "docker.io/library/foo:latest", "localhost:5000/x:y", "docker.io/library/foo@sha256:..." */
char *sw_ref_string(const sw_ref_t *r);
/* "docker.io/library/foo" (no tag/digest) */
char *sw_ref_repository(const sw_ref_t *r);
/* Docker's short form for display: "foo", "user/foo", "localhost:5000/x" (no tag). */
char *sw_ref_familiar_repository(const sw_ref_t *r);
/* Convenience: normalised full string of s, or NULL + err. */
char *sw_ref_normalize(const char *s, sw_error_t *err);
/* Split a normalised name "REPO:TAG" (as the store keeps names) into familiar repo and tag for
 * display; either out may be NULL. Names that do not parse give themselves and "<none>". */
void sw_ref_display(const char *name, char **repo, char **tag);

/* ---- image config (the JSON blob whose digest is the image ID) ---- */
/* A new config: {"architecture": arch (NULL: the host's, GOARCH style "amd64"/"arm64"),
 * "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}.
 * "created" is set by sw_config_set_created(). */
json_t *sw_config_new(const char *arch);
const char *sw_host_arch(void);
/* The "config" object (Docker's container config: User, Env, Cmd, ...), created if missing. */
json_t *sw_config_container(json_t *cfg);
void sw_config_set_created(json_t *cfg, int64_t unix_seconds);
int64_t sw_config_created(const json_t *cfg); /* 0 if missing or unparsable */
/* Append to rootfs.diff_ids. */
void sw_config_add_diff_id(json_t *cfg, const char *diff_id);
/* Append a history entry {created, created_by, comment?, empty_layer?: true}. */
void sw_config_add_history(json_t *cfg, int64_t created, const char *created_by,
                           const char *comment, bool empty_layer);
/* Env helpers on config.Env ("K=V" array): set replaces K or appends. */
void sw_config_env_set(json_t *cfg, const char *key, const char *value);
const char *sw_config_env_get(const json_t *cfg, const char *key);
/* Set config.KEY to a string array (Cmd, Entrypoint, Shell), replacing it; argv NULL removes. */
void sw_config_set_strv(json_t *cfg, const char *key, char *const *argv);
/* Set map-like keys: Labels[k]=v; ExposedPorts["80/tcp"]={}; Volumes["/data"]={}. */
void sw_config_label_set(json_t *cfg, const char *key, const char *value);
void sw_config_expose(json_t *cfg, const char *port); /* "80" -> "80/tcp" */
void sw_config_volume(json_t *cfg, const char *path);

/* Deterministic serialisation (see the header comment). Returns a malloc'd string. */
char *sw_json_dump(const json_t *j);
/* Order keys the way Docker/BuildKit write a config / manifest / index: returns a new
 * reference with known struct keys first in Go order and map keys sorted. */
json_t *sw_json_canonical(const json_t *j);

/* ---- layers and images ---- */
typedef struct {
  char diff_id[SW_DIGEST_LEN + 1]; /* sha256 of the uncompressed tar */
  char digest[SW_DIGEST_LEN + 1];  /* sha256 of the blob as stored (compressed) */
  int64_t size;                    /* blob size in bytes */
  char media_type[80];             /* e.g. SW_MT_OCI_LAYER_GZIP */
  int64_t tar_size;                /* uncompressed size (0 if unknown; filled by the store) */
} sw_layer_desc_t;

typedef struct sw_image_s {
  char *manifest_digest; /* set when stored / read */
  char *config_digest;   /* the image ID */
  int64_t manifest_size;
  int64_t config_size;
  json_t *config;          /* owned */
  sw_layer_desc_t *layers; /* in order, base first */
  size_t n_layers;
  char **names;      /* normalised references pointing at it (may be NULL) */
  int64_t created;   /* from config "created" (unix seconds), filled by the store */
  int64_t last_used; /* store: last commit/touch time */
} sw_image_t;

/* A new image with a fresh sw_config_new(NULL) config and no layers. */
sw_image_t *sw_image_new(void);
/* A deep copy (config duplicated), e.g. to derive a build stage from a base image. */
sw_image_t *sw_image_dup(const sw_image_t *img);
void sw_image_free(sw_image_t *img);
static inline void
sw_image_freep(sw_image_t **img)
{
  sw_image_free(*img);
}
/* Append a layer: to img->layers and its diffID to config rootfs.diff_ids (history is the
 * caller's: use sw_config_add_history). */
void sw_image_add_layer(sw_image_t *img, const sw_layer_desc_t *layer);
/* Sum of layer blob sizes (what `images` shows as SIZE is the uncompressed size in Docker;
 * slipway shows this, compressed, plus the config). */
int64_t sw_image_size(const sw_image_t *img);

/* Build manifest JSON for img (config digest/size must be set): OCI (docker=false) or Docker
 * schema2 (docker=true; layer media types mapped to Docker's). Returns the serialised text. */
char *sw_manifest_build(const sw_image_t *img, bool docker);
/* Parse a manifest (OCI or Docker schema2) into config digest + layers (diff_ids are filled
 * from the config later: left empty here). Rejects indexes/lists with a clear error. */
int sw_manifest_parse(const char *json, size_t len, sw_image_t *img, sw_error_t *err);
/* Fill layers[i].diff_id from config rootfs.diff_ids; error if the counts differ. */
int sw_image_set_config(sw_image_t *img, json_t *config, sw_error_t *err);

/* An OCI index with one manifest per entry; ref_names[i] (may be NULL) becomes the
 * org.opencontainers.image.ref.name annotation. */
char *sw_index_build(const char *const *manifest_digests, const int64_t *sizes,
                     const char *const *ref_names, size_t n);

/* Docker media type for an OCI layer media type and back (unknown ones returned as is). */
const char *sw_media_type_to_docker(const char *mt);
const char *sw_media_type_to_oci(const char *mt);

#endif
