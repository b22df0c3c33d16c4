/* slipway: OCI layer → directory without ever leaving it; see layer_apply.h.
 *
 * libarchive only parses the tar (read side, no filters: sw_source_t decompresses and hashes);
 * every file system change is made here with *at() calls relative to a parent directory fd that
 * was resolved inside the root by openat2(2), so no name in the tar can redirect a write.
 *
 * Speed (the Python base, 17.5k entries, is unpacked by every import and pull):
 *   - a producer thread reads, decompresses, hashes (and tees / feeds opts.tar_sink) into a
 *     small ring of 1 MiB slots while the caller's thread parses and creates files: inflate and
 *     sha256 run on the other core instead of in series with the file system work;
 *   - snapshot mode keeps the chain of open directories down to the last parent (tars list a
 *     directory, its files, its subtrees depth-first): one openat2 of ONE component relative to
 *     an already verified fd per directory, instead of a whole-path openat2 from the root on
 *     every change of parent;
 *   - nodes are created optimistically (O_EXCL / EEXIST → remove, retry): no stat per entry;
 *   - in a fresh snapshot dir a node we create already has our uid/gid (no setgid parents, no
 *     default ACL), so chown is skipped when the entry's ids are ours, and a plain file is
 *     created with its final permission bits when the umask does not mask them. */
#include "layer_apply.h"
#include "userns.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* trusted.overlay.opaque, or user.overlay.opaque in a user namespace (rootless). */
#define OPAQUE_XATTR sw_overlay_opaque_xattr()

/* ---- a set of the paths this layer created (value: the file type) ---- */

typedef struct {
  char *path;
  mode_t type;
} seen_slot_t;

typedef struct {
  seen_slot_t *v;
  size_t n, cap;
} seen_t;

static size_t
str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return (size_t)h;
}

static seen_slot_t *
seen_find(seen_t *s, const char *path)
{
  if (s->cap == 0)
    return NULL;
  for (size_t j = str_hash(path) & (s->cap - 1); s->v[j].path; j = (j + 1) & (s->cap - 1))
    if (strcmp(s->v[j].path, path) == 0)
      return &s->v[j];
  return NULL;
}

static void
seen_put(seen_t *s, const char *path, mode_t type)
{
  seen_slot_t *f = seen_find(s, path);
  if (f) {
    f->type = type;
    return;
  }
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    seen_slot_t *v = xcalloc(cap, sizeof(*v));
    for (size_t i = 0; i < s->cap; i++) {
      if (s->v[i].path == NULL)
        continue;
      size_t j = str_hash(s->v[i].path) & (cap - 1);
      while (v[j].path)
        j = (j + 1) & (cap - 1);
      v[j] = s->v[i];
    }
    free(s->v);
    s->v = v;
    s->cap = cap;
  }
  size_t j = str_hash(path) & (s->cap - 1);
  while (s->v[j].path)
    j = (j + 1) & (s->cap - 1);
  s->v[j] = (seen_slot_t){xstrdup(path), type};
  s->n++;
}

static void
seen_free(seen_t *s)
{
  for (size_t i = 0; i < s->cap; i++)
    free(s->v[i].path);
  free(s->v);
}

/* ---- the applier ---- */

typedef struct {
  char *path;
  mode_t mode;
  struct timespec mtime;
} dir_meta_t;

/* Producer → parser ring: slots [tail, head) are full; the parser holds slot `tail` while
 * libarchive reads it (its callback's buffer must stay valid until the next call). */
#define RING_SLOTS 4
#define SLOT_SIZE  (1u << 20)

typedef struct {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t *buf[RING_SLOTS];
  size_t len[RING_SLOTS];
  uint64_t head, tail;
  bool held, eof, failed, cancel;
} ring_t;

/* Deeper parents than this are opened from the root each time (bounded fd use). */
#define STACK_MAX 64

typedef struct {
  sw_layer_apply_opts_t o;
  const char *lname; /* "layer X" */
  int root_fd;
  bool privileged;
  sw_source_t *src;
  sw_error_t io_err; /* from the source or tar sink, kept while libarchive unwinds */
  struct archive *a;
  char *cache_path; /* parent directory cache: entries come sorted, parents repeat */
  int cache_fd;
  /* Snapshot mode: open directories of the last parent, component by component.
   * stk_fd[0] is root_fd; stk_path[0, stk_end[i]) is the path of stk_fd[i]. */
  int depth;
  int stk_fd[STACK_MAX + 1];
  size_t stk_end[STACK_MAX + 1];
  char stk_path[PATH_MAX];
  /* See meta_init: nodes we create have our ids and exactly the mode we ask for. */
  bool fresh_meta;
  uid_t euid;
  gid_t egid;
  mode_t umask; /* (mode_t)-1: unknown */
  ring_t ring;
  seen_t seen;
  dir_meta_t *dirs;
  size_t ndirs, dirs_cap;
  const char *entry; /* raw name of the current entry, for messages */
} la_t;

