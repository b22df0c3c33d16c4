/* slipway: the store (ROOT = --root / SLIPWAY_ROOT / /var/lib/slipway).
 *
 *   ROOT/slipway.db          SQLite (WAL): layers, images, names, cache records, usage
 *   ROOT/lock                flock: every open store holds it shared; GC takes it exclusive
 *   ROOT/blobs/sha256/<hex>  content-addressed blobs (layers, configs, manifests)
 *   ROOT/snapshots/<hex>/    one extracted layer each (overlay format), named by diffID hex
 *   ROOT/tmp/                staging on the same filesystem: a rename commits
 *   ROOT/trash/              deletion renames a thing here first, then removes it
 *   ROOT/purge/<rand>/       trash/ and tmp/ as a process alone found them, being removed
 *                            beside its work (store_gc.c)
 *   ROOT/mounts/<id>/        RUN --mount=type=cache directories
 *   ROOT/containers/<name>/  `slipway run` upper/work dirs
 *   ROOT/reserve             space set aside for a full filesystem (sw_store_open_mode)
 *
 * Concurrency: one sw_store_t may be shared by threads (one SQLite connection behind a
 * recursive mutex; each call is its own transaction unless the thread has opened one with
 * sw_store_begin). Several processes may open the same ROOT: SQLite (WAL, busy timeout)
 * serialises metadata writes; data (blobs, snapshots) is written to tmp/ and renamed, so it is
 * never seen half-written. Blobs and snapshots not yet referenced by a row are protected from GC
 * because GC needs the lock exclusively, i.e. no other process has the store open.
 *
 * Functions that look something up return 1 (found), 0 (not found) or -1 (error, err set). */
#ifndef SW_STORE_H
#define SW_STORE_H

#include "error.h"
#include "compress.h"
#include "image.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sw_store_s sw_store_t;

/* ---- open / close ---- */
/* Create ROOT and its layout if missing, open the database (migrating its schema) and take
 * the shared lock. */
int sw_store_open(const char *root, sw_store_t **out, sw_error_t *err);
/* What a command does with the store, which decides what it may do when the store's filesystem
 * is full: a writer fails (naming the filesystem), a deleter (rmi, prune) may release ROOT/reserve
 * to commit its deletions, a reader may too, or read in SQLite's exclusive locking mode. */
typedef enum { SW_STORE_WRITE, SW_STORE_READ, SW_STORE_FREE } sw_store_mode_t;
int sw_store_open_mode(const char *root, sw_store_mode_t mode, sw_store_t **out, sw_error_t *err);
/* "the store's filesystem (`ROOT`, mounted on `M`) is full (No space left on device): free space
 * or run `slipway prune`" (malloc'd). */
char *sw_store_full_note(const char *root);
/* When *err is an ENOSPC, or ROOT's filesystem has no room for 64 KiB, append that note;
 * returns -1. */
int sw_store_error_full(const char *root, sw_error_t *err);
void sw_store_free(sw_store_t *s);
static inline void
sw_store_freep(sw_store_t **s)
{
  sw_store_free(*s);
}
const char *sw_store_root(const sw_store_t *s);
/* ROOT/rel (malloc'd). */
char *sw_store_path(const sw_store_t *s, const char *rel);
/* A fresh empty directory ROOT/tmp/<prefix>XXXXXX (malloc'd path), or NULL + err. */
char *sw_store_mkdtemp(sw_store_t *s, const char *prefix, sw_error_t *err);
/* A fresh file in ROOT/tmp opened O_RDWR; *path_out gets its path (malloc'd). */
int sw_store_mkstemp(sw_store_t *s, const char *prefix, char **path_out, sw_error_t *err);
/* ROOT/mounts/<id> for RUN --mount=type=cache, created if missing (id is hashed if it is not
 * a safe file name). */
char *sw_store_cache_mount_dir(sw_store_t *s, const char *id, sw_error_t *err);

