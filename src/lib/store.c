/* slipway: the store: ROOT layout, the lock, the SQLite metadata (schema, transactions), cache
 * records, usage and garbage collection. Blobs are in blobstore.c, layers and snapshots in
 * snapshot.c, images in store_image.c. See store.h for the contract. */
#include "store_internal.h"
#include "userns.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

static const char *const layout_dirs[] = {"blobs", "blobs/sha256", "snapshots",
                                          "tmp",   "mounts",       "containers",
                                          "trash", "leases",       "purge"};

/* Schema migrations: index i brings user_version i to i+1. */
static const char *const migrations[] = {
    "CREATE TABLE layers ("
    "  digest TEXT PRIMARY KEY, diff_id TEXT NOT NULL, size INTEGER NOT NULL,"
    "  media_type TEXT NOT NULL, tar_size INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE INDEX layers_diff_id ON layers(diff_id);"
    "CREATE TABLE images ("
    "  manifest_digest TEXT PRIMARY KEY, config_digest TEXT NOT NULL,"
    "  manifest_size INTEGER NOT NULL, config_size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, last_used INTEGER NOT NULL);"
    "CREATE INDEX images_config ON images(config_digest);"
    "CREATE TABLE image_layers ("
    "  manifest_digest TEXT NOT NULL REFERENCES images ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, digest TEXT NOT NULL, diff_id TEXT NOT NULL,"
    "  PRIMARY KEY (manifest_digest, idx));"
    "CREATE INDEX image_layers_digest ON image_layers(digest);"
    "CREATE TABLE names ("
    "  name TEXT PRIMARY KEY,"
    "  manifest_digest TEXT NOT NULL REFERENCES images ON DELETE CASCADE,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX names_manifest ON names(manifest_digest);"
    "CREATE TABLE cache ("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL, size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, last_used INTEGER NOT NULL);"
    "CREATE TABLE cache_layers ("
    "  key TEXT NOT NULL REFERENCES cache ON DELETE CASCADE, diff_id TEXT NOT NULL,"
    "  PRIMARY KEY (key, diff_id));"
    "CREATE INDEX cache_layers_diff_id ON cache_layers(diff_id);",
    /* 2: a build step's snapshot committed without a blob yet (the blob is made when an image
     * that uses the layer is committed); the row means the snapshot dir is in place. */
    "CREATE TABLE snapshots ("
    "  diff_id TEXT PRIMARY KEY, tar_size INTEGER NOT NULL, created INTEGER NOT NULL);",
    /* 3: an imported layer stored with the fast codec gets a blob at `compression` when an
     * image ships it (reblob.c); digest: that blob once made, else "". */
    "CREATE TABLE reblob ("
    "  diff_id TEXT PRIMARY KEY, compression TEXT NOT NULL, digest TEXT NOT NULL DEFAULT '');",
    /* 4: the content hash a COPY --from step last found, by the step's key without it, and
     * whether the step found the same the time before too: the engine runs ahead on a
     * confirmed one while the source stage still works (solve-copy.c, speculate()). */
    "CREATE TABLE predictions ("
    "  stem TEXT PRIMARY KEY, content TEXT NOT NULL, confirmed INTEGER NOT NULL);",
    /* 5: image indexes (store_index.c): the index blob, its entries (images of this store, in
     * the blob's order, each with its platform) and its names (a name is in `names` or here,
     * never both). An entry keeps its image (no cascade from images: rmi refuses first). */
    "CREATE TABLE indexes ("
    "  digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE index_entries ("
    "  index_digest TEXT NOT NULL REFERENCES indexes ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, manifest_digest TEXT NOT NULL REFERENCES images,"
    "  manifest_size INTEGER NOT NULL, platform TEXT NOT NULL,"
    "  PRIMARY KEY (index_digest, idx));"
    "CREATE INDEX index_entries_manifest ON index_entries(manifest_digest);"
    "CREATE TABLE index_names ("
    "  name TEXT PRIMARY KEY,"
    "  index_digest TEXT NOT NULL REFERENCES indexes ON DELETE CASCADE,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX index_names_digest ON index_names(index_digest);",
};

/* ---- database helpers ---- */