static int entry_error(la_t *l, sw_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
entry_error(la_t *l, sw_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *what = NULL;
  va_start(ap, fmt);
  if (vasprintf(&what, fmt, ap) < 0)
    abort();
  va_end(ap);
  return sw_error(err, status, "%s: entry `%s`: %s", l->lname, l->entry, what);
}

/* ---- the producer thread: source (read, decompress, hash, tee) + tar sink → ring ---- */

static void *
producer(void *arg)
{
  la_t *l = arg;
  ring_t *r = &l->ring;

  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (r->head - r->tail == RING_SLOTS && !r->cancel)
      pthread_cond_wait(&r->cv, &r->mu);
    bool cancel = r->cancel;
    pthread_mutex_unlock(&r->mu);
    if (cancel)
      return NULL;
    size_t slot = r->head % RING_SLOTS, len = 0;
    ssize_t n;
    while ((n = sw_source_read(l->src, r->buf[slot] + len, SLOT_SIZE - len, &l->io_err)) > 0 &&
           (len += (size_t)n) < SLOT_SIZE)
      ;
    if (n >= 0 && len > 0 && l->o.tar_sink &&
        sw_sink_write(l->o.tar_sink, r->buf[slot], len, &l->io_err) < 0)
      n = -1;
    pthread_mutex_lock(&r->mu);
    r->len[slot] = len;
    r->failed = n < 0;
    r->head += n >= 0 && len > 0;
    r->eof = n == 0;
    bool stop = r->failed || r->eof;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (stop)
      return NULL;
  }
}

static void
ring_start(la_t *l)
{
  ring_t *r = &l->ring;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  for (int i = 0; i < RING_SLOTS; i++)
    r->buf[i] = xmalloc(SLOT_SIZE);
  if (pthread_create(&r->thread, NULL, producer, l) != 0)
    abort(); /* like an allocation failure: nothing sensible to do */
  r->started = true;
}

/* Release the slot libarchive was reading and borrow the next one. Returns its length, 0 at the
 * end of the stream, -1 if the producer failed (l->io_err says why). */
static ssize_t
ring_next(la_t *l, const void **buf)
{
  ring_t *r = &l->ring;
  ssize_t n;

  pthread_mutex_lock(&r->mu);
  if (r->held) {
    r->tail++;
    r->held = false;
    pthread_cond_broadcast(&r->cv);
  }
  while (r->head == r->tail && !r->eof && !r->failed)
    pthread_cond_wait(&r->cv, &r->mu);
  if (r->head > r->tail) {
    *buf = r->buf[r->tail % RING_SLOTS];
    n = (ssize_t)r->len[r->tail % RING_SLOTS];
    r->held = true;
  } else {
    n = r->failed ? -1 : 0;
  }
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* Stop and join the producer (it may be mid-stream after an error); after this the source and
 * the tar sink belong to the caller's thread again. */
static void
ring_stop(la_t *l)
{
  ring_t *r = &l->ring;
  if (!r->started)
    return;
  pthread_mutex_lock(&r->mu);
  r->cancel = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  r->started = false;
  for (int i = 0; i < RING_SLOTS; i++)
    free(r->buf[i]);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static la_ssize_t
la_read_cb(struct archive *a, void *cd, const void **buf)
{
  la_t *l = cd;
  ssize_t n = ring_next(l, buf);
  if (n < 0) {
    archive_set_error(a, EIO, "%s", l->io_err->msg);
    return -1;
  }
  return (la_ssize_t)n;
}

/* Normalise a tar name: drop "./", empty and "." components; refuse absolute paths and "..".
 * Returns NULL and sets *why when refused. */
static char *
norm_path(const char *in, const char **why)
{
  sw_buf_t out = {0};
  const char *p = in;

  if (*in == '/') {
    *why = "absolute path";
    return NULL;
  }
  if (strlen(in) >= PATH_MAX) {
    *why = "path longer than PATH_MAX";
    return NULL;
  }
  sw_buf_reserve(&out, strlen(in));
  out.data[0] = '\0';
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      sw_buf_free(&out);
      *why = "path escapes the layer root (`..`)";
      return NULL;
    }
    if (n > NAME_MAX) {
      sw_buf_free(&out);
      *why = "file name longer than NAME_MAX";
      return NULL;
    }
    if (n > 0 && !(n == 1 && p[0] == '.')) {
      if (out.len)
        sw_buf_putc(&out, '/');
      sw_buf_append(&out, p, n);
    }
    p += n;
    while (*p == '/')
      p++;
  }
  return sw_buf_steal(&out);
}