/* ---- transactions (metadata only) ----
 * Optional: group several metadata calls of this thread into one SQLite transaction (e.g. a
 * step's layer row and its cache record). Other threads' calls wait until commit/rollback.
 * Nested begin/commit pairs are allowed; a failed inner call makes the outer commit fail. */
int sw_store_begin(sw_store_t *s, sw_error_t *err);
int sw_store_commit(sw_store_t *s, sw_error_t *err);
void sw_store_rollback(sw_store_t *s);

/* ---- blobs (ROOT/blobs/sha256/<hex>) ---- */
/* Store data; verifies it against expected (NULL: no check). *digest_out (may be NULL) gets
 * "sha256:<hex>" (malloc'd). An existing blob is a hit. */
int sw_blob_put(sw_store_t *s, const void *data, size_t len, const char *expected,
                char **digest_out, sw_error_t *err);
/* Move a finished file (anywhere under ROOT/tmp) into the store. It is hashed and checked
 * against expected (NULL: no check). The file is consumed (renamed or removed). */
int sw_blob_put_file(sw_store_t *s, const char *tmp_path, const char *expected, char **digest_out,
                     sw_error_t *err);
/* Like sw_blob_put_file() for a file whose digest the caller computed while writing it (e.g.
 * sw_layer_write's info.digest): fsync + rename, no re-read. */
int sw_blob_adopt(sw_store_t *s, const char *tmp_path, const char *digest, sw_error_t *err);
/* A streaming writer hashing as it goes (registry downloads, archive import). */
typedef struct sw_blob_writer_s sw_blob_writer_t;
sw_blob_writer_t *sw_blob_writer_new(sw_store_t *s, sw_error_t *err);
int sw_blob_writer_write(sw_blob_writer_t *w, const void *data, size_t len, sw_error_t *err);
/* Commit (verify against expected if non-NULL); frees w either way. */
int sw_blob_writer_commit(sw_blob_writer_t *w, const char *expected, char **digest_out,
                          sw_error_t *err);
void sw_blob_writer_free(sw_blob_writer_t *w); /* abort: removes the temp file */
bool sw_blob_exists(sw_store_t *s, const char *digest);
/* Path of a blob (malloc'd; the file may not exist). */
char *sw_blob_path(sw_store_t *s, const char *digest);
/* Open read-only (O_CLOEXEC); *size_out may be NULL. */
int sw_blob_open(sw_store_t *s, const char *digest, int64_t *size_out, sw_error_t *err);
/* Hash a stored blob: 1 it matches its digest, 0 it does not (err says what it holds), -1 it
 * cannot be read (err). */
int sw_blob_verify(sw_store_t *s, const char *digest, sw_error_t *err);
/* Read a whole blob (at most max bytes; 0 = no limit), NUL-terminated. */
int sw_blob_read(sw_store_t *s, const char *digest, size_t max, char **out, size_t *len,
                 sw_error_t *err);

/* ---- layers & snapshots ----
 * A layer row: diffID -> blob (digest, size, media type), and the snapshot
 * ROOT/snapshots/<diffID hex>. The row exists only when the blob is in place. The snapshot of a
 * committed directory is in place at once; imported/loaded/pulled layers are unpacked while they
 * are imported (same single pass), except a tar that cannot be unpacked, which is stored anyway
 * and unpacked on first use: call sw_snapshot_ensure (or sw_image_lowerdirs, which
 * does) before using a snapshot. A layer that cannot be unpacked (an entry that would leave its
 * root: `..`, absolute names, links out or through symlinks, whiteouts outside) is refused at
 * the door by every import below, before anything of it is visible.
 * A diffID may have several blobs (gzip and zstd); lookups prefer the given media type. */

/* Commit an overlay-format directory made under ROOT/tmp (a RUN upper dir, a COPY dir):
 * sw_layer_write() produces the blob and the diffID in one pass, then the directory is renamed
 * to snapshots/<diffID hex> (or removed if that snapshot already exists) and the row is
 * recorded. comp NULL = sw_compression_default() (gzip). dir is consumed either way. */