/* ---- a full filesystem ----
 * SQLite needs a little room to open a WAL database (its -shm index) and to commit (WAL
 * frames), so on a full filesystem every command would fail, even those that free space.
 * ROOT/reserve holds STORE_RESERVE bytes set aside while there is room: a command that frees
 * space (rmi, prune) releases it when it finds the filesystem full, and the next open that finds
 * room again makes it anew. A reader (images, inspect, history, save) needs no room: in
 * exclusive locking mode SQLite keeps the WAL index in memory. */
#define STORE_RESERVE ((int64_t)4 << 20)

char *
sw_store_full_note(const char *root)
{
  _cleanup_free_ char *mnt = sw_mount_point(root);
  return xasprintf("the store's filesystem (`%s`, mounted on `%s`) is full (%s): free space or "
                   "run `slipway prune`",
                   root, mnt, strerror(ENOSPC));
}

/* Is there no room for 64 KiB (SQLite's -shm index and a few WAL frames) on root's filesystem?
 * Asked of the filesystem itself: statvfs counts as free what ext4 keeps for its own use. */
static bool
fs_full(const char *root)
{
  _cleanup_free_ char *tmp = xasprintf("%s/tmp", root);
  _cleanup_close_ int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == ENOSPC;
  return posix_fallocate(fd, 0, 64 << 10) == ENOSPC;
}

/* Did the last database call fail for want of space? (SQLite does not keep the errno of every
 * failed call: an -shm it could not extend is a bare SQLITE_IOERR_SHMSIZE.) */
static bool
db_full(sw_store_t *s)
{
  int primary = sqlite3_extended_errcode(s->db) & 0xff;
  if (primary == SQLITE_FULL || sqlite3_system_errno(s->db) == ENOSPC)
    return true;
  return (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) && fs_full(s->root);
}