static int
sys_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
  struct open_how how = {.flags = (uint64_t)flags, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static uint64_t
resolve_flags(const la_t *l)
{
  return l->o.mode == SW_APPLY_FLAT ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
                                    : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
}

/* Open directory `rel` (normalised, "" = root) inside the root; with create, make missing
 * components (0755). Never follows a symlink out of the root; in snapshot mode not at all. */
static int
open_dir(la_t *l, const char *rel, bool create, sw_error_t *err)
{
  const int flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  if (*rel == '\0')
    return openat(l->root_fd, ".", flags);
  int fd = sys_openat2(l->root_fd, rel, flags, resolve_flags(l));
  if (fd >= 0 || errno != ENOENT || !create) {
    if (fd < 0 && (errno == ELOOP || errno == EXDEV))
      return entry_error(l, err, 0, "parent `%s` goes through a symlink", rel);
    if (fd < 0 && errno == ENOTDIR)
      return entry_error(l, err, 0, "parent `%s` is not a directory", rel);
    if (fd < 0)
      return entry_error(l, err, errno, "open parent `%s`", rel);
    return fd;
  }
  /* Create the missing components one by one, each resolved from the root again. */
  _cleanup_free_ char *prefix = xstrdup(rel);
  for (char *s = prefix;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char saved = *s;
    *s = '\0';
    _cleanup_close_ int d = sys_openat2(l->root_fd, prefix, flags, resolve_flags(l));
    if (d < 0 && errno == ENOENT) {
      char *slash = strrchr(prefix, '/');
      _cleanup_close_ int parent = -1;
      if (slash) {
        *slash = '\0';
        parent = sys_openat2(l->root_fd, prefix, flags, resolve_flags(l));
        *slash = '/';
      } else {
        parent = openat(l->root_fd, ".", flags);
      }
      if (parent < 0 || (mkdirat(parent, slash ? slash + 1 : prefix, 0755) < 0 && errno != EEXIST))
        return entry_error(l, err, errno, "create parent `%s`", prefix);
      d = sys_openat2(l->root_fd, prefix, flags, resolve_flags(l));
    }
    if (d < 0) {
      if (errno == ELOOP || errno == EXDEV)
        return entry_error(l, err, 0, "parent `%s` goes through a symlink", prefix);
      return entry_error(l, err, errno, "open parent `%s`", prefix);
    }
    *s = saved;
    if (saved == '\0')
      return steal_fd(&d);
  }
}

static void
cache_drop(la_t *l)
{
  if (l->cache_fd >= 0)
    close(l->cache_fd);
  l->cache_fd = -1;
  free(l->cache_path);
  l->cache_path = NULL;
}

/* ---- snapshot mode: the stack of open parents ---- */

static void
stack_pop(la_t *l, int depth)
{
  while (l->depth > depth)
    close(l->stk_fd[l->depth--]);
  l->stk_path[l->stk_end[l->depth]] = '\0';
}

/* How many leading components of dir the stack holds. */
static int
stack_common(const la_t *l, const char *dir)
{
  int k = 0;
  for (int i = 1; i <= l->depth; i++) {
    size_t n = l->stk_end[i];
    if (strncmp(l->stk_path, dir, n) != 0 || (dir[n] != '/' && dir[n] != '\0'))
      break;
    k = i;
  }
  return k;
}

/* Open (creating it 0755 if missing) the child `name` (n bytes, no slash) of the top of the stack
 * and push it. One component relative to a verified fd, with the same RESOLVE_ flags as a whole
 * path from the root: a symlink or a mount point is refused. */
static int
stack_push(la_t *l, const char *name, size_t n, sw_error_t *err)
{
  const int flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  int top = l->stk_fd[l->depth];
  size_t at = l->stk_end[l->depth];
  char *comp;

  if (at > 0)
    l->stk_path[at++] = '/';
  comp = l->stk_path + at;
  memcpy(comp, name, n); /* fits: the whole normalised path is < PATH_MAX */
  comp[n] = '\0';
  int fd = sys_openat2(top, comp, flags, resolve_flags(l));
  if (fd < 0 && errno == ENOENT) {
    if (mkdirat(top, comp, 0755) < 0 && errno != EEXIST)
      return entry_error(l, err, errno, "create parent `%s`", l->stk_path);
    fd = sys_openat2(top, comp, flags, resolve_flags(l));
  }
  if (fd < 0) {
    if (errno == ELOOP || errno == EXDEV)
      return entry_error(l, err, 0, "parent `%s` goes through a symlink", l->stk_path);
    if (errno == ENOTDIR)
      return entry_error(l, err, 0, "parent `%s` is not a directory", l->stk_path);
    return entry_error(l, err, errno, "open parent `%s`", l->stk_path);
  }
  l->depth++;
  l->stk_fd[l->depth] = fd;
  l->stk_end[l->depth] = at + n;
  return 0;
}

/* The parent fd (borrowed: owned by the stack or the cache). The stack ends up holding exactly
 * the chain of `parent`, so removing a child of the parent never closes or invalidates an fd in
 * use. */
static int
stack_parent(la_t *l, const char *parent, sw_error_t *err)
{
  int k = stack_common(l, parent);
  stack_pop(l, k);
  const char *p = parent + l->stk_end[k];
  if (*p == '/')
    p++;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (l->depth == STACK_MAX)
      return -2; /* too deep: the caller opens it from the root */
    if (stack_push(l, p, n, err) < 0) {
      stack_pop(l, l->depth); /* restore stk_path's terminator */
      return -1;
    }
    p += n;
    if (*p == '/')
      p++;
  }
  return l->stk_fd[l->depth];
}

