/* slipway: COPY and ADD, written straight into a fresh layer directory (no mount, no sandbox).
 *
 * The layer directory is a snapshot in the making (overlay format, under ROOT/tmp). Sources are
 * build-context nodes (context.h), paths in another image or stage (a lowerfs view) or heredoc
 * bodies. Docker's destination rules: a destination ending in "/" or naming an existing
 * directory receives sources inside it; a directory source has its *contents* copied; missing
 * destination directories are created (0755, owned by the --chown user, as BuildKit does);
 * existing parent directories are written into the layer with their metadata from the image, as
 * BuildKit's diff would hold them. Symlinks on the destination path are resolved in the image,
 * never on the host: every write under the layer directory goes through *at() calls with
 * O_NOFOLLOW, so a symlink copied by one source can never redirect the writes of another.
 *
 * Also the Merkle content hash of a path inside an image (for `COPY --from` cache keys).
 */
#ifndef SW_COPY_H
#define SW_COPY_H

#include "cachekey.h"
#include "context.h"
#include "fcache.h"
#include "lowerfs.h"
#include "util.h"

#include <sys/stat.h>

typedef struct {
  bool chown; /* --chown given: uid/gid below apply to everything copied */
  uid_t uid;
  gid_t gid;
  int chmod;                     /* --chmod bits, or -1 */
  const sw_excludes_t *excludes; /* --exclude, relative to each source */
  int64_t now;                   /* mtime of directories the copy creates or changes (seconds) */
  /* The image being built, for destination lookups; NULL with --link (copy onto nothing). */
  sw_lowerfs_t *dest_fs;
  /* Sources from an image are files of immutable snapshots: without --chown/--chmod a copy
   * would be identical (owner, mode, mtime, xattrs, bytes), so hard-link them instead. */
  bool link_lower;
} sw_copy_opts_t;

typedef struct sw_copy sw_copy_t;

/* Start a copy into layer_dir (an empty directory that will become the layer). */
int sw_copy_new(const char *layer_dir, const sw_copy_opts_t *opts, sw_copy_t **out,
                sw_error_t *err);
void sw_copy_free(sw_copy_t *c);
static inline void
sw_copy_freep(sw_copy_t **c)
{
  sw_copy_free(*c);
}

/* Decide where sources go. dest: absolute path in the image (WORKDIR already applied), with
 * its trailing "/" if written so: then, or if the image has a directory there, sources go
 * inside it; else each source in turn names dest itself (BuildKit), and a second file there
 * is an error. Must be called before the add functions. */
int sw_copy_set_dest(sw_copy_t *c, const char *dest, sw_error_t *err);

/* Add one source. `sub`: with --parents, the path (relative) to keep under dest; else NULL. */
int sw_copy_add_context(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, const char *sub,
                        sw_error_t *err);
int sw_copy_add_lower(sw_copy_t *c, sw_lowerfs_t *fs, const char *canon, const struct stat *st,
                      const char *host, const char *sub, sw_error_t *err);
/* A heredoc body as a file named `name` (mode 0644 unless --chmod). */
int sw_copy_add_data(sw_copy_t *c, const char *name, const char *data, size_t len, sw_error_t *err);
/* A regular file of the host (a download) as `name`, with this mode (unless --chmod) and mtime
 * (seconds); owned by root unless --chown. */
int sw_copy_add_file(sw_copy_t *c, const char *name, const char *host_path, mode_t mode,
                     int64_t mtime, sw_error_t *err);
/* ADD of a local archive: extract `host_path` (a tar, plain, gzip or zstd) into dest. */
int sw_copy_add_archive(sw_copy_t *c, const char *host_path, sw_error_t *err);
/* Set the mtimes of directories the copy created or changed. */
int sw_copy_finish(sw_copy_t *c, sw_error_t *err);

/* Is this file a tar archive that ADD unpacks (tar, tar.gz, tar.zst by content)? */
bool sw_copy_is_archive(const char *host_path);

/* Merkle hash of `path` in an image/stage view (following a symlink at path itself), leaving
 * out excluded paths. fc (may be NULL) caches the digests of snapshot files. -ENOENT (no error
 * filled) if it does not exist. */
int sw_copy_hash_lower(sw_lowerfs_t *fs, const char *path, const sw_excludes_t *excludes,
                       sw_fcache_t *fc, char out[SW_HASH_HEX_SIZE], sw_error_t *err);

/* Create `path` (absolute) and its missing parents in layer_dir the way WORKDIR does:
 * missing directories 0755 owned by uid:gid with mtime `now`, existing parents with their image
 * metadata (mtime too, except the deepest one: a directory was made in it). Also used for a RUN's
 * missing cwd (uid 0, as runc creates it). */
int sw_copy_mkdir_layer(const char *layer_dir, sw_lowerfs_t *fs, const char *path, uid_t uid,
                        gid_t gid, int64_t now, sw_error_t *err);

/* Resolve the part of an absolute path that exists in the image (symlinks followed inside the
 * image); the rest is appended as written. Returns a canonical absolute path (malloc'd). */
char *sw_copy_resolve_dest(sw_lowerfs_t *fs, const char *path, sw_error_t *err);

#endif