int sw_layer_commit_dir(sw_store_t *s, const char *dir, const sw_compression_t *comp,
                        sw_layer_desc_t *out, sw_error_t *err);
/* A build step's layer without its blob: the tar of dir is hashed (diffID, tar_size; nothing
 * compressed or written), dir is renamed to snapshots/<diffID hex> and a snapshot row recorded
 * (enough for cache records: sw_cache_put accepts a diffID with a layer or a snapshot row).
 * *out gets diff_id and tar_size, and digest/size/media_type only if a blob of that diffID is
 * already stored (digest "" otherwise). dir is consumed either way. */
int sw_layer_commit_snapshot(sw_store_t *s, const char *dir, sw_layer_desc_t *out, sw_error_t *err);
/* sw_layer_commit_snapshot in two halves, so that the tar can be hashed on another thread while
 * the next step runs over dir: sw_layer_hash_dir only reads dir (diffID and tar size);
 * sw_layer_commit_hashed then renames dir to its snapshot and records the row, as
 * sw_layer_commit_snapshot does (dir is consumed by it, not by the hash). */
int sw_layer_hash_dir(const char *dir, char diff_id[SW_DIGEST_LEN + 1], int64_t *tar_size,
                      sw_error_t *err);
int sw_layer_commit_hashed(sw_store_t *s, const char *dir, const char *diff_id, int64_t tar_size,
                           sw_layer_desc_t *out, sw_error_t *err);
/* Complete a layer desc whose digest is "": a stored blob of its diffID (any media type,
 * comp's preferred), else a blob made from its snapshot with comp (NULL = gzip), stored and
 * recorded as a layer row. Thread-safe; several callers may race (same bytes, first wins). */
int sw_layer_make_blob(sw_store_t *s, sw_layer_desc_t *l, const sw_compression_t *comp,
                       sw_error_t *err);
/* sw_layer_make_blob for every layer of img (sw_image_commit does it with the default codec). */
int sw_image_make_blobs(sw_store_t *s, sw_image_t *img, const sw_compression_t *comp,
                        sw_error_t *err);
/* Import a layer blob (compressed or not, as media_type says; NULL = detect) from in_fd: stored
 * as is, decompressed once to get the diffID, checked against expected_digest /
 * expected_diff_id when given (a registry pull knows both). An existing layer with that digest
 * is a hit (in_fd is not read). Unpacked into its snapshot in the same pass (a blob stored
 * already is read once more for that, unless its snapshot exists). */
int sw_layer_import(sw_store_t *s, int in_fd, const char *media_type, const char *expected_digest,
                    const char *expected_diff_id, sw_layer_desc_t *out, sw_error_t *err);
/* sw_layer_import of a file under ROOT/tmp (a registry download): the file itself becomes the
 * blob (renamed into blobs/ on success: no copy); on failure it is left for the caller. */
int sw_layer_import_path(sw_store_t *s, const char *tmp_path, const char *media_type,
                         const char *expected_digest, const char *expected_diff_id,
                         sw_layer_desc_t *out, sw_error_t *err);
/* Import a plain or gzip/zstd *rootfs tar* (slipway import): one streaming pass decompresses,
 * hashes (diffID), recompresses (comp NULL = gzip) and unpacks the snapshot. */
int sw_layer_import_tar(sw_store_t *s, int in_fd, const sw_compression_t *comp,
                        sw_layer_desc_t *out, sw_error_t *err);
/* A layer read, verified and unpacked under ROOT/tmp, not yet visible. A door that takes
 * several layers (load, pull) stages them all before it commits any, so a refused layer leaves
 * nothing stored: no blob, no snapshot, no row. */
typedef struct {
  sw_layer_desc_t desc;
  char *tmp; /* the blob's temp file, renamed into blobs/ by the commit; NULL: stored already */
  bool kept; /* tmp is the caller's (a download): sw_layer_staged_clear leaves it */
  char *dir; /* the unpacked snapshot in tmp/; NULL: in place already */
  bool row;  /* the layer row exists */
} sw_layer_staged_t;
/* sw_layer_import in two halves. kept: a file under ROOT/tmp holding the bytes of in_fd (it
 * becomes the blob), or NULL (they are copied). A stored layer is a hit (in_fd not read; its
 * snapshot unpacked from the blob if missing). */