/* The parent fd (borrowed: owned by the stack or the cache). */
static int
parent_fd(la_t *l, const char *parent, sw_error_t *err)
{
  if (l->o.mode == SW_APPLY_SNAPSHOT) {
    int fd = stack_parent(l, parent, err);
    if (fd != -2)
      return fd;
  }
  if (l->cache_path && strcmp(l->cache_path, parent) == 0)
    return l->cache_fd;
  cache_drop(l);
  int fd = open_dir(l, parent, true, err);
  if (fd < 0)
    return -1;
  l->cache_fd = fd;
  l->cache_path = xstrdup(parent);
  return fd;
}

/* Remove whatever is at (pfd, name), a directory tree included. */
static int
remove_existing(la_t *l, int pfd, const char *name, sw_error_t *err)
{
  struct stat st;
  if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : entry_error(l, err, errno, "stat `%s`", name);
  /* pfd is the cached parent of the current entry, so the cache never points below name. */
  if (S_ISDIR(st.st_mode))
    return sw_rm_rf_at(pfd, name, err) < 0
               ? sw_error_wrap(err, "%s: entry `%s`", l->lname, l->entry)
               : 0;
  if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
    return entry_error(l, err, errno, "remove `%s`", name);
  return 0;
}

static int
set_opaque(la_t *l, int pfd, const char *name, sw_error_t *err)
{
  _cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) < 0)
    return entry_error(l, err, errno, "mark `%s` opaque (%s)", *name == '.' ? "." : name,
                       OPAQUE_XATTR);
  return 0;
}

static int
apply_xattrs(la_t *l, struct archive_entry *e, int fd, int pfd, const char *name, sw_error_t *err)
{
  const char *key;
  const void *val;
  size_t size;

  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &key, &val, &size) == ARCHIVE_OK) {
    if (sw_str_has_prefix(key, "trusted.overlay.") || sw_str_has_prefix(key, "user.overlay."))
      return entry_error(l, err, 0,
                         "carries overlayfs xattr `%s` (refused: it would forge "
                         "overlay metadata)",
                         key);
    int r;
    if (strcmp(key, "system.posix_acl_default") == 0)
      l->fresh_meta = false; /* it would mask the modes of what is created below */
    if (fd >= 0) {
      r = fsetxattr(fd, key, val, size, 0);
    } else {
      _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", pfd, name);
      r = lsetxattr(proc, key, val, size, 0);
    }
    if (r < 0) {
      if (errno == ENOTSUP || (!l->privileged && errno == EPERM)) {
        sw_debug("%s: entry `%s`: xattr `%s` not kept: %s", l->lname, l->entry, key,
                 strerror(errno));
        continue;
      }
      return entry_error(l, err, errno, "set xattr `%s`", key);
    }
  }
  return 0;
}

static struct timespec
entry_mtime(struct archive_entry *e)
{
  struct timespec t = {0, 0};
  if (archive_entry_mtime_is_set(e)) {
    t.tv_sec = archive_entry_mtime(e);
    t.tv_nsec = archive_entry_mtime_nsec(e);
  }
  return t;
}

/* Whether a node this layer just created (and so owned by euid:egid) needs a chown. */
static bool
needs_chown(const la_t *l, struct archive_entry *e)
{
  if (!l->privileged)
    return false;
  return !l->fresh_meta || (uid_t)archive_entry_uid(e) != l->euid ||
         (gid_t)archive_entry_gid(e) != l->egid;
}

/* Whether a node created with mode perm gets exactly perm (no umask bit masks it, no setuid
 * bit that chown would clear), so that no chmod is needed. Else it is created 0600 and fixed. */
static bool
exact_mode(const la_t *l, mode_t perm)
{
  return l->fresh_meta && l->umask != (mode_t)-1 && (perm & ~0777) == 0 && (perm & l->umask) == 0;
}

static mode_t
read_umask(void)
{
  _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  unsigned m;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "Umask: %o", &m) == 1)
      return (mode_t)m;
  return (mode_t)-1;
}

/* Snapshot mode into a directory without setgid bit or default ACL: every directory in it is
 * made by us (0700 until finish_dirs), so every node we create is owned by euid:egid and gets
 * exactly the mode we ask for minus the umask. */
