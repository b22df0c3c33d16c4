/* slipway: does a snapshot hold what its layer blob says? The blob is read once (any codec), its
 * digest and diffID verified, and its tar entries, in overlay format (`.wh.NAME` → whiteout
 * NAME, `.wh..wh..opq` → its directory, missing parents → directories), are compared with the
 * snapshot's: names, types, modes, sizes, link targets, device numbers. Nothing is written. */
#ifndef SW_LAYER_CHECK_H
#define SW_LAYER_CHECK_H

#include "compress.h"
#include "error.h"

#include <stddef.h>

typedef struct {
  size_t missing, extra, changed;
  char *first; /* the first difference, e.g. "missing `d/f7`" (malloc'd, NULL if none) */
} sw_layer_diff_t;

/* Read the blob from fd (codec NULL = detect) to its end; verify it against digest and diff_id
 * (each may be NULL); if snapshot is non-NULL, compare it with the blob's entries into *diff
 * (free diff->first). -1 and err when the blob is unreadable, not a tar, or not what its names
 * say. */
int sw_layer_check(int fd, const sw_codec_t *codec, const char *digest, const char *diff_id,
                   const char *snapshot, sw_layer_diff_t *diff, sw_error_t *err);

#endif
