/* slipway: prune and garbage collection. GC runs with the store lock held exclusively, so no
 * other process is between writing a blob/snapshot and recording the row that references it.
 * Rows go first (one transaction), then files not named by any remaining row are removed: a
 * crash in the middle leaves orphan files that the next GC removes, never a row without data.
 * A snapshot is never deleted in place: it is renamed into ROOT/trash first, so a kill during
 * the removal of its files leaves nothing partial under snapshots/ (issue 18). */
#include "store_internal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Bytes held by cache records only (not by any image): what --keep-storage bounds. */
static const char cache_only_bytes_sql[] =
    "SELECT (SELECT COALESCE(SUM(size + tar_size), 0) FROM layers "
    "WHERE diff_id IN (SELECT diff_id FROM cache_layers) "
    "AND digest NOT IN (SELECT digest FROM image_layers) "
    "AND diff_id NOT IN (SELECT diff_id FROM image_layers)) + "
    "(SELECT COALESCE(SUM(tar_size), 0) FROM snapshots "
    "WHERE diff_id IN (SELECT diff_id FROM cache_layers) "
    "AND diff_id NOT IN (SELECT diff_id FROM layers) "
    "AND diff_id NOT IN (SELECT diff_id FROM image_layers))";

static int
exec_count(sw_store_t *s, const char *sql, int64_t *count, sw_error_t *err)
{
  if (sw_db_exec(s, sql, err) < 0)
    return -1;
  if (count)
    *count += sqlite3_changes(s->db);
  return 0;
}

/* Evict least recently used cache records until the cache-only bytes fit in keep. */
static int
evict_lru(sw_store_t *s, int64_t keep, sw_prune_report_t *rep, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *lru =
      sw_db_prepare(s, "SELECT key FROM cache ORDER BY last_used, created LIMIT 1", err);
  _cleanup_stmt_ sqlite3_stmt *del = sw_db_prepare(s, "DELETE FROM cache WHERE key = ?", err);
  if (!lru || !del)
    return -1;
  for (;;) {
    int64_t bytes = sw_db_scalar(s, cache_only_bytes_sql, err);
    if (bytes < 0)
      return -1;
    if (bytes <= keep)
      return 0;
    sqlite3_reset(lru);
    if (sqlite3_step(lru) != SQLITE_ROW)
      return 0;
    sqlite3_reset(del);
    sqlite3_bind_text(del, 1, (const char *)sqlite3_column_text(lru, 0), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(del) != SQLITE_DONE)
      return sw_db_error(s, err, "evict cache record");
    rep->cache_records++;
  }
}

/* Images without a name, but those an index lists or a container still runs (in_use: image
 * IDs). */
static int
drop_unnamed(sw_store_t *s, char *const *in_use, int64_t *count, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *sel =
      sw_db_prepare(s,
                    "SELECT manifest_digest, config_digest FROM images WHERE manifest_digest "
                    "NOT IN (SELECT manifest_digest FROM names) AND manifest_digest NOT IN "
                    "(SELECT manifest_digest FROM index_entries)",
                    err);
  _cleanup_stmt_ sqlite3_stmt *del =
      sw_db_prepare(s, "DELETE FROM images WHERE manifest_digest = ?", err);
  _cleanup_strv_ char **doomed = xcalloc(1, sizeof(char *));
  if (!sel || !del)
    return -1;
  while (sqlite3_step(sel) == SQLITE_ROW)
    if (!sw_strv_contains(in_use, (const char *)sqlite3_column_text(sel, 1)))
      sw_strv_push(&doomed, (const char *)sqlite3_column_text(sel, 0));
  for (char **m = doomed; *m; m++) {
    sqlite3_reset(del);
    sqlite3_bind_text(del, 1, *m, -1, SQLITE_STATIC);
    if (sqlite3_step(del) != SQLITE_DONE)
      return sw_db_error(s, err, "delete image");
    (*count)++;
  }
  return 0;
}