static void
meta_init(la_t *l)
{
  struct stat st;
  l->euid = geteuid();
  l->egid = getegid();
  if (l->o.mode != SW_APPLY_SNAPSHOT || fstat(l->root_fd, &st) < 0 || (st.st_mode & S_ISGID))
    return;
  if (fgetxattr(l->root_fd, "system.posix_acl_default", NULL, 0) >= 0 ||
      (errno != ENODATA && errno != ENOTSUP))
    return;
  l->fresh_meta = true;
  l->umask = read_umask();
}

/* Owner, mode, xattrs and times of a non-directory this layer just created at (pfd, name);
 * exact: it was created with its final mode already. Order matters: chown clears setuid bits
 * and file capabilities, so it goes first. */
static int
apply_meta(la_t *l, struct archive_entry *e, int fd, int pfd, const char *name, mode_t type,
           bool exact, sw_error_t *err)
{
  struct timespec ts[2];
  int r;

  if (needs_chown(l, e)) {
    r = fd >= 0
            ? fchown(fd, archive_entry_uid(e), archive_entry_gid(e))
            : fchownat(pfd, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW);
    if (r < 0)
      return entry_error(l, err, errno, "chown");
  }
  mode_t mode = archive_entry_perm(e) & 07777;
  if (type != AE_IFLNK && !exact) {
    r = fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, name, mode, 0);
    if (r < 0)
      return entry_error(l, err, errno, "chmod");
  }
  if (apply_xattrs(l, e, fd, pfd, name, err) < 0)
    return -1;
  ts[0] = ts[1] = entry_mtime(e);
  r = fd >= 0 ? futimens(fd, ts) : utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
  if (r < 0)
    return entry_error(l, err, errno, "set times");
  return 0;
}

/* A node to create: what mknode() makes. */
typedef struct {
  mode_t type;        /* AE_IFREG, AE_IFLNK, AE_IFCHR…, or 0 for a hard link */
  mode_t perm;        /* regular files, devices, fifos: the mode to create them with */
  const char *target; /* symlink target; hard link: name in tpfd */
  int tpfd;
  dev_t rdev;
} node_t;

/* Returns an fd (regular file) or 0, or -1 with errno. */
static int
mknode(const node_t *n, int pfd, const char *name)
{
  switch (n->type) {
  case AE_IFREG:
    return openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, n->perm);
  case AE_IFLNK:
    return symlinkat(n->target, pfd, name);
  case 0:
    return linkat(n->tpfd, n->target, pfd, name, 0);
  default:
    return mknodat(pfd, name, n->type | n->perm, n->rdev);
  }
}

/* Create, replacing whatever this layer (or a lower one, in flat mode) has at that name: an
 * earlier entry of the same name, a whiteout. Optimistic: the common case costs no stat. */
static int
mknode_replacing(la_t *l, const node_t *n, int pfd, const char *name, const char *what,
                 sw_error_t *err)
{
  int r = mknode(n, pfd, name);
  if (r < 0 && errno == EEXIST) {
    if (remove_existing(l, pfd, name, err) < 0)
      return -1;
    r = mknode(n, pfd, name);
  }
  if (r < 0)
    return entry_error(l, err, errno, "%s", what);
  return r;
}

static int
write_file(la_t *l, struct archive_entry *e, int pfd, const char *name, sw_error_t *err)
{
  mode_t perm = archive_entry_perm(e) & 07777;
  bool exact = exact_mode(l, perm);
  node_t node = {.type = AE_IFREG, .perm = exact ? perm : 0600};
  _cleanup_close_ int fd = mknode_replacing(l, &node, pfd, name, "create", err);
  const void *buf;
  size_t size;
  la_int64_t off, end = 0;
  int r;

  if (fd < 0)
    return -1;
  while ((r = archive_read_data_block(l->a, &buf, &size, &off)) == ARCHIVE_OK) {
    const char *p = buf;
    size_t left = size;
    while (left > 0) { /* pwrite at the block's offset: sparse files keep their holes */
      ssize_t n = pwrite(fd, p, left, off);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return entry_error(l, err, errno, "write");
      }
      p += n;
      left -= (size_t)n;
      off += n;
    }
    end = off;
  }
  if (r != ARCHIVE_EOF) {
    if (l->io_err)
      return sw_error(err, l->io_err->status, "%s: %s", l->lname, l->io_err->msg);
    return entry_error(l, err, 0, "read data: %s", archive_error_string(l->a));
  }
  if (archive_entry_size(e) > end && ftruncate(fd, archive_entry_size(e)) < 0)
    return entry_error(l, err, errno, "truncate");
  return apply_meta(l, e, fd, pfd, name, AE_IFREG, exact, err);
}