int
sw_store_error_full(const char *root, sw_error_t *err)
{
  if (err == NULL || *err == NULL || strstr((*err)->msg, "store's filesystem"))
    return -1;
  if ((*err)->status != ENOSPC && strstr((*err)->msg, strerror(ENOSPC)) == NULL && !fs_full(root))
    return -1;
  _cleanup_free_ char *note = sw_store_full_note(root);
  char *msg = xasprintf("%s; %s", (*err)->msg, note);
  free((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

int
sw_db_error(sw_store_t *s, sw_error_t *err, const char *what)
{
  int rc = sqlite3_errcode(s->db);
  _cleanup_free_ char *note = db_full(s) ? sw_store_full_note(s->root) : NULL;
  return sw_error(err, 0, "store `%s`: %s: %s%s%s%s", s->root, what, sqlite3_errmsg(s->db),
                  rc == SQLITE_BUSY ? " (another slipway holds the database; retry)" : "",
                  note ? "; " : "", note ? note : "");
}

/* The statement cache: process-wide (few stores are open; callers hold their store's mutex, this
 * one only guards the table). An entry in use is not handed out twice, so nested users of the
 * same SQL get a statement each; when the table is full, statements are simply finalized. */
#define STMT_CACHE_SIZE 48
static struct {
  sqlite3 *db;
  char *sql;
  sqlite3_stmt *st;
  bool in_use;
} stmt_cache[STMT_CACHE_SIZE];
static pthread_mutex_t stmt_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static sqlite3_stmt *
stmt_cache_take(sqlite3 *db, const char *sql)
{
  sqlite3_stmt *st = NULL;
  pthread_mutex_lock(&stmt_cache_mu);
  for (size_t i = 0; i < STMT_CACHE_SIZE && st == NULL; i++)
    if (stmt_cache[i].db == db && !stmt_cache[i].in_use && strcmp(stmt_cache[i].sql, sql) == 0) {
      stmt_cache[i].in_use = true;
      st = stmt_cache[i].st;
    }
  pthread_mutex_unlock(&stmt_cache_mu);
  return st;
}

static void
stmt_cache_add(sqlite3 *db, const char *sql, sqlite3_stmt *st)
{
  pthread_mutex_lock(&stmt_cache_mu);
  for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
    if (stmt_cache[i].db == NULL) {
      stmt_cache[i].db = db;
      stmt_cache[i].sql = xstrdup(sql);
      stmt_cache[i].st = st;
      stmt_cache[i].in_use = true;
      break;
    }
  pthread_mutex_unlock(&stmt_cache_mu);
}

/* Finalize every cached statement of db (before closing it). */
static void
stmt_cache_drop(sqlite3 *db)
{
  pthread_mutex_lock(&stmt_cache_mu);
  for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
    if (stmt_cache[i].db == db) {
      sqlite3_finalize(stmt_cache[i].st);
      free(stmt_cache[i].sql);
      memset(&stmt_cache[i], 0, sizeof(stmt_cache[i]));
    }
  pthread_mutex_unlock(&stmt_cache_mu);
}

void
sw_db_release(sqlite3_stmt *st)
{
  if (st == NULL)
    return;
  pthread_mutex_lock(&stmt_cache_mu);
  for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
    if (stmt_cache[i].st == st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      stmt_cache[i].in_use = false;
      pthread_mutex_unlock(&stmt_cache_mu);
      return;
    }
  pthread_mutex_unlock(&stmt_cache_mu);
  sqlite3_finalize(st);
}

sqlite3_stmt *
sw_db_prepare(sw_store_t *s, const char *sql, sw_error_t *err)
{
  sqlite3_stmt *st = stmt_cache_take(s->db, sql);
  if (st)
    return st;
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    sw_db_error(s, err, sql);
    return NULL;
  }
  stmt_cache_add(s->db, sql, st);
  return st;
}

/* One statement, run to completion through the cache (BEGIN, COMMIT: sqlite3_exec would parse
 * them every time). */
static int
db_step(sw_store_t *s, const char *sql, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  if (st == NULL)
    return -1;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return sw_db_error(s, err, sql);
  return 0;
}

int
sw_db_exec(sw_store_t *s, const char *sql, sw_error_t *err)
{
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    int r = sw_error(err, 0, "store `%s`: %.60s: %s", s->root, sql, msg ? msg : "failed");
    sqlite3_free(msg);
    return r;
  }
  return 0;
}

/* A statement left stepped keeps a read transaction (an old WAL snapshot) open on the shared
 * connection; another thread's BEGIN IMMEDIATE would then fail at once with SQLITE_BUSY (no
 * busy wait can help). So when the last holder lets go of the connection, every statement is
 * reset; they are finalized later by their owners' cleanup. */
static void
reset_stmts(sw_store_t *s)
{
  for (sqlite3_stmt *p = sqlite3_next_stmt(s->db, NULL); p; p = sqlite3_next_stmt(s->db, p))
    if (sqlite3_stmt_busy(p))
      sqlite3_reset(p);
}

void
sw_db_lock(sw_store_t *s)
{
  pthread_mutex_lock(&s->mu);
  s->held++;
}

void
sw_db_unlock(sw_store_t *s)
{
  if (--s->held == 0)
    reset_stmts(s);
  pthread_mutex_unlock(&s->mu);
}

/* BEGIN IMMEDIATE normally waits for another connection's write through the busy handler (60 s).
 * Now and then SQLite returns SQLITE_BUSY at once instead, with no transaction open on this
 * connection (seen in test_store's test_threads under ASan, ~1 run in 20: two connections of one
 * process writing at the same moment). Nothing is held then, so wait and try again, as long as
 * the busy handler would have. */
static int
db_begin_immediate(sw_store_t *s, sw_error_t *err)
{
  long waited_ms = 0, delay_ms = 1;
  for (;;) {
    _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, "BEGIN IMMEDIATE", err);
    if (st == NULL)
      return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
      return 0;
    if ((rc & 0xff) != SQLITE_BUSY || sqlite3_txn_state(s->db, NULL) != SQLITE_TXN_NONE ||
        waited_ms >= 60000)
      return sw_db_error(s, err, "BEGIN IMMEDIATE");
    sqlite3_reset(st);
    struct timespec ts = {0, delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    waited_ms += delay_ms;
    delay_ms = delay_ms < 64 ? delay_ms * 2 : 100;
  }
}

int
sw_db_begin(sw_store_t *s, sw_error_t *err)
{
  sw_db_lock(s);
  if (s->depth == 0) {
    if (db_begin_immediate(s, err) < 0) {
      sw_db_unlock(s);
      return -1;
    }
    s->failed = false;
  }
  s->depth++;
  return 0;
}

int
sw_db_end(sw_store_t *s, bool ok, sw_error_t *err)
{
  int r = 0;
  if (!ok)
    s->failed = true;
  if (--s->depth == 0) {
    if (s->held == 1)
      reset_stmts(s);
    if (s->failed) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      r = -1;
    } else if (db_step(s, "COMMIT", err) < 0) {
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      r = -2; /* err already set */
    }
    s->failed = false;
  }
  sw_db_unlock(s);
  if (r == -1 && ok && err && *err == NULL)
    return sw_error(err, 0, "store `%s`: transaction rolled back (an inner step failed)", s->root);
  return r < 0 || !ok ? -1 : 0;
}

