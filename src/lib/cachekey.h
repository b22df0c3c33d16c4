/* slipway: cache keys for build steps and Merkle content hashes.
 *
 * A step's key is sha256 over a canonical, length-prefixed encoding of everything that decides
 * its result: the parent key, the instruction, its expanded arguments, the env and build args it
 * sees, user, workdir, shell, flags, and (COPY/ADD, RUN --mount=type=bind) the content hash of
 * what it reads. Secrets and cache mounts are never part of a key. Nothing here reads a file:
 * callers hash content with the node helpers below and pass the digest in.
 *
 * Content hashes are Merkle style: a node hash covers its type, permission bits and, for files,
 * size and a sha256 of the bytes; for links, the target; for directories, the sorted
 * (name, child hash) list. mtimes, owners and inode numbers are never hashed.
 */
#ifndef SW_CACHEKEY_H
#define SW_CACHEKEY_H

#include "util.h"

#include <sys/types.h>

/* "sha256:" + 64 hex + NUL */
#define SW_KEY_SIZE (SW_DIGEST_LEN + 1)

typedef struct {
  const char *parent;      /* key of the state before the step (NULL: none) */
  const char *instruction; /* "RUN", "COPY", "ADD", "WORKDIR", ... */
  char *const *args;       /* expanded arguments as they will run (RUN: argv incl. shell) */
  char *const *env;        /* KEY=VALUE the step sees: config env + build args in scope */
  const char *user;
  const char *workdir;
  char *const *shell;   /* SHELL in effect */
  char *const *flags;   /* normalised flags, e.g. "--chown=0:0", "--mount=type=cache,target=/x" */
  const char *content;  /* content digest of what the step reads (COPY sources), or NULL */
  const char *platform; /* "linux/amd64" */
} sw_cachekey_input_t;

/* Key of one step; out gets "sha256:<hex>". env is hashed sorted by key, so its order does not
 * matter; the other lists are hashed in order. */
void sw_cachekey_step(const sw_cachekey_input_t *in, char out[SW_KEY_SIZE]);

/* Key of a stage's starting point. `image_id` is the base image's config digest; NULL means
 * `FROM scratch`. */
void sw_cachekey_base(const char *image_id, const char *platform, char out[SW_KEY_SIZE]);

/* ---- Merkle node hashes (hex digests without prefix; out has room for 65 chars) ---- */
#define SW_HASH_HEX_SIZE (SW_SHA256_HEX_LEN + 1)

/* A regular file: permission bits (mode & 07777), size and the sha256 hex of its bytes. */
void sw_content_file(mode_t mode, uint64_t size, const char *bytes_hex, char out[SW_HASH_HEX_SIZE]);
void sw_content_symlink(const char *target, char out[SW_HASH_HEX_SIZE]);
/* Other node types (fifo, device): type and permission bits (and rdev for devices). */
void sw_content_special(mode_t mode, dev_t rdev, char out[SW_HASH_HEX_SIZE]);

/* A node whose owner matters too (sources copied from an image keep their uid/gid). */
void sw_content_owned(const char *node_hex, uid_t uid, gid_t gid, char out[SW_HASH_HEX_SIZE]);

/* A directory: feed children in strictly increasing name order. */
typedef struct sw_content_dir sw_content_dir_t;
sw_content_dir_t *sw_content_dir_new(mode_t mode);
void sw_content_dir_add(sw_content_dir_t *d, const char *name, const char *child_hex);
/* Writes the hash and frees d. */
void sw_content_dir_finish(sw_content_dir_t *d, char out[SW_HASH_HEX_SIZE]);

/* A general-purpose canonical hasher, for keys of records that are not steps (e.g. "content
 * of PATH in the stage whose layer chain is X"). Fields are length-prefixed. */
typedef struct sw_keyhash sw_keyhash_t;
sw_keyhash_t *sw_keyhash_new(const char *domain);
void sw_keyhash_str(sw_keyhash_t *h, const char *s); /* NULL hashes differently from "" */
void sw_keyhash_strv(sw_keyhash_t *h, char *const *v);
void sw_keyhash_u64(sw_keyhash_t *h, uint64_t v);
/* Writes "sha256:<hex>" and frees h. */
void sw_keyhash_finish(sw_keyhash_t *h, char out[SW_KEY_SIZE]);

#endif