static int
write_link(la_t *l, struct archive_entry *e, int pfd, const char *name, const char *target,
           sw_error_t *err)
{
  const char *why = NULL;
  _cleanup_free_ char *t = norm_path(target, &why);
  if (t == NULL)
    return entry_error(l, err, 0, "hardlink target `%s`: %s", target, why);
  seen_slot_t *s = seen_find(&l->seen, t);
  if (*t == '\0' || s == NULL || s->type == AE_IFDIR)
    return entry_error(l, err, 0, "hardlink to `%s`, which is not an earlier file of this layer",
                       target);
  char *slash = strrchr(t, '/');
  const char *tbase = slash ? slash + 1 : t;
  if (slash)
    *slash = '\0';
  _cleanup_close_ int tpfd = open_dir(l, slash ? t : "", false, err);
  if (tpfd < 0)
    return -1;
  node_t n = {.type = 0, .target = tbase, .tpfd = tpfd};
  _cleanup_free_ char *what = xasprintf("hardlink to `%s`", target);
  return mknode_replacing(l, &n, pfd, name, what, err) < 0 ? -1 : 0;
}

static int
make_dir(la_t *l, struct archive_entry *e, int pfd, const char *name, const char *rel,
         sw_error_t *err)
{
  struct stat st;
  bool replaced_whiteout = false, existed = false;

  /* Optimistic: the common case is a new name, no stat. */
  if (mkdirat(pfd, name, 0700) < 0) {
    if (errno != EEXIST)
      return entry_error(l, err, errno, "mkdir");
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return entry_error(l, err, errno, "stat");
    existed = S_ISDIR(st.st_mode);
    if (!existed) {
      replaced_whiteout = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
      if (remove_existing(l, pfd, name, err) < 0)
        return -1;
      if (mkdirat(pfd, name, 0700) < 0)
        return entry_error(l, err, errno, "mkdir");
    }
  }
  /* A directory that was there already (an earlier entry) may have another owner. */
  bool chown = existed ? l->privileged : needs_chown(l, e);
  /* A directory where this layer deleted something of the same name hides what was below. */
  bool opq = replaced_whiteout && l->o.mode == SW_APPLY_SNAPSHOT;
  if (chown || opq || archive_entry_xattr_count(e) > 0) {
    _cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return entry_error(l, err, errno, "open directory");
    if (chown && fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0)
      return entry_error(l, err, errno, "chown");
    if (apply_xattrs(l, e, fd, pfd, name, err) < 0)
      return -1;
    if (opq && fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) < 0)
      return entry_error(l, err, errno, "mark opaque");
  }
  /* Mode and times at the end: children would change the mtime, a read-only mode block them. */
  if (l->ndirs == l->dirs_cap) {
    l->dirs_cap = l->dirs_cap ? l->dirs_cap * 2 : 64;
    l->dirs = xrealloc(l->dirs, l->dirs_cap * sizeof(dir_meta_t));
  }
  l->dirs[l->ndirs++] = (dir_meta_t){xstrdup(rel), archive_entry_perm(e) & 07777, entry_mtime(e)};
  return 0;
}

static int
whiteout(la_t *l, struct archive_entry *e, int pfd, const char *dir, const char *name,
         sw_error_t *err)
{
  _cleanup_free_ char *rel = *dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
  seen_slot_t *s = seen_find(&l->seen, rel);

  if (l->o.mode == SW_APPLY_FLAT) {
    /* Whiteouts apply to lower layers only: what this layer wrote stays. */
    return s ? 0 : remove_existing(l, pfd, name, err);
  }
  if (s) {
    /* NAME is also in this layer: it stays, but lower content below it must not show. */
    if (s->type == AE_IFDIR)
      return set_opaque(l, pfd, name, err);
    return 0;
  }
  if (remove_existing(l, pfd, name, err) < 0)
    return -1;
  if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
    return entry_error(l, err, errno, "create overlay whiteout `%s`", name);
  /* Keep its time so that writing the snapshot again gives the same tar. */
  struct timespec ts[2] = {entry_mtime(e), entry_mtime(e)};
  if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return entry_error(l, err, errno, "set times of whiteout `%s`", name);
  return 0;
}

static int
opaque(la_t *l, int pfd, const char *dir, sw_error_t *err)
{
  if (l->o.mode == SW_APPLY_SNAPSHOT)
    return set_opaque(l, pfd, ".", err);
  /* Flat: empty the directory of everything this layer did not put there. */
  _cleanup_close_ int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_dir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;
  if (d == NULL)
    return entry_error(l, err, errno, "open directory");
  fd = -1;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *rel = *dir ? xasprintf("%s/%s", dir, de->d_name) : xstrdup(de->d_name);
    if (seen_find(&l->seen, rel) == NULL && sw_rm_rf_at(dirfd(d), de->d_name, err) < 0)
      return sw_error_wrap(err, "%s: entry `%s`", l->lname, l->entry);
  }
  return 0;
}

