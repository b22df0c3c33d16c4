/* slipway: a read-only merged view of a stack of snapshots, in user space.
 *
 * The engine needs to look into an image's filesystem without running anything: does WORKDIR
 * exist, what do /etc/passwd and /etc/group say for `COPY --chown=user`, what does
 * `COPY --from=stage /path` copy. This module resolves paths through a stack of overlay-format
 * snapshot directories exactly as overlayfs would (whiteouts are 0/0 character devices, opaque
 * directories carry trusted.overlay.opaque=y), following symlinks as if the stack were the root
 * (never leaving it). No mount, so it works in any thread and leaves nothing behind.
 */
#ifndef SW_LOWERFS_H
#define SW_LOWERFS_H

#include "util.h"

#include <sys/stat.h>

typedef struct sw_lowerfs sw_lowerfs_t;

/* layers: snapshot directories, TOP FIRST (the order of overlayfs' lowerdir=). Copied. */
sw_lowerfs_t *sw_lowerfs_new(char *const *layers);
void sw_lowerfs_free(sw_lowerfs_t *fs);
static inline void
sw_lowerfs_freep(sw_lowerfs_t **fs)
{
  sw_lowerfs_free(*fs);
}

/* A merged directory: the layers (top first) that contribute entries to it. */
typedef struct {
  char *path; /* canonical path inside the root, "/" or "/a/b" */
  int *layers;
  size_t nlayers;
} sw_lowerfs_dir_t;
void sw_lowerfs_dir_free(sw_lowerfs_dir_t *d);
static inline void
sw_lowerfs_dir_freep(sw_lowerfs_dir_t **d)
{
  sw_lowerfs_dir_free(*d);
}

typedef struct {
  char *name;
  char *host; /* real path of the visible copy (layer dir + path) */
  struct stat st;
} sw_lowerfs_ent_t;
void sw_lowerfs_ents_free(sw_lowerfs_ent_t *e, size_t n);

/* Resolve `path` (absolute or relative to "/"). Symlinks in intermediate components are always
 * followed (inside the root); the last component only if `follow`. On success fills *canon (the
 * canonical path, caller frees), *st and *host (NULL for "/" of an empty stack); returns -ENOENT
 * (no error filled) if the path does not exist, another negative value with *err on failure. */
int sw_lowerfs_lookup(sw_lowerfs_t *fs, const char *path, bool follow, char **canon,
                      struct stat *st, char **host, sw_error_t *err);

/* Open a merged directory by canonical path (from lookup). -ENOENT / -ENOTDIR without *err. */
int sw_lowerfs_opendir(sw_lowerfs_t *fs, const char *canon, sw_lowerfs_dir_t **out,
                       sw_error_t *err);
/* The visible entries of a merged directory, sorted by name (strcmp). */
int sw_lowerfs_list(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, sw_lowerfs_ent_t **out, size_t *n,
                    sw_error_t *err);
/* The merged child directory `name` of d (an entry of type directory from list). */
int sw_lowerfs_child(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, const char *name,
                     sw_lowerfs_dir_t **out, sw_error_t *err);

/* Read a whole file of the merged view (following links), at most max bytes. -ENOENT if
 * missing (no error filled). */
int sw_lowerfs_read(sw_lowerfs_t *fs, const char *path, size_t max, char **out, size_t *len,
                    sw_error_t *err);

/* Is this stat (of a file in a snapshot) an overlay whiteout? */
static inline bool
sw_is_whiteout(const struct stat *st)
{
  return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

#endif