int
sw_store_begin(sw_store_t *s, sw_error_t *err)
{
  return sw_db_begin(s, err);
}

int
sw_store_commit(sw_store_t *s, sw_error_t *err)
{
  return sw_db_end(s, true, err);
}

void
sw_store_rollback(sw_store_t *s)
{
  sw_db_end(s, false, NULL);
}

static int
migrate(sw_store_t *s, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, "PRAGMA user_version", err);
  if (st == NULL)
    return -1;
  if (sqlite3_step(st) != SQLITE_ROW)
    return sw_db_error(s, err, "read schema version");
  int v = sqlite3_column_int(st, 0);
  if (v > (int)SW_ARRAY_SIZE(migrations))
    return sw_error(err, 0,
                    "store `%s` has schema version %d, newer than this slipway knows (%d): "
                    "upgrade slipway",
                    s->root, v, (int)SW_ARRAY_SIZE(migrations));
  for (; v < (int)SW_ARRAY_SIZE(migrations); v++) {
    _cleanup_free_ char *bump = xasprintf("PRAGMA user_version = %d", v + 1);
    if (sw_db_begin(s, err) < 0)
      return -1;
    bool ok = sw_db_exec(s, migrations[v], err) == 0 && sw_db_exec(s, bump, err) == 0;
    if (sw_db_end(s, ok, err) < 0)
      return sw_error_wrap(err, "migrating store schema to version %d", v + 1);
  }
  return 0;
}

/* ---- open / close ---- */