/* Whiteout names: `.wh..wh..opq`, `.wh.NAME`; other `.wh..wh.*` are aufs bookkeeping, skipped. */
static int
apply_whiteout(la_t *l, struct archive_entry *e, const char *dir, const char *base, sw_error_t *err)
{
  const char *name = base + 4;
  if (strcmp(base, ".wh..wh..opq") == 0) {
    int pfd = parent_fd(l, dir, err);
    return pfd < 0 ? -1 : opaque(l, pfd, dir, err);
  }
  if (sw_str_has_prefix(base, ".wh..wh."))
    return 0;
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return entry_error(l, err, 0, "whiteout for `%s` names no file", name);
  int pfd = parent_fd(l, dir, err);
  return pfd < 0 ? -1 : whiteout(l, e, pfd, dir, name, err);
}

static int
apply_entry(la_t *l, struct archive_entry *e, sw_error_t *err)
{
  const char *why = NULL;
  const char *raw = archive_entry_pathname(e);
  if (raw == NULL)
    raw = archive_entry_pathname_utf8(e);
  l->entry = raw ? raw : "(no name)";
  if (raw == NULL)
    return entry_error(l, err, 0, "entry without a name");
  _cleanup_free_ char *rel = norm_path(raw, &why);
  if (rel == NULL)
    return entry_error(l, err, 0, "%s", why);
  if (*rel == '\0')
    return 0; /* the root itself: its metadata belongs to the image's parent */
  char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  _cleanup_free_ char *dir = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
  if (sw_str_has_prefix(base, ".wh."))
    return apply_whiteout(l, e, dir, base, err);

  mode_t type = archive_entry_filetype(e);
  const char *hardlink = archive_entry_hardlink(e);
  int pfd = parent_fd(l, dir, err);
  if (pfd < 0)
    return -1;
  if (type == AE_IFDIR && hardlink == NULL) {
    if (make_dir(l, e, pfd, base, rel, err) < 0)
      return -1;
    seen_put(&l->seen, rel, AE_IFDIR);
    return 0;
  }
  /* A later entry of the same name replaces an earlier one (or a whiteout): mknode_replacing. */
  int r;
  if (hardlink) {
    r = write_link(l, e, pfd, base, hardlink, err);
    type = AE_IFREG;
  } else if (type == AE_IFREG) {
    r = write_file(l, e, pfd, base, err);
  } else if (type == AE_IFLNK) {
    node_t n = {.type = AE_IFLNK, .target = archive_entry_symlink(e)};
    if (n.target == NULL)
      n.target = archive_entry_symlink_utf8(e);
    if (n.target == NULL || *n.target == '\0')
      return entry_error(l, err, 0, "symlink without a target");
    r = mknode_replacing(l, &n, pfd, base, "symlink", err) < 0
            ? -1
            : apply_meta(l, e, -1, pfd, base, type, false, err);
  } else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
    if (type != AE_IFIFO && !l->privileged)
      return entry_error(l, err, 0, "device node refused (only root may create one)");
    dev_t rdev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    /* Rootless: the kernel makes no device node in a user namespace. It is left out of the
     * snapshot (as Docker and podman do there); the layer's blob, and so the image, keep it. A
     * container's /dev is mounted over the image's anyway. */
    if (type != AE_IFIFO && rdev != 0 && sw_userns_nested()) {
      sw_debug("%s: entry `%s`: device node not made in a user namespace", l->lname, l->entry);
      return 0;
    }
    node_t n = {.type = type, .perm = 0600, .rdev = type == AE_IFIFO ? 0 : rdev};
    r = mknode_replacing(l, &n, pfd, base, "mknod", err) < 0
            ? -1
            : apply_meta(l, e, -1, pfd, base, type, false, err);
  } else {
    return entry_error(l, err, 0, "unsupported file type 0%o", (unsigned)type);
  }
  if (r < 0)
    return -1;
  seen_put(&l->seen, rel, type);
  return 0;
}

/* Directories' modes and times, deepest first (a parent's mtime after its children's). */
static int
finish_dirs(la_t *l, sw_error_t *err)
{
  cache_drop(l);
  for (size_t i = l->ndirs; i-- > 0;) {
    dir_meta_t *m = &l->dirs[i];
    l->entry = m->path;
    _cleanup_close_ int fd =
        sys_openat2(l->root_fd, m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, resolve_flags(l));
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
      continue; /* removed or replaced later in the layer */
    struct timespec ts[2] = {m->mtime, m->mtime};
    if (fd < 0 || fchmod(fd, m->mode) < 0 || futimens(fd, ts) < 0)
      return entry_error(l, err, errno, "set directory mode and times");
  }
  return 0;
}

/* Let the producer run to the end of the stream: it hashes (and copies) every byte. */
static int
la_drain(la_t *l, sw_error_t *err)
{
  const void *buf;
  ssize_t n;
  while ((n = ring_next(l, &buf)) > 0)
    ;
  if (n < 0)
    return sw_error(err, l->io_err->status, "%s: %s", l->lname, l->io_err->msg);
  return 0;
}