int sw_layer_stage(sw_store_t *s, int in_fd, const char *kept, const char *media_type,
                   const char *expected_digest, const char *expected_diff_id,
                   sw_layer_staged_t *out, sw_error_t *err);
/* sw_layer_import_tar's first half; expected_diff_id (may be NULL) is checked, and wins over a
 * refused entry (a corrupt tar yields garbage entries). */
int sw_layer_stage_tar(sw_store_t *s, int in_fd, const sw_compression_t *comp,
                       const char *expected_diff_id, sw_layer_staged_t *out, sw_error_t *err);
/* Blob, then snapshot, then row. */
int sw_layer_stage_commit(sw_store_t *s, sw_layer_staged_t *st, sw_error_t *err);
/* Remove what was not committed (a kept file stays) and reset. */
void sw_layer_staged_clear(sw_layer_staged_t *st);
/* ---- smaller blobs for imported layers (reblob.c) ----
 * An imported layer is stored with the build's fast codec and marked: an image that ships it
 * gets a blob at comp_spec ("gzip:6"), made once, in the background of the first build that
 * ships it. */
int sw_reblob_mark(sw_store_t *s, const char *diff_id, const char *comp_spec, sw_error_t *err);
typedef struct sw_reblob_s sw_reblob_t;
/* Start making the blobs that img's marked layers still lack, on a thread at SCHED_IDLE. Never
 * fails (what cannot start is made by sw_reblob_apply); free with sw_reblob_free. */
sw_reblob_t *sw_reblob_start(sw_store_t *s, const sw_image_t *img);
/* Give each marked layer of img its smaller blob: the one made by r (waited for; *waited gets
 * the seconds, may be NULL), one stored before, or one made now. r may be NULL. */
int sw_reblob_apply(sw_store_t *s, sw_reblob_t *r, sw_image_t *img, double *waited,
                    sw_error_t *err);
/* Cancel what still runs (its temp file is removed) and free. */
void sw_reblob_free(sw_reblob_t *r);
static inline void
sw_reblob_freep(sw_reblob_t **r)
{
  sw_reblob_free(*r);
}

/* Find a layer by diffID (media_type: preferred blob type or NULL). */
int sw_layer_get(sw_store_t *s, const char *diff_id, const char *media_type, sw_layer_desc_t *out,
                 sw_error_t *err);
/* Find a layer by its blob digest. */
int sw_layer_get_by_digest(sw_store_t *s, const char *digest, sw_layer_desc_t *out,
                           sw_error_t *err);
/* Record a layer row for a blob already stored (e.g. a registry client that stored it itself).
 * snapshot_size 0 = layer->tar_size. */
int sw_layer_record(sw_store_t *s, const sw_layer_desc_t *layer, int64_t snapshot_size,
                    sw_error_t *err);
/* ROOT/snapshots/<diffID hex> (malloc'd). Exists once sw_snapshot_ensure succeeded. */
char *sw_snapshot_path(sw_store_t *s, const char *diff_id);
/* Unpack the layer's blob into its snapshot if it is not there yet (concurrent callers: each
 * unpacks into tmp/, the first rename wins). */
int sw_snapshot_ensure(sw_store_t *s, const char *diff_id, sw_error_t *err);
/* Unpack every layer of img that is not unpacked yet (sw_snapshot_ensure each). */
int sw_image_unpack(sw_store_t *s, const sw_image_t *img, sw_error_t *err);
/* Snapshot dirs of an image, top layer first, ready for overlayfs lowerdir=a:b:c. Calls
 * sw_image_unpack first; if that fails it warns and the missing dir makes the mount fail: call
 * sw_image_unpack yourself to get the error. NULL-terminated (free with sw_strv_free). */
char **sw_image_lowerdirs(sw_store_t *s, const sw_image_t *img);

