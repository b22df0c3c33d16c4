/* slipway: a persistent cache of file content digests.
 *
 (dev, inode) -> sha256 of the bytes, valid while size, mtime and ctime are unchanged: for the
 * build context, whose files the user edits. Or, for snapshot files, which never change once
 * committed (a snapshot is named by its diffID, so a path under ROOT/snapshots always names the
 * same bytes): path -> sha256, with size and mtime as a sanity check (inode numbers get reused
 * after GC, and hard-linking a file into a COPY --from layer changes its ctime). A file changed
 while it was read is not
 * cached. Stored as text with a checksum line: a torn or corrupt file is ignored, never trusted;
 * no fsync (it is a cache). Loaded on first use; thread-safe.
 */
#ifndef SW_FCACHE_H
#define SW_FCACHE_H

#include "util.h"

#include <sys/stat.h>

typedef struct sw_fcache sw_fcache_t;

typedef enum {
  SW_FCACHE_BY_INODE, /* (dev, ino) + size, mtime, ctime */
  SW_FCACHE_BY_PATH,  /* absolute path of an immutable file + size, mtime */
} sw_fcache_kind_t;

/* keep_unused: how many entries not used by this process to keep when saving (0: only what
 * this process looked up or added, so files that went away fall out). */
sw_fcache_t *sw_fcache_open(const char *path, sw_fcache_kind_t kind, size_t keep_unused);
/* Saves if anything was added, then frees. NULL is a no-op. */
void sw_fcache_free(sw_fcache_t *c);

/* sha256 hex of the regular file dirfd/path whose lstat is *st, from the cache or read (and
 * then cached). SW_FCACHE_BY_PATH wants an absolute path (dirfd ignored). */
int sw_fcache_file(sw_fcache_t *c, int dirfd, const char *path, const struct stat *st,
                   char hex[SW_SHA256_HEX_LEN + 1], sw_error_t *err);

#endif
