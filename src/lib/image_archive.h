/* slipway: image archives. Export images from the store to an OCI layout directory, an
 * oci-archive tar (the same layout, tarred) or a docker-archive tar (`docker load` format:
 * manifest.json + repositories, blobs under blobs/sha256/ like docker 25+, plus the OCI
 * index.json/oci-layout docker 25+ also writes); import (load) any of them. Export copies the
 * stored blobs as they are: nothing is recompressed. */
#ifndef SW_IMAGE_ARCHIVE_H
#define SW_IMAGE_ARCHIVE_H

#include "store.h"

typedef enum {
  SW_ARCHIVE_DOCKER = 0, /* docker-archive tar */
  SW_ARCHIVE_OCI = 1,    /* oci-archive tar */
  SW_ARCHIVE_OCI_DIR = 2 /* OCI image layout directory */
} sw_archive_format_t;

/* Parse "docker", "oci", "oci-dir" (SW_EXIT_USAGE on others). */
int sw_archive_format_parse(const char *s, sw_archive_format_t *out, sw_error_t *err);

/* Write n images to path ("-" = stdout for the tar formats). names[i] (may be NULL, or
 * names NULL) is the normalised reference recorded for imgs[i] (RepoTags, ref.name). */
int sw_archive_save(sw_store_t *s, sw_image_t *const *imgs, const char *const *names, size_t n,
                    sw_archive_format_t fmt, const char *path, sw_error_t *err);

/* One thing to save: an image, or an index (multi-platform image) with all its images. In
 * index.json an index is one descriptor of the index blob itself (as docker 25+'s containerd
 * store and BuildKit's oci exporter write it), so a load keeps its digest; a docker-archive's
 * manifest.json lists each of its images, with the name (RepoTags) on the host platform's only,
 * so a docker without the containerd store loads the image it can run under that name. */
typedef struct {
  sw_image_t *img;         /* an image, or NULL */
  const sw_index_t *index; /* an index, or NULL */
  const char *name;        /* normalised reference recorded (RepoTags, ref.name); may be NULL */
} sw_archive_item_t;
int sw_archive_save_items(sw_store_t *s, const sw_archive_item_t *items, size_t n,
                          sw_archive_format_t fmt, const char *path, sw_error_t *err);

/* Load a docker-archive or oci-archive tar (optionally gzip/zstd compressed; "-" = stdin) or an
 * OCI layout directory into the store. The images loaded (with their names) are returned in
 * *out; an index of index.json is recorded with every image it lists (its digest kept, its
 * name from the annotations) and returned in *idx_out (may be NULL: not returned), its images
 * not in *out. An index is checked before any of its layers is read: image manifests only (a
 * nested index is refused), each once, at most 256. */
int sw_archive_load(sw_store_t *s, const char *path, sw_image_t ***out, size_t *n,
                    sw_index_t ***idx_out, size_t *n_idx, sw_error_t *err);
/* The check load makes of an index blob (pure; fuzzed by tests/fuzz/fuzz_index.c). */
int sw_archive_index_check(const char *json, size_t len, sw_error_t *err);

#endif