/* ---- images ----
 * Names are normalised references ("docker.io/library/foo:latest"); giving a name to an image
 * takes it from any image that had it (which stays, untagged, until rmi or prune). */

/* Store img: serialise img->config (sw_json_dump) as the config blob, write an OCI manifest
 * blob, record the image and give it `names` (NULL-terminated, may be NULL; each parsed and
 * normalised). All its layers must be in the store. Fills img->config_digest,
 * manifest_digest, sizes, names. */
int sw_image_commit(sw_store_t *s, sw_image_t *img, char *const *names, sw_error_t *err);
/* Like sw_image_commit, but img->config_digest/config_size name a config blob already stored
 * (kept byte for byte, so the image ID is preserved: load of a docker-archive). */
int sw_image_commit_raw(sw_store_t *s, sw_image_t *img, char *const *names, sw_error_t *err);
/* Record an image whose manifest and config blobs are already stored (load, pull): the manifest
 * digest is preserved. */
int sw_image_commit_manifest(sw_store_t *s, const char *manifest_digest, char *const *names,
                             sw_image_t **out, sw_error_t *err);
/* Look up by name ("foo", "foo:tag", "docker.io/x/y@sha256:..."), by full or unambiguous
 * short image ID (config digest, with or without "sha256:", >= 4 hex chars) or by manifest
 * digest. *out gets the image with config, layers and names. Ambiguous prefix is an error.
 * A name or digest of an image index gives its image for the host platform (none: an error
 * listing the index's platforms, see sw_image_get_platform). */
int sw_image_get(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err);
/* Like sw_image_get but a missing image is an error naming ref (exit 1). */
int sw_image_find(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err);
int sw_image_tag(sw_store_t *s, const char *ref, const char *new_name, sw_error_t *err);
/* Remove a name; returns 1 if removed, 0 if the name was not there. */
int sw_image_untag(sw_store_t *s, const char *name, sw_error_t *err);
/* All images, newest first (config "created"), each with names. */
int sw_image_list(sw_store_t *s, sw_image_t ***out, size_t *n, sw_error_t *err);
void sw_image_list_free(sw_image_t **v, size_t n);
/* Who uses an image besides other images (rmi's caller finds them among the containers): the
 * short id of a running and of a stopped container using it, each NULL if none. */
typedef struct {
  const char *running, *stopped;
} sw_image_users_t;

/* Images built on img: their layers and history begin with all of img's and go on (a build
 * FROM img copies both and appends). The first such image's name (or ID) in *first (may be
 * NULL). Returns the count, -1 on error. */
int sw_image_children(sw_store_t *s, const sw_image_t *img, char **first, sw_error_t *err);

/* Remove an image by ref, as docker rmi does. By name: the name goes (a conflict if it is the
 * last and a container uses the image, unless force); once the last name is gone the image
 * goes too, unless images are built on it or a container runs it (it stays, untagged: their
 * layers are its layers). By ID or digest: a conflict if images are built on it or a
 * container runs it (even with force), or without force if it has several names or a stopped
 * container uses it; else every name goes and the image too. users may be NULL.
 * *untagged gets the names removed (normalised, NULL-terminated, never NULL on success),
 * *deleted whether the image went away. */
int sw_image_delete(sw_store_t *s, const char *ref, bool force, const sw_image_users_t *users,
                    char ***untagged, bool *deleted, sw_error_t *err);
/* Update last-used time (run / FROM use it, for prune ordering). */
int sw_image_touch(sw_store_t *s, const char *manifest_digest, sw_error_t *err);

/* ---- image indexes (multi-platform images; store_index.c) ----
 * An index: its blob (application/vnd.oci.image.index.v1+json) and its entries, each an image
 * of this store with its platform. A name names an image or an index, never both: naming one
 * takes the name from the other. An image listed by an index is kept by it (prune, rmi) as if
 * it had a name. */
