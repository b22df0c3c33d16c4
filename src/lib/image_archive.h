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

/* Load a docker-archive or oci-archive tar (optionally gzip/zstd compressed; "-" = stdin) or an
 * OCI layout directory into the store. The images loaded (with their names) are returned. */
int sw_archive_load(sw_store_t *s, const char *path, sw_image_t ***out, size_t *n, sw_error_t *err);

#endif
