/* slipway: snapshot directory (overlayfs upper-dir format) → deterministic OCI layer blob.
 *
 * Walks ONLY the snapshot directory, in sorted order (per directory, bytewise, the directory
 * before its children), and writes a PAX-restricted tar (ustar headers, PAX records only for
 * long names, big numbers and xattrs as SCHILY.xattr.*): numeric uid/gid, no user/group names,
 * whole-second mtimes clamped to SOURCE_DATE_EPOCH when set (BuildKit's rewrite-timestamp),
 * hardlinks within the layer as hardlink entries, every xattr except overlayfs' own
 * (trusted.overlay.*, user.overlay.*). Overlay whiteouts (char device 0/0) become `.wh.NAME`,
 * opaque directories (trusted.overlay.opaque=y) get a `.wh..wh..opq` entry right after the
 * directory. Sockets are skipped. The tar goes through a sw_sink_t, so in ONE pass we get the
 * diffID (sha256 of the tar), the digest (sha256 of the compressed blob) and both sizes.
 *
 * Overlay metacopy / redirect_dir snapshots are refused (mount overlays with metacopy=off and
 * redirect_dir=off so an upper dir is a complete diff).
 */
#ifndef SW_LAYER_WRITE_H
#define SW_LAYER_WRITE_H

#include "compress.h"

typedef struct {
  char diff_id[SW_DIGEST_LEN + 1]; /* sha256 of the uncompressed tar */
  char digest[SW_DIGEST_LEN + 1];  /* sha256 of the blob */
  uint64_t size;                   /* blob (compressed) bytes */
  uint64_t tar_size;               /* uncompressed tar bytes */
  const char *media_type;          /* OCI media type of the blob (static string) */
  const sw_codec_t *codec;
} sw_layer_info_t;

#define SW_EPOCH_NONE ((int64_t)-1)

typedef struct {
  sw_compression_t comp; /* comp.codec NULL = default (gzip) */
  /* Clamp mtimes to this (seconds). SW_EPOCH_NONE: keep them. */
  int64_t source_date_epoch;
} sw_layer_write_opts_t;

/* SOURCE_DATE_EPOCH from the environment, or SW_EPOCH_NONE if unset/invalid. */
int64_t sw_epoch_from_env(void);
/* Defaults: gzip, source_date_epoch from the environment. */
sw_layer_write_opts_t sw_layer_write_opts_default(void);

/* Write snapshot_dir as a compressed layer blob into out_fd (not closed; written from its
 * current offset). opts NULL = sw_layer_write_opts_default(). On success fills *info. */
int sw_layer_write(const char *snapshot_dir, const sw_layer_write_opts_t *opts, int out_fd,
                   sw_layer_info_t *info, sw_error_t *err);

/* The same tar stream, but into an existing sink (the caller finishes it): to combine several
 * directories or to write an uncompressed tar into a pipe. */
int sw_layer_write_tar(const char *snapshot_dir, int64_t source_date_epoch, sw_sink_t *sink,
                       sw_error_t *err);

#endif