typedef struct {
  char *manifest_digest;
  int64_t manifest_size;
  char *platform; /* "os/arch[/variant]" */
} sw_index_entry_t;
typedef struct {
  char *digest; /* the index blob */
  int64_t size;
  int64_t created; /* the newest entry's config "created" */
  sw_index_entry_t *entries;
  size_t n_entries;
  char **names; /* NULL-terminated */
} sw_index_t;
void sw_index_free(sw_index_t *idx);
static inline void
sw_index_freep(sw_index_t **idx)
{
  sw_index_free(*idx);
}
/* Write an index blob listing these images (NULL-terminated; recorded already; each platform
 * from its config, in the order given), record it, give it names (may be NULL). Two images of
 * one platform are refused. */
int sw_index_commit(sw_store_t *s, char *const *manifest_digests, char *const *names,
                    sw_index_t **out, sw_error_t *err);
/* sw_index_commit with each entry's platform given (platforms[i] for manifest_digests[i], as a
 * build's targets: BuildKit's index says the platform built for, whatever the config says). */
int sw_index_commit_platforms(sw_store_t *s, char *const *manifest_digests, char *const *platforms,
                              char *const *names, sw_index_t **out, sw_error_t *err);
/* Record an index whose blob is stored and whose every manifest is a recorded image (pull,
 * load): the digest is kept; each entry's platform is the blob's (else its config's). Entries
 * that are not recorded images are an error naming them, except BuildKit's attestation
 * manifests (platform unknown/unknown), which are left out of the rows. */
int sw_index_commit_blob(sw_store_t *s, const char *index_digest, char *const *names,
                         sw_index_t **out, sw_error_t *err);
/* Give the name `ref` (normalised here; a reference by digest names nothing: 0) to the image
 * image_id (a config digest) of `platform` without taking it from the images of other
 * platforms the name holds: nothing, or only that platform's image (it is replaced): the image
 * takes the name; else an index of the other platforms' images and this one does (a build's
 * base pulled for each of its targets). */
int sw_index_name_platform(sw_store_t *s, const char *ref, const char *image_id,
                           const char *platform, sw_error_t *err);
/* By name or (short, >= 4 hex) digest: 1 found, 0 not, -1 error (ambiguous prefix). out may be
 * NULL. */
int sw_index_get(sw_store_t *s, const char *ref, sw_index_t **out, sw_error_t *err);
/* All indexes, newest first, each with entries and names. */
int sw_index_list(sw_store_t *s, sw_index_t ***out, size_t *n, sw_error_t *err);
void sw_index_list_free(sw_index_t **v, size_t n);
/* The entry of idx for platform ("os/arch[/variant]", NULL: the host's; arm64 = arm64/v8);
 * NULL + an error listing the index's platforms and saying `--platform` when there is none. */
const sw_index_entry_t *sw_index_entry_for(const sw_index_t *idx, const char *platform,
                                           sw_error_t *err);
/* The host's platform, "linux/amd64" etc. */
const char *sw_host_platform(void);
/* Like sw_image_get; a ref naming an index gives its entry for platform (NULL: the host's);
 * none → an error listing the index's platforms and saying `--platform`. A ref naming an image
 * gives that image whatever platform says (the caller compares its config). */
int sw_image_get_platform(sw_store_t *s, const char *ref, const char *platform, sw_image_t **out,
                          sw_error_t *err);
/* Remove an index by ref, as sw_image_delete an image: a name of an index with other names is
 * only untagged; else (an ID with several names: only with force) the index row goes, and each
 * of its images not named and not in another index. *deleted (may be NULL) gets whether the
 * index went away. A ref that names no index is an error. sw_image_delete of an index's ref
 * calls this; an image listed by an index cannot be deleted (the error names the index). */
int sw_index_delete(sw_store_t *s, const char *ref, bool force, bool *deleted, sw_error_t *err);

/* ---- cache records (the build engine's step cache) ----
 * value: JSON text defined by the engine. diff_ids: NULL-terminated list of the layers the
 * record keeps alive (all layers of the step's resulting image, so GC keeps the chain).
 * size: bytes the record accounts for (the step's own layer), for --keep-storage. */