static int
prune_rows(sw_store_t *s, const sw_prune_opts_t *o, sw_prune_report_t *rep, sw_error_t *err)
{
  int64_t predictions = 0;
  if (o->all && (exec_count(s, "DELETE FROM cache", &rep->cache_records, err) < 0 ||
                 exec_count(s, "DELETE FROM predictions", &predictions, err) < 0))
    return -1;
  if (!o->all && o->keep_storage > 0 && evict_lru(s, o->keep_storage, rep, err) < 0)
    return -1;
  /* An index without a name is dangling as an image is; an image an index lists is kept. */
  if (o->all && !o->cache_only &&
      (exec_count(s,
                  "DELETE FROM indexes WHERE digest NOT IN (SELECT index_digest FROM index_names)",
                  &rep->images, err) < 0 ||
       drop_unnamed(s, o->in_use, &rep->images, err) < 0))
    return -1;
  /* A layer stays if an image uses its blob, or a cache record or image uses its diffID (the
   * snapshot is what builds need; a blob of that diffID comes along). */
  if (exec_count(s,
                 "DELETE FROM layers WHERE digest NOT IN (SELECT digest FROM image_layers) "
                 "AND diff_id NOT IN (SELECT diff_id FROM image_layers) "
                 "AND diff_id NOT IN (SELECT diff_id FROM cache_layers)",
                 &rep->layers, err) < 0)
    return -1;
  if (sw_db_exec(s, "DELETE FROM reblob WHERE diff_id NOT IN (SELECT diff_id FROM layers)", err) <
      0)
    return -1;
  /* Snapshots of build steps whose blob was never made: kept by the same references (counted
   * as layers unless a layer row, counted above, had the same diffID). */
  return exec_count(s,
                    "DELETE FROM snapshots WHERE diff_id NOT IN (SELECT diff_id FROM layers) "
                    "AND diff_id NOT IN (SELECT diff_id FROM image_layers) "
                    "AND diff_id NOT IN (SELECT diff_id FROM cache_layers)",
                    &rep->layers, err) < 0 ||
                 exec_count(s,
                            "DELETE FROM snapshots WHERE "
                            "diff_id NOT IN (SELECT diff_id FROM image_layers) "
                            "AND diff_id NOT IN (SELECT diff_id FROM cache_layers)",
                            NULL, err) < 0
             ? -1
             : 0;
}

/* Names of everything still referenced: blob hexes and snapshot hexes, "b:<hex>" / "s:<hex>". */
static int
referenced(sw_store_t *s, char ***out, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s,
                    "SELECT 'b:' || substr(manifest_digest, 8) FROM images "
                    "UNION SELECT 'b:' || substr(digest, 8) FROM indexes "
                    "UNION SELECT 'b:' || substr(config_digest, 8) FROM images "
                    "UNION SELECT 'b:' || substr(digest, 8) FROM layers "
                    "UNION SELECT 's:' || substr(diff_id, 8) FROM layers "
                    "UNION SELECT 's:' || substr(diff_id, 8) FROM snapshots ORDER BY 1",
                    err);
  char **v = xcalloc(1, sizeof(*v));
  if (st == NULL) {
    free(v);
    return -1;
  }
  while (sqlite3_step(st) == SQLITE_ROW)
    sw_strv_push(&v, (const char *)sqlite3_column_text(st, 0));
  *out = v;
  return 0;
}

static int
cmp_strp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_referenced(char **refs, size_t n, char kind, const char *name)
{
  char key[300];
  const char *k = key;
  snprintf(key, sizeof(key), "%c:%s", kind, name);
  return bsearch(&k, refs, n, sizeof(char *), cmp_strp) != NULL;
}

int64_t
sw_tree_bytes(int dfd, const char *name)
{
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  if (!S_ISDIR(st.st_mode))
    return S_ISREG(st.st_mode) ? st.st_blocks * 512 : 0;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return 0;
  DIR *d = fdopendir(fd);
  int64_t n = 0;
  struct dirent *e;
  if (d == NULL) {
    close(fd);
    return 0;
  }
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n += sw_tree_bytes(dirfd(d), e->d_name);
  closedir(d);
  return n;
}

/* Remove every entry of ROOT/sub; returns the bytes freed. */
static int64_t
empty_dir(sw_store_t *s, const char *sub)
{
  _cleanup_free_ char *path = sw_store_path(s, sub);
  _cleanup_dir_ DIR *d = opendir(path);
  struct dirent *e;
  sw_error_t err = NULL;
  int64_t bytes = 0;
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    bytes += sw_tree_bytes(dirfd(d), e->d_name);
    if (sw_rm_rf_at(dirfd(d), e->d_name, &err) < 0) {
      sw_warn("emptying `%s`: %s", path, err->msg);
      sw_error_release(&err);
    }
  }
  return bytes;
}

int64_t
sw_store_empty_trash(sw_store_t *s)
{
  sw_store_purge_end(s);
  return empty_dir(s, "trash") + empty_dir(s, "purge");
}