static int la_parse(la_t *l, sw_error_t *err);

/* -2: the tar could not be applied but the stream was read to its end (finish_stream). */
static int
la_run(la_t *l, sw_error_t *err)
{
  ring_start(l);
  if (la_parse(l, err) == 0)
    return la_drain(l, err);
  if (!l->o.finish_stream)
    return -1;
  sw_error_t stream_err = NULL;
  if (la_drain(l, &stream_err) < 0) { /* the stream's error is the one to report */
    sw_error_release(err);
    *err = stream_err;
    return -1;
  }
  return -2;
}

static int
la_parse(la_t *l, sw_error_t *err)
{
  struct archive_entry *e;
  int r;

  l->a = archive_read_new();
  archive_read_support_format_tar(l->a);
  if (archive_read_open(l->a, l, NULL, la_read_cb, NULL) != ARCHIVE_OK) {
    if (l->io_err)
      return sw_error(err, l->io_err->status, "%s: %s", l->lname, l->io_err->msg);
    return sw_error(err, 0, "%s: not a tar archive: %s", l->lname, archive_error_string(l->a));
  }
  while ((r = archive_read_next_header(l->a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    if (apply_entry(l, e, err) < 0)
      return -1;
  if (r != ARCHIVE_EOF) {
    if (l->io_err)
      return sw_error(err, l->io_err->status, "%s: %s", l->lname, l->io_err->msg);
    return sw_error(err, 0, "%s: bad tar: %s", l->lname, archive_error_string(l->a));
  }
  /* What follows the end-of-archive blocks is hashed by the producer (la_drain). */
  return finish_dirs(l, err);
}

sw_layer_apply_opts_t
sw_layer_apply_opts_default(void)
{
  return (sw_layer_apply_opts_t){.mode = SW_APPLY_SNAPSHOT, .tee_fd = -1};
}

static int
verify(la_t *l, const sw_sink_result_t *res, sw_error_t *err)
{
  if (l->o.expect_digest && strcmp(l->o.expect_digest, res->digest) != 0)
    return sw_error(err, 0, "%s: blob digest mismatch: expected %s, got %s", l->lname,
                    l->o.expect_digest, res->digest);
  if (l->o.expect_diff_id && strcmp(l->o.expect_diff_id, res->diff_id) != 0)
    return sw_error(err, 0, "%s: diffID mismatch: expected %s, got %s", l->lname,
                    l->o.expect_diff_id, res->diff_id);
  return 0;
}

int
sw_layer_apply(int in_fd, const char *root_dir, const sw_layer_apply_opts_t *opts,
               sw_layer_info_t *info, sw_error_t *err)
{
  la_t l = {.o = opts ? *opts : sw_layer_apply_opts_default(), .cache_fd = -1};
  l.umask = (mode_t)-1;
  _cleanup_free_ char *lname = l.o.name ? xasprintf("layer %s", l.o.name) : xstrdup("layer");
  sw_sink_result_t res;
  int ret = -1;

  l.lname = lname;
  /* Outside its user namespace a rootless build could not give the files their owners. */
  if (sw_userns_need(lname, err) < 0)
    return -1;
  l.privileged = geteuid() == 0;
  l.root_fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l.root_fd < 0)
    return sw_error(err, errno, "%s: open target `%s`", lname, root_dir);
  l.stk_fd[0] = l.root_fd;
  l.src = sw_source_new(in_fd, l.o.codec, l.o.tee_fd);
  if (l.o.skip_source_hash)
    sw_source_skip_hash(l.src);
  /* PAX names are UTF-8; read them back as the same bytes (see layer_write.c). */
  locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
  locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
  meta_init(&l);
  int r = la_run(&l, err);
  ring_stop(&l);
  if (utf8) {
    uselocale(old);
    freelocale(utf8);
  }
  if (r == -1)
    goto out;
  sw_error_t stream_err = NULL;
  if (sw_source_result(l.src, &res, &stream_err) < 0 || verify(&l, &res, &stream_err) < 0) {
    sw_error_release(err); /* a bad stream matters more than what it did to the tree */
    *err = stream_err;
    goto out;
  }
  if (info) {
    memcpy(info->diff_id, res.diff_id, sizeof(info->diff_id));
    memcpy(info->digest, res.digest, sizeof(info->digest));
    info->size = res.size;
    info->tar_size = res.raw_size;
    info->codec = sw_source_codec(l.src);
    info->media_type = info->codec->oci_media_type;
  }
  ret = r;
out:
  if (l.a)
    archive_read_free(l.a);
  sw_source_free(l.src);
  cache_drop(&l);
  stack_pop(&l, 0);
  close(l.root_fd);
  seen_free(&l.seen);
  for (size_t i = 0; i < l.ndirs; i++)
    free(l.dirs[i].path);
  free(l.dirs);
  sw_error_release(&l.io_err);
  return ret;
}