int sw_cache_get(sw_store_t *s, const char *key, char **value_out, sw_error_t *err);
int sw_cache_put(sw_store_t *s, const char *key, const char *value, char *const *diff_ids,
                 int64_t size, sw_error_t *err);
int sw_cache_delete(sw_store_t *s, const char *key, sw_error_t *err);
/* Predictions: the content hash a COPY --from step found last time, by the step's key without
 * its content (the engine's "stem"), and whether it found the same the time before
 * (confirmed). get: 1 found (*content_out allocated), 0 none. `prune -a` drops them with the
 * cache records. */
int sw_prediction_get(sw_store_t *s, const char *stem, char **content_out, bool *confirmed,
                      sw_error_t *err);
int sw_prediction_put(sw_store_t *s, const char *stem, const char *content, bool confirmed,
                      sw_error_t *err);

/* ---- usage and garbage collection ---- */
typedef struct {
  int64_t images, layers, cache_records;
  int64_t blob_bytes;     /* all blobs on disk */
  int64_t snapshot_bytes; /* sum of snapshot sizes (uncompressed tar sizes) */
} sw_store_usage_t;
int sw_store_usage(sw_store_t *s, sw_store_usage_t *u, sw_error_t *err);

typedef struct {
  bool all;             /* also remove images without a name (dangling) and all cache records */
  bool cache_only;      /* do not touch images */
  int64_t keep_storage; /* >0: evict least recently used cache records until the store's
                           unreferenced-by-images data fits in this many bytes */
  char *const *in_use;  /* IDs of images containers run: kept by `all` (may be NULL) */
} sw_prune_opts_t;
typedef struct {
  int64_t cache_records, images, layers, blobs;
  int64_t bytes;    /* reclaimed */
  char **leftovers; /* "PATH (SIZE)" of each leftover of a killed command removed (strv) */
} sw_prune_report_t;
/* Prune by opts then GC: remove blobs, layers/snapshots and tmp/ leftovers referenced by no
 * image and no kept cache record, and what killed commands left (stale leases, below). Free
 * rep->leftovers with sw_strv_free. Takes the store lock exclusively (waits for other slipway
 * processes using this ROOT). */
int sw_store_prune(sw_store_t *s, const sw_prune_opts_t *opts, sw_prune_report_t *rep,
                   sw_error_t *err);

/* ---- leftovers of killed commands (store_lease.c) ----
 * A command that makes something outside the store's rows (a `run --rm` container's writable
 * layer under ROOT/containers/, an output file's temp twin `F.tmp.<pid>`) leases it:
 * ROOT/leases/<name> names its path and stays flock'ed while the owner lives. When the owner
 * dies without releasing it (SIGKILL), the lock goes with it and prune removes the path and
 * reports it. Release the lease (sw_lease_free) once the thing is removed or kept for good. */
typedef struct sw_lease_s sw_lease_t;
sw_lease_t *sw_lease_new(sw_store_t *s, const char *path, sw_error_t *err);
void sw_lease_free(sw_lease_t *l);
/* Remove the paths of stale leases (their owners are gone); each is added to rep. */
void sw_lease_sweep(sw_store_t *s, sw_prune_report_t *rep);

/* ---- consistency check (store_fsck.c) ----
 * Takes the lock exclusively. Every layer blob is read once (digest and diffID verified) and its
 * entries compared with its snapshot's; snapshots without a blob are re-hashed (tar size);
 * every other blob is hashed; images' and cache records' references are followed. Each problem
 * (and each repair) is a line on out. repair: replace bad snapshots from their blobs, drop what
 * cannot be mended (bad blobs, their rows, images and cache records naming what is gone) and
 * empty the trash. */
typedef struct {
  bool repair;
  FILE *out;
} sw_fsck_opts_t;
typedef struct {
  int64_t blobs, snapshots, images, records; /* checked */
  int64_t problems, repaired;
} sw_fsck_report_t;
int sw_store_fsck(sw_store_t *s, const sw_fsck_opts_t *opts, sw_fsck_report_t *rep,
                  sw_error_t *err);

#endif