/* One process's command line, spaces between its arguments, shortened (malloc'd; NULL if gone). */
static char *
proc_cmdline(long pid)
{
  _cleanup_free_ char *path = xasprintf("/proc/%ld/cmdline", pid);
  char *buf = NULL;
  size_t len = 0;
  sw_error_t err = NULL;
  if (sw_read_file(path, 4096, &buf, &len, &err) < 0 || len == 0) {
    sw_error_release(&err);
    free(buf);
    return NULL;
  }
  for (size_t i = 0; i + 1 < len; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  if (len > 120)
    memcpy(buf + 117, "...", 4);
  return buf;
}

/* The other processes holding the store's lock, from /proc/locks (the flock entries on its
 * inode): "pid 123 (`slipway prune -a`, exclusive), ...", or "other slipway processes". */
static char *
lock_holders(sw_store_t *s)
{
  struct stat st;
  _cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
  _cleanup_buf_ sw_buf_t b = {0};
  char line[256];
  while (f && fstat(s->lock_fd, &st) == 0 && fgets(line, sizeof(line), f)) {
    char kind[16], mode[16];
    long pid;
    unsigned long ino;
    /* "1: FLOCK  ADVISORY  WRITE 123 fe:00:456 0 EOF"; waiters have "->" after the number. */
    if (strstr(line, "->") ||
        sscanf(line, "%*d: %15s %*s %15s %ld %*x:%*x:%lu", kind, mode, &pid, &ino) != 4 ||
        strcmp(kind, "FLOCK") != 0 || ino != (unsigned long)st.st_ino || pid == (long)getpid())
      continue;
    _cleanup_free_ char *cmd = proc_cmdline(pid);
    sw_buf_printf(&b, "%spid %ld (`%s`, %s)", b.len ? ", " : "", pid, cmd ? cmd : "?",
                  strcmp(mode, "WRITE") == 0 ? "exclusive" : "shared");
  }
  return b.len ? sw_buf_steal(&b) : xstrdup("other slipway processes");
}

static int
take_lock(sw_store_t *s, int op, sw_error_t *err)
{
  if (flock(s->lock_fd, op | LOCK_NB) == 0)
    return 0;
  if (errno != EWOULDBLOCK)
    return sw_error(err, errno, "lock `%s/lock`", s->root);
  _cleanup_free_ char *who = lock_holders(s);
  fprintf(stderr, "slipway: the store `%s` is locked by %s: waiting for it\n", s->root, who);
  if (flock(s->lock_fd, op) < 0)
    return sw_error(err, errno, "lock `%s/lock`", s->root);
  return 0;
}

int
sw_store_lock_exclusive(sw_store_t *s, sw_error_t *err)
{
  /* Drop ours first, else two processes trading up would wait on each other. */
  flock(s->lock_fd, LOCK_UN);
  return take_lock(s, LOCK_EX, err);
}

void
sw_store_lock_shared(sw_store_t *s)
{
  flock(s->lock_fd, LOCK_SH);
}

/* ROOT/reserve (see STORE_RESERVE), made when missing and the filesystem has ample room. */
static void
reserve_make(sw_store_t *s)
{
  if (faccessat(s->root_fd, "reserve", F_OK, 0) == 0 ||
      sw_fs_free_bytes(s->root) < 4 * STORE_RESERVE)
    return;
  _cleanup_close_ int fd =
      openat(s->root_fd, "reserve", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  if (posix_fallocate(fd, 0, STORE_RESERVE) != 0) {
    sw_debug("store `%s`: cannot set space aside in `reserve`", s->root);
    unlinkat(s->root_fd, "reserve", 0);
  }
}

/* Give the reserve back to the filesystem; false when there was none. */
static bool
reserve_release(sw_store_t *s)
{
  struct stat st;
  if (fstatat(s->root_fd, "reserve", &st, 0) < 0 || unlinkat(s->root_fd, "reserve", 0) < 0)
    return false;
  return st.st_size > 0;
}

static int
db_open(sw_store_t *s, bool exclusive, sw_error_t *err)
{
  _cleanup_free_ char *dbpath = sw_store_path(s, "slipway.db");
  if (sqlite3_open_v2(dbpath, &s->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK)
    return sw_error(err, 0, "open database `%s`: %s", dbpath,
                    s->db ? sqlite3_errmsg(s->db) : "out of memory");
  sqlite3_busy_timeout(s->db, 60000);
  /* WAL + synchronous=NORMAL: a crash may lose the last commits but never corrupts; data files
   * are fsynced before the rows naming them are committed. */
  if ((exclusive && sw_db_exec(s, "PRAGMA locking_mode=EXCLUSIVE", err) < 0) ||
      sw_db_exec(s, "PRAGMA journal_mode=WAL", err) < 0 ||
      sw_db_exec(s, "PRAGMA synchronous=NORMAL", err) < 0 ||
      sw_db_exec(s, "PRAGMA foreign_keys=ON", err) < 0 || migrate(s, err) < 0)
    return -1;
  return 0;
}

static void
db_close(sw_store_t *s)
{
  stmt_cache_drop(s->db);
  sqlite3_close_v2(s->db);
  s->db = NULL;
}

/* Open the database; on a full filesystem, a reader reads in exclusive locking mode (which needs
 * no room) and a deleter gets the reserve's room (see STORE_RESERVE). */
static int
db_open_mode(sw_store_t *s, sw_store_mode_t mode, sw_error_t *err)
{
  if (db_open(s, false, err) == 0)
    return 0;
  if (mode == SW_STORE_WRITE || s->db == NULL || !db_full(s))
    return -1;
  db_close(s);
  sw_error_release(err);
  if (mode == SW_STORE_READ) {
    sw_debug("store `%s`: filesystem full, reading in exclusive locking mode", s->root);
    return db_open(s, true, err);
  }
  if (!reserve_release(s)) {
    _cleanup_free_ char *mnt = sw_mount_point(s->root);
    return sw_error(err, ENOSPC,
                    "store `%s`: its filesystem (mounted on `%s`) is full, and the room set aside "
                    "for deletions was used already: free some space there by other means, then "
                    "run `slipway prune`",
                    s->root, mnt);
  }
  _cleanup_free_ char *note = sw_store_full_note(s->root);
  fprintf(stderr, "slipway: %s; released the %d MiB set aside for this\n", note,
          (int)(STORE_RESERVE >> 20));
  return db_open(s, false, err);
}

int
sw_store_trash_at(sw_store_t *s, int dfd, const char *name, sw_error_t *err)
{
  static unsigned counter;
  const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
  _cleanup_free_ char *dst = xasprintf("trash/%.80s.%d.%u", base, (int)getpid(),
                                       __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
  if (renameat(dfd, name, s->root_fd, dst) == 0 || errno == ENOENT)
    return 0;
  return sw_error(err, errno, "move `%s` to `%s/%s`", name, s->root, dst);
}

int
sw_store_open(const char *root, sw_store_t **out, sw_error_t *err)
{
  return sw_store_open_mode(root, SW_STORE_WRITE, out, err);
}

int
sw_store_open_mode(const char *root, sw_store_mode_t mode, sw_store_t **out, sw_error_t *err)
{
  _cleanup_(sw_store_freep) sw_store_t *s = xcalloc(1, sizeof(*s));
  pthread_mutexattr_t attr;

  s->root = xstrdup(root);
  s->root_fd = s->lock_fd = -1;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&s->mu, &attr);
  pthread_mutexattr_destroy(&attr);

  if (sw_mkdir_p(root, 0711, err) < 0)
    return sw_error_wrap(err, "creating the store (choose another with --root)");
  for (size_t i = 0; i < SW_ARRAY_SIZE(layout_dirs); i++) {
    _cleanup_free_ char *d = sw_store_path(s, layout_dirs[i]);
    if (mkdir(d, 0700) < 0 && errno != EEXIST)
      return sw_error(err, errno, "create `%s`", d);
  }
  s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->root_fd < 0)
    return sw_error(err, errno, "open `%s`", root);
  s->lock_fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd < 0)
    return sw_error(err, errno, "open `%s/lock`", root);
  /* Alone on this store? Then nothing in tmp/ or the trash is in use: purge what is there.
   * Not by a user's command that stays outside its user namespace (images, inspect...): files
   * of its subordinate ids are out of its reach there; the next command purges them. */
  bool alone = !sw_userns_outside() && flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0;
  if (alone)
    sw_store_purge_prepare(s);
  if (take_lock(s, LOCK_SH, err) < 0)
    return -1;
  /* Only now: a prune that took the lock in between has emptied ROOT/purge itself. */
  if (alone)
    sw_store_purge_start(s);

  if (db_open_mode(s, mode, err) < 0) {
    if (s->db && db_full(s))
      sw_store_error_full(root, err);
    return -1;
  }
  reserve_make(s);
  *out = steal_ptr(&s);
  return 0;
}

void
sw_store_free(sw_store_t *s)
{
  if (s == NULL)
    return;
  free(s->purge_name);
  if (s->db) {
    sw_db_flush_touched(s);
    db_close(s);
  }
  sw_strv_free(s->touched);
  if (s->lock_fd >= 0)
    close(s->lock_fd); /* releases the flock */
  if (s->root_fd >= 0)
    close(s->root_fd);
  pthread_mutex_destroy(&s->mu);
  free(s->root);
  free(s);
}

const char *
sw_store_root(const sw_store_t *s)
{
  return s->root;
}

char *
sw_store_path(const sw_store_t *s, const char *rel)
{
  return xasprintf("%s/%s", s->root, rel);
}

char *
sw_store_mkdtemp(sw_store_t *s, const char *prefix, sw_error_t *err)
{
  char *p = xasprintf("%s/tmp/%sXXXXXX", s->root, prefix ? prefix : "");
  if (mkdtemp(p) == NULL) {
    sw_error(err, errno, "create a directory in `%s/tmp`", s->root);
    free(p);
    return NULL;
  }
  return p;
}

int
sw_store_mkstemp(sw_store_t *s, const char *prefix, char **path_out, sw_error_t *err)
{
  char *p = xasprintf("%s/tmp/%sXXXXXX", s->root, prefix ? prefix : "");
  int fd = mkostemp(p, O_CLOEXEC);
  if (fd < 0) {
    sw_error(err, errno, "create a file in `%s/tmp`", s->root);
    free(p);
    return -1;
  }
  *path_out = p;
  return fd;
}

char *
sw_store_cache_mount_dir(sw_store_t *s, const char *id, sw_error_t *err)
{
  bool safe = *id != '\0' && *id != '.' && strlen(id) <= 64;
  for (const char *c = id; safe && *c; c++)
    safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
           *c == '-' || *c == '_' || *c == '.';
  char hex[SW_SHA256_HEX_LEN + 1];
  if (!safe)
    sw_sha256_hex(id, strlen(id), hex);
  char *p = xasprintf("%s/mounts/%s", s->root, safe ? id : hex);
  if (mkdir(p, 0755) < 0 && errno != EEXIST) {
    sw_error(err, errno, "create cache mount `%s`", p);
    free(p);
    return NULL;
  }
  return p;
}

const char *
sw_digest_hex(const char *digest)
{
  if (digest == NULL || !sw_digest_valid(digest))
    return NULL;
  return digest + 7;
}

/* ---- cache records ---- */

int
sw_cache_get(sw_store_t *s, const char *key, char **value_out, sw_error_t *err)
{
  /* Read without the write lock (lookups dominate a cached rebuild). last_used (LRU order for
   * prune) is bumped once for all records read, in one transaction when the store is closed:
   * a write transaction per hit cost more than the lookups. */
  int64_t now = (int64_t)time(NULL), used = 0;
  char *value = NULL;
  int r = -1;
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT value, last_used FROM cache WHERE key = ?", err);
  if (st) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      value = xstrdup((const char *)sqlite3_column_text(st, 0));
      used = sqlite3_column_int64(st, 1);
      r = 1;
    } else {
      r = rc == SQLITE_DONE ? 0 : sw_db_error(s, err, "cache lookup");
    }
  }
  if (r == 1 && used < now) {
    if (s->touched == NULL)
      s->touched = xcalloc(1, sizeof(char *));
    sw_strv_push(&s->touched, key);
  }
  sw_db_unlock(s);
  if (r == 1)
    *value_out = value;
  return r;
}

