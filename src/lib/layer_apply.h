/* slipway: OCI layer blob (gzip / zstd / plain tar, detected) → directory, never writing outside
 * that directory, computing the diffID (and the blob digest) while reading.
 *
 * Two targets:
 *   SW_APPLY_SNAPSHOT  an empty directory that becomes a snapshot in overlayfs format: `.wh.NAME`
 *                      → char device 0/0 `NAME`; `.wh..wh..opq` → xattr trusted.overlay.opaque=y
 *                      on its directory. Parents are resolved with RESOLVE_BENEATH |
 *                      RESOLVE_NO_SYMLINKS: an entry that goes through a symlink is refused.
 *   SW_APPLY_FLAT      a plain rootfs that already holds the lower layers (exports, tests,
 *                      `docker export`-like flattening): whiteouts delete paths, opaque markers
 *                      empty the directory of what lower layers put there. Parents are resolved
 *                      with RESOLVE_IN_ROOT (symlinks such as merged-usr `/lib -> usr/lib` are
 *                      followed, but scoped to the root: they can never lead outside it).
 *
 * Refused, with an error naming the layer and the entry: absolute paths, `..` components, names
 * longer than PATH_MAX/NAME_MAX, `.wh.` names that would name `.`/`..`/nothing, hardlinks whose
 * target is outside the root or not an earlier entry of this layer, block/char devices when not
 * root, trusted.overlay.* xattrs in the tar (they would forge overlay metadata).
 * Kept: modes (setuid/setgid/sticky), uid/gid (when root), whole-second mtimes (directories'
 * set at the end), xattrs, symlinks (targets are data, never followed), hardlinks, fifos, sparse
 * files. On error the directory holds a partial result: the caller removes it (it is in tmp/).
 */
#ifndef SW_LAYER_APPLY_H
#define SW_LAYER_APPLY_H

#include "compress.h"
#include "layer_write.h"

typedef enum {
  SW_APPLY_SNAPSHOT = 0,
  SW_APPLY_FLAT = 1,
} sw_apply_mode_t;

typedef struct {
  sw_apply_mode_t mode;
  /* For messages, e.g. "sha256:abc…" → "layer sha256:abc…: entry `x`: …"; NULL = "layer". */
  const char *name;
  const sw_codec_t *codec; /* NULL = detect from the magic bytes */
  int tee_fd;              /* >= 0: receives a copy of the raw bytes read (e.g. the blob file) */
  sw_sink_t *tar_sink;     /* non-NULL: receives the uncompressed tar (caller finishes it) */
  /* Non-NULL: verified at the end of the stream; a mismatch is an error naming both. */
  const char *expect_diff_id;
  const char *expect_digest;
  /* If the tar cannot be applied (a refused entry, not a tar, a file system error), read the
   * stream to its end anyway (tee_fd, tar_sink and the digests in info cover all of it) and
   * return -2 with err saying why: import stores such a layer and leaves its unpacking (and
   * that error) to its first use, as before eager unpacking. */
  bool finish_stream;
  /* The tar_sink hashes the tar already: the source hashes nothing and info's digests are
   * empty (so no expect_* either). Saves a sha256 pass over an uncompressed import. */
  bool skip_source_hash;
} sw_layer_apply_opts_t;

/* Defaults: SW_APPLY_SNAPSHOT, detect, no tee, no verification. */
sw_layer_apply_opts_t sw_layer_apply_opts_default(void);

/* Read a layer from in_fd (to its end) and apply it under root_dir (which must exist).
 * opts NULL = defaults. info (may be NULL) gets diff_id/tar_size of the tar, digest/size of the
 * raw input and the detected codec/media type. Returns 0, -1, or -2 (see finish_stream: info
 * is filled, the directory holds a partial result). */
int sw_layer_apply(int in_fd, const char *root_dir, const sw_layer_apply_opts_t *opts,
                   sw_layer_info_t *info, sw_error_t *err);

#endif
