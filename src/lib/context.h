/* slipway: the build context.
 *
 * Owns the view of the context directory that COPY/ADD and `RUN --mount=type=bind` (without
 * from=; through sw_context_mask) read: a lazily walked tree that honours .dockerignore (an ignored
 * directory is pruned unless an exception may re-include something under it), source selection for
 * COPY (paths, globs, symlinks resolved inside the context only: `COPY ../x` and links pointing out
 * are refused), and Merkle content hashes for cache keys: names, permission bits, sizes, link
 * targets and bytes; never mtimes, owners or inode numbers.
 *
 * Hashing bytes is the only expensive part, so a file's byte digest is cached by
 * (dev, inode, size, mtime, ctime) in ROOT/contexts/<hash of the context path>: a no-op rebuild
 * stats the files it needs and reads none of them.
 */
#ifndef SW_CONTEXT_H
#define SW_CONTEXT_H

#include "cachekey.h"
#include "util.h"

#include <sys/stat.h>

typedef struct sw_context sw_context_t;
typedef struct sw_ctx_node sw_ctx_node_t;

struct sw_ctx_node {
  char *name;           /* last component ("" for the root) */
  char *rel;            /* path from the context root, no leading "/" ("" for the root) */
  struct stat st;       /* lstat */
  char *link;           /* symlink target, else NULL */
  bool listed;          /* kids loaded */
  sw_ctx_node_t **kids; /* included children, sorted by name */
  size_t nkids;
  char **excluded; /* names of the children .dockerignore excludes (NULL: none), once listed */
  bool hashed;
  char hash[SW_HASH_HEX_SIZE];  /* Merkle node hash (no exclude patterns) */
  char bytes[SW_HASH_HEX_SIZE]; /* sha256 of a regular file's bytes, "" until known */
};

/* Open the context at `dir`. The ignore file is DOCKERFILE.dockerignore when it exists, else
 * DIR/.dockerignore (dockerfile may be NULL). cache_dir: where the stat cache lives (NULL: no
 * cache). */
int sw_context_open(const char *dir, const char *dockerfile, const char *cache_dir,
                    sw_context_t **out, sw_error_t *err);
/* Writes the stat cache back if it changed; frees everything. */
void sw_context_free(sw_context_t *c);
static inline void
sw_context_freep(sw_context_t **c)
{
  sw_context_free(*c);
}
const char *sw_context_dir(const sw_context_t *c); /* absolute, resolved */
int sw_context_dirfd(const sw_context_t *c);

/* Is `rel` excluded by .dockerignore? */
bool sw_context_ignored(sw_context_t *c, const char *rel);

/* The root node. */
sw_ctx_node_t *sw_context_root(sw_context_t *c);
/* Load a directory node's included children (idempotent). */
int sw_context_list(sw_context_t *c, sw_ctx_node_t *dir, sw_error_t *err);

/* Expand one COPY/ADD source (relative to the context; may hold * ? [ ] in any component) to
 * the nodes it names, in sorted order. Symlinks in the path are followed within the context
 * (the last component too, as BuildKit does for sources); one that points outside, or a
 * source with `..` leaving the context, is an error (code 1) naming `what` (e.g. the
 * Dockerfile line). A missing non-wildcard source is an error; a wildcard may match nothing. */
int sw_context_match(sw_context_t *c, const char *src, const char *what, sw_ctx_node_t ***out,
                     size_t *n, sw_error_t *err);

/* Merkle hash of a node (memoized). */
int sw_context_hash(sw_context_t *c, sw_ctx_node_t *node, char out[SW_HASH_HEX_SIZE],
                    sw_error_t *err);

/* The same, leaving out paths (relative to `node`) matched by `excludes` (COPY --exclude,
 * .dockerignore syntax). Not memoized. excludes NULL/empty = sw_context_hash. */
int sw_context_hash_excluding(sw_context_t *c, sw_ctx_node_t *node, char *const *excludes,
                              char out[SW_HASH_HEX_SIZE], sw_error_t *err);

/* sha256 hex of a regular file node's bytes, via the stat cache. */
int sw_context_file_bytes(sw_context_t *c, sw_ctx_node_t *node, sw_error_t *err);

/* `RUN --mount=type=bind` of a context directory must show what COPY would see, no more: write
 * into `dir` (an empty directory) an overlayfs layer that hides, from the host directory of
 * `node`, every entry .dockerignore excludes: a whiteout (char device 0/0) per excluded name,
 * under copies of the directories that lead to it (their mode, owner and times: overlayfs shows
 * the upper-most copy of a directory). Mounted as lowerdir=DIR:HOST. *n gets the number of
 * whiteouts (0: nothing to hide, the directory can be bound as it is). Call after
 * sw_context_hash of node (the key covers exactly what the layer leaves visible). */
int sw_context_mask(sw_context_t *c, sw_ctx_node_t *node, const char *dir, size_t *n,
                    sw_error_t *err);

/* Host path of a node (malloc'd). */
char *sw_context_host_path(const sw_context_t *c, const sw_ctx_node_t *node);

/* Does a pattern contain glob metacharacters? */
bool sw_has_wildcards(const char *s);

/* Exclude matcher for COPY --exclude (.dockerignore syntax, paths relative to the source). */
typedef struct sw_excludes sw_excludes_t;
int sw_excludes_new(char *const *patterns, sw_excludes_t **out, sw_error_t *err);
void sw_excludes_free(sw_excludes_t *e);
/* NULL e matches nothing. */
bool sw_excludes_match(const sw_excludes_t *e, const char *rel);

#endif
