/* slipway: store internals shared by store.c, blobstore.c, snapshot.c and store_image.c. */
#ifndef SW_STORE_INTERNAL_H
#define SW_STORE_INTERNAL_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

#define SW_STORE_SCHEMA_VERSION 2

struct sw_store_s {
  char *root;
  int root_fd;
  int lock_fd;
  sqlite3 *db;
  pthread_mutex_t mu; /* recursive: guards db and the transaction depth */
  int depth;          /* nesting of db_begin in the thread holding mu */
  int held;           /* nesting of mu itself (lock + begin) */
  bool failed;        /* an inner call failed: the outermost end rolls back */
  char **touched;     /* cache keys read this second-or-later: last_used bumped at close */
  char *purge_name;   /* ROOT/purge/<name>, prepared for sw_store_purge_start */
};

/* Take the mutex and open (or nest into) a write transaction. */
int sw_db_begin(sw_store_t *s, sw_error_t *err);
/* End one level: ok=false marks the transaction failed. The outermost level commits (unless
 * failed) or rolls back. Returns -1 with err if the commit failed or ok was false at the top. */
int sw_db_end(sw_store_t *s, bool ok, sw_error_t *err);
/* Read access: just the mutex. */
void sw_db_lock(sw_store_t *s);
void sw_db_unlock(sw_store_t *s);
int sw_db_error(sw_store_t *s, sw_error_t *err, const char *what);
/* Prepare a statement (error names the SQL). Statements are cached per connection (parsing SQL
 * was a tenth of a no-op rebuild): the same SQL text gets the same compiled statement back when
 * no one holds it. Give it back with sw_db_release (reset, bindings cleared), which the
 * _cleanup_stmt_ attribute does. */
sqlite3_stmt *sw_db_prepare(sw_store_t *s, const char *sql, sw_error_t *err);
void sw_db_release(sqlite3_stmt *st);
static inline void
sw_db_finalizep(sqlite3_stmt **st)
{
  sw_db_release(*st);
}
#define _cleanup_stmt_ _cleanup_(sw_db_finalizep)
/* The single integer a query such as "SELECT COUNT(*) …" returns; -1 and *err on failure. */
int64_t sw_db_scalar(sw_store_t *s, const char *sql, sw_error_t *err);
/* Write the last_used times sw_cache_get deferred (at close, and before prune orders by them). */
void sw_db_flush_touched(sw_store_t *s);
/* Run a statement to completion (no rows expected). */
int sw_db_exec(sw_store_t *s, const char *sql, sw_error_t *err);

/* Trade this process's shared store lock for the exclusive one (waits for the other slipway
 * processes on the store: GC, fsck), and back. */
int sw_store_lock_exclusive(sw_store_t *s, sw_error_t *err);
void sw_store_lock_shared(sw_store_t *s);

/* ---- deletion: invisible first (ROOT/trash), removed after ----
 * A thing in the store is deleted by renaming it into ROOT/trash (atomic: readers see it
 * complete or not at all), then removing it there. The trash is emptied only by a process that
 * holds the store lock exclusively (store open when alone, prune, fsck): a build or a container
 * of another process may still use what was trashed (an overlay lower dir). */
/* Rename name (relative to dfd; AT_FDCWD for a path) into the trash. A missing name is not an
 * error. */
int sw_store_trash_at(sw_store_t *s, int dfd, const char *name, sw_error_t *err);
/* Remove everything in the trash (and ROOT/purge/, after stopping this process's purge);
 * returns the bytes freed. Lock held exclusively. */
int64_t sw_store_empty_trash(sw_store_t *s);
/* At open, alone on the store (lock held exclusively): move ROOT/trash, ROOT/tmp and what earlier
 * purges left in ROOT/purge/ into one new ROOT/purge/<name> (renames only: nobody else can be
 * using them). On a filesystem with little room it is removed at once. */
void sw_store_purge_prepare(sw_store_t *s);
/* Then, with the shared lock: remove it in a thread of low priority while the command runs, so
 * that no command waits for a deletion it did not ask for. The thread is not waited for: the
 * process's exit ends it, and the next purge takes what is left. */
void sw_store_purge_start(sw_store_t *s);
/* Stop this process's purge and wait for it (prune and fsck --repair, before they empty
 * ROOT/purge themselves). */
void sw_store_purge_end(sw_store_t *s);
/* Put the complete directory dir in place as the snapshot of diff_id (what was there goes to
 * the trash). dir is consumed on success. */
int sw_snapshot_commit(sw_store_t *s, const char *dir, const char *diff_id, sw_error_t *err);
/* Disk bytes of a tree (st_blocks of regular files). */
int64_t sw_tree_bytes(int dfd, const char *name);

/* An image by exact manifest digest, if it is recorded (a row of images): 1, 0 not, -1. */
int sw_image_load_recorded(sw_store_t *s, const char *manifest_digest, sw_image_t **out,
                           sw_error_t *err);
/* sw_image_get without indexes: names, IDs and digests of images only. */
int sw_image_get_plain(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err);

/* "sha256:<hex>" -> pointer to hex, NULL if malformed. */
const char *sw_digest_hex(const char *digest);

#endif