/* ---- the purge ----
 * Emptying the trash used to be the first thing a command alone on the store did: 10,000 files
 * of a build's work dirs made the next no-op rebuild 5 times slower than the build itself, and a
 * large trash (a container's upper dir, snapshots replaced by --no-cache) could hold a command
 * for tens of seconds. */

/* Below this much free room, the trash is emptied before the command goes on, as it was. */
#define PURGE_SYNC_BELOW ((int64_t)1 << 30)

/* One purge per process, outliving the store handle that started it: a command never waits for
 * it (its exit ends it; what is left stays for the next one), only prune and fsck --repair do. */
static struct {
  pthread_mutex_t mu;
  bool running;
  pid_t pid; /* a child forked after the start has no such thread */
  pthread_t thread;
  pid_t tid;
  int dfd; /* ROOT/purge */
  char *name;
  int stop;
} purge = {.mu = PTHREAD_MUTEX_INITIALIZER, .dfd = -1};

static bool
dir_is_empty(int dfd, const char *name)
{
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return true;
  _cleanup_dir_ DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return true;
  }
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      return false;
  return true;
}

/* Move ROOT/sub to dst (relative to root) and make a new empty one. */
static void
purge_move_dir(sw_store_t *s, const char *sub, const char *dst)
{
  if (dir_is_empty(s->root_fd, sub))
    return;
  if (renameat(s->root_fd, sub, s->root_fd, dst) < 0) {
    sw_debug("store `%s`: move `%s` to `%s`: %s", s->root, sub, dst, strerror(errno));
    return;
  }
  if (mkdirat(s->root_fd, sub, 0700) < 0 && errno != EEXIST)
    sw_debug("store `%s`: create `%s`: %s", s->root, sub, strerror(errno));
}

/* Low priority (nice 10, the lowest best-effort I/O class) or back to normal, for thread tid. */
static void
purge_priority(pid_t tid, bool low)
{
  setpriority(PRIO_PROCESS, (id_t)tid, low ? 10 : 0);
  /* ioprio_set(IOPRIO_WHO_PROCESS, tid, class << 13 | level): best effort 7, or none (0). */
  syscall(SYS_ioprio_set, 1, (int)tid, low ? (2 << 13) | 7 : 0);
}

static void *
purge_main(void *arg)
{
  (void)arg;
  pid_t tid = (pid_t)syscall(SYS_gettid);
  purge_priority(tid, true);
  __atomic_store_n(&purge.tid, tid, __ATOMIC_RELEASE);
  sw_error_t err = NULL;
  if (sw_rm_rf_at_until(purge.dfd, purge.name, &purge.stop, &err) < 0) {
    sw_debug("purging `purge/%s`: %s", purge.name, err->msg);
    sw_error_release(&err);
  }
  return NULL;
}

void
sw_store_purge_prepare(sw_store_t *s)
{
  if (dir_is_empty(s->root_fd, "trash") && dir_is_empty(s->root_fd, "tmp") &&
      dir_is_empty(s->root_fd, "purge"))
    return;
  _cleanup_free_ char *tmpl = sw_store_path(s, "purge/XXXXXX");
  if (mkdtemp(tmpl) == NULL) {
    sw_debug("store `%s`: create `%s`: %s", s->root, tmpl, strerror(errno));
    return;
  }
  const char *name = strrchr(tmpl, '/') + 1;
  /* What earlier purges left (their processes are gone: we are alone). */
  _cleanup_close_ int pfd = openat(s->root_fd, "purge", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_dir_ DIR *d = pfd >= 0 ? fdopendir(dup(pfd)) : NULL;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
        strcmp(e->d_name, name) != 0) {
      _cleanup_free_ char *dst = xasprintf("%s/%s", name, e->d_name);
      if (renameat(pfd, e->d_name, pfd, dst) < 0)
        sw_debug("store `%s`: move `purge/%s`: %s", s->root, e->d_name, strerror(errno));
    }
  _cleanup_free_ char *trash = xasprintf("purge/%s/trash", name);
  _cleanup_free_ char *tmp = xasprintf("purge/%s/tmp", name);
  purge_move_dir(s, "trash", trash);
  purge_move_dir(s, "tmp", tmp);
  int64_t room = sw_fs_free_bytes(s->root);
  if (room < 0 || room >= PURGE_SYNC_BELOW) {
    s->purge_name = xstrdup(name);
    return;
  }
  sw_error_t err = NULL;
  if (pfd >= 0 && sw_rm_rf_at(pfd, name, &err) < 0) {
    sw_warn("emptying `%s/purge`: %s", s->root, err->msg);
    sw_error_release(&err);
  }
}