/* Bump last_used of the records sw_cache_get read (see there). Errors only cost LRU accuracy. */
void
sw_db_flush_touched(sw_store_t *s)
{
  sw_error_t err = NULL;
  if (s->touched == NULL || s->touched[0] == NULL || sw_db_begin(s, &err) < 0)
    goto out;
  bool ok = true;
  {
    _cleanup_stmt_ sqlite3_stmt *up =
        sw_db_prepare(s, "UPDATE cache SET last_used = ?1 WHERE key = ?2 AND last_used < ?1", &err);
    ok = up != NULL;
    for (size_t i = 0; ok && s->touched[i]; i++) {
      sqlite3_reset(up);
      sqlite3_bind_int64(up, 1, (int64_t)time(NULL));
      sqlite3_bind_text(up, 2, s->touched[i], -1, SQLITE_STATIC);
      ok = sqlite3_step(up) == SQLITE_DONE || sw_db_error(s, &err, "cache record") == 0;
    }
  }
  sw_db_end(s, ok, &err);
out:
  if (err)
    sw_debug("store `%s`: updating cache records' last use: %s", s->root, err->msg);
  sw_error_release(&err);
}

static int
cache_put_locked(sw_store_t *s, const char *key, const char *value, char *const *diff_ids,
                 int64_t size, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *put = sw_db_prepare(
      s, "INSERT OR REPLACE INTO cache (key, value, size, created, last_used) VALUES (?,?,?,?,?)",
      err);
  _cleanup_stmt_ sqlite3_stmt *has =
      sw_db_prepare(s,
                    "SELECT 1 FROM layers WHERE diff_id = ?1 "
                    "UNION ALL SELECT 1 FROM snapshots WHERE diff_id = ?1 LIMIT 1",
                    err);
  _cleanup_stmt_ sqlite3_stmt *ref =
      sw_db_prepare(s, "INSERT OR IGNORE INTO cache_layers (key, diff_id) VALUES (?,?)", err);
  if (!put || !has || !ref)
    return -1;
  int64_t now = (int64_t)time(NULL);
  sqlite3_bind_text(put, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(put, 2, value, -1, SQLITE_STATIC);
  sqlite3_bind_int64(put, 3, size);
  sqlite3_bind_int64(put, 4, now);
  sqlite3_bind_int64(put, 5, now);
  if (sqlite3_step(put) != SQLITE_DONE)
    return sw_db_error(s, err, "write cache record");
  for (size_t i = 0; diff_ids && diff_ids[i]; i++) {
    sqlite3_reset(has);
    sqlite3_bind_text(has, 1, diff_ids[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(has);
    if (rc == SQLITE_DONE)
      return sw_error(err, 0, "cache record `%.19s`: layer %s is not in the store", key,
                      diff_ids[i]);
    if (rc != SQLITE_ROW)
      return sw_db_error(s, err, "layer lookup");
    sqlite3_reset(ref);
    sqlite3_bind_text(ref, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(ref, 2, diff_ids[i], -1, SQLITE_STATIC);
    if (sqlite3_step(ref) != SQLITE_DONE)
      return sw_db_error(s, err, "write cache record layers");
  }
  return 0;
}

int
sw_prediction_get(sw_store_t *s, const char *stem, char **content_out, bool *confirmed,
                  sw_error_t *err)
{
  int r = -1;
  *content_out = NULL;
  *confirmed = false;
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT content, confirmed FROM predictions WHERE stem = ?", err);
  if (st) {
    sqlite3_bind_text(st, 1, stem, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *content_out = xstrdup((const char *)sqlite3_column_text(st, 0));
      *confirmed = sqlite3_column_int(st, 1) != 0;
      r = 1;
    } else {
      r = rc == SQLITE_DONE ? 0 : sw_db_error(s, err, "prediction lookup");
    }
  }
  sw_db_unlock(s);
  return r;
}

int
sw_prediction_put(sw_store_t *s, const char *stem, const char *content, bool confirmed,
                  sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s, "INSERT OR REPLACE INTO predictions (stem, content, confirmed) VALUES (?, ?, ?)", err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, stem, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, content, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, confirmed ? 1 : 0);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "record prediction");
  }
  return sw_db_end(s, r == 0, err);
}

int
sw_cache_put(sw_store_t *s, const char *key, const char *value, char *const *diff_ids, int64_t size,
             sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  /* INSERT OR REPLACE deletes the old row first, and the cascade drops its cache_layers. */
  int r = cache_put_locked(s, key, value, diff_ids, size, err);
  return sw_db_end(s, r == 0, err);
}

int
sw_cache_delete(sw_store_t *s, const char *key, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, "DELETE FROM cache WHERE key = ?", err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "delete cache record");
  }
  return sw_db_end(s, r == 0, err);
}