void
sw_store_purge_start(sw_store_t *s)
{
  _cleanup_free_ char *name = steal_ptr(&s->purge_name);
  if (name == NULL)
    return;
  pthread_mutex_lock(&purge.mu);
  /* One at a time: a second open in this process leaves its batch to the next purge. */
  if (!purge.running || purge.pid != getpid()) {
    if (purge.dfd >= 0)
      close(purge.dfd);
    free(purge.name);
    purge.dfd = openat(s->root_fd, "purge", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    purge.name = steal_ptr(&name);
    purge.stop = 0;
    purge.tid = 0;
    purge.running = purge.dfd >= 0 && pthread_create(&purge.thread, NULL, purge_main, NULL) == 0;
    purge.pid = getpid();
  }
  pthread_mutex_unlock(&purge.mu);
}

void
sw_store_purge_end(sw_store_t *s)
{
  (void)s;
  pthread_mutex_lock(&purge.mu);
  if (purge.running && purge.pid == getpid()) {
    __atomic_store_n(&purge.stop, 1, __ATOMIC_RELAXED);
    /* Noticed after the removal under way, which should not crawl at low priority. */
    pid_t tid = __atomic_load_n(&purge.tid, __ATOMIC_ACQUIRE);
    if (tid > 0)
      purge_priority(tid, false);
    pthread_join(purge.thread, NULL);
    purge.running = false;
  }
  pthread_mutex_unlock(&purge.mu);
}

/* Drop entries of ROOT/sub not referenced (kind 'b' or 's'; kind 0 drops everything). trash:
 * a tree others may read (snapshot, cache mount) goes out of sight first (the caller empties
 * the trash); else removed in place (a blob file: unlink is atomic; tmp/: nobody reads it). */
static int
sweep(sw_store_t *s, const char *sub, char kind, bool trash, char **refs, size_t n, int64_t *count,
      int64_t *bytes, sw_error_t *err)
{
  _cleanup_free_ char *path = sw_store_path(s, sub);
  _cleanup_dir_ DIR *d = opendir(path);
  struct dirent *e;
  if (d == NULL)
    return errno == ENOENT ? 0 : sw_error(err, errno, "open `%s`", path);
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (kind && is_referenced(refs, n, kind, e->d_name))
      continue;
    int r;
    if (trash) {
      r = sw_store_trash_at(s, dirfd(d), e->d_name, err);
    } else {
      *bytes += sw_tree_bytes(dirfd(d), e->d_name);
      r = sw_rm_rf_at(dirfd(d), e->d_name, err);
    }
    if (r < 0)
      return sw_error_wrap(err, "garbage collection in `%s`", path);
    if (count)
      (*count)++;
  }
  return 0;
}

static int
gc_files(sw_store_t *s, bool all, sw_prune_report_t *rep, sw_error_t *err)
{
  _cleanup_strv_ char **refs = NULL;
  sw_db_lock(s);
  int r = referenced(s, &refs, err);
  sw_db_unlock(s);
  if (r < 0)
    return -1;
  size_t n = sw_strv_len(refs);
  qsort(refs, n, sizeof(char *), cmp_strp);
  if (sweep(s, "blobs/sha256", 'b', false, refs, n, &rep->blobs, &rep->bytes, err) < 0 ||
      sweep(s, "snapshots", 's', true, refs, n, NULL, &rep->bytes, err) < 0 ||
      sweep(s, "tmp", 0, false, refs, n, NULL, &rep->bytes, err) < 0)
    return -1;
  /* RUN --mount=type=cache directories are build cache too: -a drops them (docker builder
   * prune -a does). */
  if (all && sweep(s, "mounts", 0, true, refs, n, NULL, &rep->bytes, err) < 0)
    return -1;
  sw_lease_sweep(s, rep);
  rep->bytes += sw_store_empty_trash(s);
  return 0;
}

int
sw_store_prune(sw_store_t *s, const sw_prune_opts_t *opts, sw_prune_report_t *rep, sw_error_t *err)
{
  sw_prune_opts_t none = {0};
  const sw_prune_opts_t *o = opts ? opts : &none;
  memset(rep, 0, sizeof(*rep));
  sw_db_flush_touched(s);

  if (sw_store_lock_exclusive(s, err) < 0)
    return -1;
  int r = sw_db_begin(s, err);
  if (r == 0)
    r = sw_db_end(s, prune_rows(s, o, rep, err) == 0, err);
  if (r == 0)
    r = gc_files(s, o->all, rep, err);
  sw_store_lock_shared(s);
  return r;
}