/* ---- usage ---- */

int64_t
sw_db_scalar(sw_store_t *s, const char *sql, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  if (st == NULL)
    return -1;
  if (sqlite3_step(st) != SQLITE_ROW)
    return sw_db_error(s, err, sql);
  return sqlite3_column_int64(st, 0);
}

static int64_t
dir_bytes(const char *path)
{
  _cleanup_dir_ DIR *d = opendir(path);
  struct dirent *e;
  struct stat st;
  int64_t n = 0;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode))
      n += st.st_size;
  return n;
}

int
sw_store_usage(sw_store_t *s, sw_store_usage_t *u, sw_error_t *err)
{
  sw_db_lock(s);
  u->images = sw_db_scalar(s, "SELECT COUNT(*) FROM images", err);
  u->layers = u->images < 0 ? -1 : sw_db_scalar(s, "SELECT COUNT(*) FROM layers", err);
  u->cache_records = u->layers < 0 ? -1 : sw_db_scalar(s, "SELECT COUNT(*) FROM cache", err);
  u->snapshot_bytes = u->cache_records < 0
                          ? -1
                          : sw_db_scalar(s,
                                         "SELECT COALESCE(SUM(t), 0) FROM "
                                         "(SELECT MAX(tar_size) AS t FROM (SELECT diff_id, "
                                         "tar_size FROM layers UNION ALL SELECT diff_id, "
                                         "tar_size FROM snapshots) GROUP BY diff_id)",
                                         err);
  sw_db_unlock(s);
  if (u->snapshot_bytes < 0)
    return -1;
  _cleanup_free_ char *blobs = sw_store_path(s, "blobs/sha256");
  u->blob_bytes = dir_bytes(blobs);
  return 0;
}
