/* slipway: COPY/ADD into a layer directory; see copy.h. */
#include "copy.h"

#include "compress.h"
#include "layer_apply.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define IO_BUF (1 << 17)

struct sw_copy {
  char *layer_dir;
  int layer_fd;
  sw_copy_opts_t o;
  char *dest;    /* canonical absolute destination */
  bool dest_dir; /* sources go inside dest */
  /* directories created or changed on the destination path: mtime set at finish */
  char **touched;
};

/* ---- paths ---- */

static char *
path_join(const char *dir, const char *name)
{
  if (strcmp(dir, "/") == 0)
    return xasprintf("/%s", name);
  return xasprintf("%s/%s", dir, name);
}

char *
sw_copy_resolve_dest(sw_lowerfs_t *fs, const char *path, sw_error_t *err)
{
  _cleanup_free_ char *clean = sw_path_clean_abs(path);
  if (fs == NULL || strcmp(clean, "/") == 0)
    return steal_ptr(&clean);
  char *cur = xstrdup("/");
  const char *p = clean + 1;
  while (*p) {
    size_t n = strcspn(p, "/");
    _cleanup_free_ char *comp = xstrndup(p, n);
    _cleanup_free_ char *cand = path_join(cur, comp);
    _cleanup_free_ char *canon = NULL, *host = NULL;
    struct stat st;
    sw_error_t e = NULL;
    int r = sw_lowerfs_lookup(fs, cand, true, &canon, &st, &host, &e);
    sw_error_release(&e);
    if (r < 0 || !S_ISDIR(st.st_mode)) {
      /* The rest does not exist (or is not a directory): taken as written. */
      char *full = path_join(cur, p);
      free(cur);
      return full;
    }
    free(cur);
    cur = steal_ptr(&canon);
    p += n;
    while (*p == '/')
      p++;
  }
  return cur;
}

/* ---- writing into the layer, never following a symlink ---- */

static int
remove_entry(int dfd, const char *name, sw_error_t *err)
{
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : sw_error(err, errno, "stat `%s` in the layer", name);
  if (S_ISDIR(st.st_mode))
    return sw_rm_rf_at(dfd, name, err);
  if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
    return sw_error(err, errno, "remove `%s` in the layer", name);
  return 0;
}

/* Open (creating if needed) directory `name` in dfd. A non-directory there is replaced.
 * Metadata for a new one: `mode`, uid, gid. */
static int
open_or_mkdir(int dfd, const char *name, mode_t mode, uid_t uid, gid_t gid, bool *created,
              sw_error_t *err)
{
  *created = false;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT) {
    if (remove_entry(dfd, name, err) < 0)
      return -1;
  }
  if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
    return sw_error(err, errno, "mkdir `%s` in the layer", name);
  fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s` in the layer", name);
  if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode & 07777) < 0) {
    int e = errno;
    close(fd);
    return sw_error(err, e, "set owner/mode of `%s` in the layer", name);
  }
  *created = true;
  return fd;
}

/* Open the layer directory for image path `canon`, creating each missing component with the
 * image's metadata when the image has it, else 0755 owned by uid:gid. */
static int
layer_dir_fd(sw_copy_t *c, const char *canon, uid_t uid, gid_t gid, sw_error_t *err)
{
  int fd = dup(c->layer_fd);
  if (fd < 0)
    return sw_error(err, errno, "dup");
  _cleanup_free_ char *cur = xstrdup("/");
  const char *p = canon;
  while (*p == '/')
    p++;
  while (*p) {
    size_t n = strcspn(p, "/");
    _cleanup_free_ char *comp = xstrndup(p, n);
    char *next = path_join(cur, comp);
    free(cur);
    cur = next;
    mode_t mode = 0755;
    uid_t u = uid;
    gid_t g = gid;
    if (c->o.dest_fs) {
      _cleanup_free_ char *canon2 = NULL, *host = NULL;
      struct stat st;
      sw_error_t e = NULL;
      if (sw_lowerfs_lookup(c->o.dest_fs, cur, false, &canon2, &st, &host, &e) == 0 &&
          S_ISDIR(st.st_mode)) {
        mode = st.st_mode;
        u = st.st_uid;
        g = st.st_gid;
      }
      sw_error_release(&e);
    }
    bool created;
    int nfd = open_or_mkdir(fd, comp, mode, u, g, &created, err);
    close(fd);
    if (nfd < 0)
      return -1;
    fd = nfd;
    if (created)
      sw_strv_push(&c->touched, cur);
    p += n;
    while (*p == '/')
      p++;
  }
  return fd;
}

static void
set_times(int fd, const char *name, const struct timespec *mtime, int flags)
{
  struct timespec ts[2] = {*mtime, *mtime};
  if (name)
    utimensat(fd, name, ts, flags);
  else
    futimens(fd, ts);
}

/* Copy xattrs of a file from an image (capabilities, ACLs), never overlay's own. */
static void
copy_xattrs(const char *src_host, int dst_fd)
{
  char names[4096];
  ssize_t n = llistxattr(src_host, names, sizeof(names));
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
    const char *name = names + i;
    if (sw_str_has_prefix(name, "trusted.overlay.") || sw_str_has_prefix(name, "user.overlay."))
      continue;
    char val[4096];
    ssize_t vl = lgetxattr(src_host, name, val, sizeof(val));
    if (vl >= 0)
      fsetxattr(dst_fd, name, val, (size_t)vl, 0);
  }
}

static int
copy_fd(int in, int out, off_t size)
{
  if (ioctl(out, FICLONE, in) == 0)
    return 0;
  off_t left = size;
  while (left > 0) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
        break;
      return -1;
    }
    if (n == 0)
      break;
    left -= n;
  }
  if (left == size || left > 0) {
    /* Fallback (or the rest of a short copy_file_range): plain reads. */
    if (lseek(in, size - left, SEEK_SET) < 0 || lseek(out, size - left, SEEK_SET) < 0)
      return -1;
    _cleanup_free_ char *buf = xmalloc(IO_BUF); /* heap, not TLS: each thread would zero it */
    for (;;) {
      ssize_t r = read(in, buf, IO_BUF);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        return -1;
      }
      if (r == 0)
        break;
      if (sw_write_all(out, buf, (size_t)r) < 0)
        return -1;
    }
  }
  return 0;
}

typedef struct {
  mode_t mode; /* full st_mode */
  uid_t uid;
  gid_t gid;
  struct timespec mtime;
  off_t size;
  dev_t rdev;
} meta_t;

static void
apply_opts(const sw_copy_t *c, meta_t *m, bool from_context)
{
  if (c->o.chown) {
    m->uid = c->o.uid;
    m->gid = c->o.gid;
  } else if (from_context) {
    m->uid = 0;
    m->gid = 0;
  }
  if (c->o.chmod >= 0 && !S_ISLNK(m->mode))
    m->mode = (m->mode & S_IFMT) | (mode_t)c->o.chmod;
}

static int
put_file(int dfd, const char *name, int src_fd, const char *src_host, const meta_t *m,
         sw_error_t *err)
{
  if (remove_entry(dfd, name, err) < 0)
    return -1;
  _cleanup_close_ int fd =
      openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return sw_error(err, errno, "create `%s` in the layer", name);
  if (src_fd >= 0 && copy_fd(src_fd, fd, m->size) < 0)
    return sw_error(err, errno, "copy into `%s`", name);
  if (src_host)
    copy_xattrs(src_host, fd);
  if (fchown(fd, m->uid, m->gid) < 0 || fchmod(fd, m->mode & 07777) < 0)
    return sw_error(err, errno, "set owner/mode of `%s`", name);
  set_times(fd, NULL, &m->mtime, 0);
  return 0;
}

static int
put_symlink(int dfd, const char *name, const char *target, const meta_t *m, sw_error_t *err)
{
  if (remove_entry(dfd, name, err) < 0)
    return -1;
  if (symlinkat(target, dfd, name) < 0)
    return sw_error(err, errno, "symlink `%s` in the layer", name);
  if (fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sw_error(err, errno, "chown `%s`", name);
  set_times(dfd, name, &m->mtime, AT_SYMLINK_NOFOLLOW);
  return 0;
}

static int
put_special(int dfd, const char *name, const meta_t *m, sw_error_t *err)
{
  if (S_ISSOCK(m->mode))
    return 0; /* sockets are not copied (nor put in layers) */
  if (remove_entry(dfd, name, err) < 0)
    return -1;
  if (mknodat(dfd, name, m->mode, m->rdev) < 0)
    return sw_error(err, errno, "mknod `%s` in the layer", name);
  if (fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sw_error(err, errno, "chown `%s`", name);
  set_times(dfd, name, &m->mtime, AT_SYMLINK_NOFOLLOW);
  return 0;
}

/* A directory of the source: replaces a non-directory, keeps (and re-owns) an existing one. */
static int
put_dir(int dfd, const char *name, const meta_t *m, sw_error_t *err)
{
  bool created;
  int fd = open_or_mkdir(dfd, name, m->mode, m->uid, m->gid, &created, err);
  if (fd < 0)
    return -1;
  if (!created && (fchown(fd, m->uid, m->gid) < 0 || fchmod(fd, m->mode & 07777) < 0)) {
    int e = errno;
    close(fd);
    return sw_error(err, e, "set owner/mode of `%s`", name);
  }
  return fd;
}

/* ---- the copy ---- */

int
sw_copy_new(const char *layer_dir, const sw_copy_opts_t *opts, sw_copy_t **out, sw_error_t *err)
{
  int fd = open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", layer_dir);
  sw_copy_t *c = xcalloc(1, sizeof(*c));
  c->layer_dir = xstrdup(layer_dir);
  c->layer_fd = fd;
  c->o = *opts;
  *out = c;
  return 0;
}

void
sw_copy_free(sw_copy_t *c)
{
  if (c == NULL)
    return;
  close(c->layer_fd);
  free(c->layer_dir);
  free(c->dest);
  sw_strv_free(c->touched);
  free(c);
}

int
sw_copy_set_dest(sw_copy_t *c, const char *dest, bool many, sw_error_t *err)
{
  size_t n = strlen(dest);
  c->dest_dir =
      many || (n > 0 && dest[n - 1] == '/') || (n >= 2 && strcmp(dest + n - 2, "/.") == 0);
  free(c->dest);
  c->dest = sw_copy_resolve_dest(c->o.dest_fs, dest, err);
  if (c->dest == NULL)
    return -1;
  if (strcmp(c->dest, "/") == 0)
    c->dest_dir = true;
  if (!c->dest_dir && c->o.dest_fs) {
    _cleanup_free_ char *canon = NULL, *host = NULL;
    struct stat st;
    sw_error_t e = NULL;
    if (sw_lowerfs_lookup(c->o.dest_fs, c->dest, true, &canon, &st, &host, &e) == 0 &&
        S_ISDIR(st.st_mode))
      c->dest_dir = true;
    sw_error_release(&e);
  }
  return 0;
}

/* Where an item goes: for a directory source the directory receiving its contents, else the
 * file path. Returns the parent dir fd in the layer and the last name (NULL name for "/"). */
static char *
target_path(sw_copy_t *c, const char *base, bool src_is_dir, const char *sub)
{
  if (sub && *sub)
    return path_join(c->dest, sub);
  if (src_is_dir || !c->dest_dir)
    return xstrdup(c->dest);
  return path_join(c->dest, base);
}

static uid_t
new_dir_uid(const sw_copy_t *c)
{
  return c->o.chown ? c->o.uid : 0;
}

static gid_t
new_dir_gid(const sw_copy_t *c)
{
  return c->o.chown ? c->o.gid : 0;
}

/* Open the parent of `path` in the layer; *name gets its last component. */
static int
open_parent(sw_copy_t *c, const char *path, char **name, sw_error_t *err)
{
  const char *slash = strrchr(path, '/');
  _cleanup_free_ char *parent =
      slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
  *name = xstrdup(slash + 1);
  return layer_dir_fd(c, parent, new_dir_uid(c), new_dir_gid(c), err);
}

static void
meta_from_stat(meta_t *m, const struct stat *st)
{
  m->mode = st->st_mode;
  m->uid = st->st_uid;
  m->gid = st->st_gid;
  m->mtime = st->st_mtim;
  m->size = st->st_size;
  m->rdev = st->st_rdev;
}

/* -- from the build context -- */

static int ctx_item(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, int dfd, const char *name,
                    const char *exrel, sw_error_t *err);

static int
ctx_dir_contents(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, int fd, const char *exrel,
                 sw_error_t *err)
{
  if (sw_context_list(ctx, node, err) < 0)
    return -1;
  for (size_t i = 0; i < node->nkids; i++) {
    sw_ctx_node_t *k = node->kids[i];
    _cleanup_free_ char *krel = exrel[0] ? xasprintf("%s/%s", exrel, k->name) : xstrdup(k->name);
    if (sw_excludes_match(c->o.excludes, krel))
      continue;
    if (ctx_item(c, ctx, k, fd, k->name, krel, err) < 0)
      return -1;
  }
  return 0;
}

static int
ctx_item(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, int dfd, const char *name,
         const char *exrel, sw_error_t *err)
{
  meta_t m;
  meta_from_stat(&m, &node->st);
  apply_opts(c, &m, true);
  if (S_ISDIR(m.mode)) {
    int fd = put_dir(dfd, name, &m, err);
    if (fd < 0)
      return -1;
    int r = ctx_dir_contents(c, ctx, node, fd, exrel, err);
    if (r == 0)
      set_times(fd, NULL, &m.mtime, 0);
    close(fd);
    return r;
  }
  if (S_ISREG(m.mode)) {
    _cleanup_close_ int src =
        openat(sw_context_dirfd(ctx), node->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0)
      return sw_error(err, errno, "open `%s` in the build context", node->rel);
    return put_file(dfd, name, src, NULL, &m, err);
  }
  if (S_ISLNK(m.mode))
    return put_symlink(dfd, name, node->link, &m, err);
  return put_special(dfd, name, &m, err);
}

int
sw_copy_add_context(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, const char *sub,
                    sw_error_t *err)
{
  bool is_dir = S_ISDIR(node->st.st_mode);
  _cleanup_free_ char *target = target_path(c, node->name, is_dir, sub);
  if (is_dir) {
    int fd = layer_dir_fd(c, target, new_dir_uid(c), new_dir_gid(c), err);
    if (fd < 0)
      return -1;
    int r = ctx_dir_contents(c, ctx, node, fd, "", err);
    close(fd);
    if (r == 0 && !sw_strv_contains(c->touched, target))
      sw_strv_push(&c->touched, target);
    return r;
  }
  if (sw_excludes_match(c->o.excludes, node->name))
    return 0;
  _cleanup_free_ char *name = NULL;
  _cleanup_close_ int dfd = open_parent(c, target, &name, err);
  if (dfd < 0)
    return -1;
  return ctx_item(c, ctx, node, dfd, name, node->name, err);
}

/* -- from an image or stage -- */

static int lower_item(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent,
                      const sw_lowerfs_ent_t *e, int dfd, const char *name, const char *exrel,
                      sw_error_t *err);

static int
lower_dir_contents(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, int fd,
                   const char *exrel, sw_error_t *err)
{
  sw_lowerfs_ent_t *ents = NULL;
  size_t n = 0;
  if (sw_lowerfs_list(fs, d, &ents, &n, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    _cleanup_free_ char *krel =
        exrel[0] ? xasprintf("%s/%s", exrel, ents[i].name) : xstrdup(ents[i].name);
    if (sw_excludes_match(c->o.excludes, krel))
      continue;
    r = lower_item(c, fs, d, &ents[i], fd, ents[i].name, krel, err);
  }
  sw_lowerfs_ents_free(ents, n);
  return r;
}

static int
lower_item(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent,
           const sw_lowerfs_ent_t *e, int dfd, const char *name, const char *exrel, sw_error_t *err)
{
  meta_t m;
  meta_from_stat(&m, &e->st);
  apply_opts(c, &m, false);
  if (S_ISDIR(m.mode)) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *d = NULL;
    if (sw_lowerfs_child(fs, parent, e->name, &d, err) < 0)
      return err && *err ? -1 : sw_error(err, ENOTDIR, "`%s`", e->name);
    int fd = put_dir(dfd, name, &m, err);
    if (fd < 0)
      return -1;
    int r = lower_dir_contents(c, fs, d, fd, exrel, err);
    if (r == 0)
      set_times(fd, NULL, &m.mtime, 0);
    close(fd);
    return r;
  }
  if (S_ISREG(m.mode)) {
    if (c->o.link_lower && !c->o.chown && c->o.chmod < 0) {
      if (remove_entry(dfd, name, err) < 0)
        return -1;
      if (linkat(AT_FDCWD, e->host, dfd, name, 0) == 0)
        return 0;
      if (errno != EXDEV && errno != EMLINK && errno != EPERM)
        return sw_error(err, errno, "link `%s` into the layer", e->host);
    }
    _cleanup_close_ int src = open(e->host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0)
      return sw_error(err, errno, "open `%s`", e->host);
    return put_file(dfd, name, src, e->host, &m, err);
  }
  if (S_ISLNK(m.mode)) {
    char target[4096];
    ssize_t n = readlink(e->host, target, sizeof(target) - 1);
    if (n < 0)
      return sw_error(err, errno, "readlink `%s`", e->host);
    target[n] = '\0';
    return put_symlink(dfd, name, target, &m, err);
  }
  return put_special(dfd, name, &m, err);
}

int
sw_copy_add_lower(sw_copy_t *c, sw_lowerfs_t *fs, const char *canon, const struct stat *st,
                  const char *host, const char *sub, sw_error_t *err)
{
  const char *base = strrchr(canon, '/') ? strrchr(canon, '/') + 1 : canon;
  bool is_dir = S_ISDIR(st->st_mode);
  _cleanup_free_ char *target = target_path(c, base, is_dir, sub);
  if (is_dir) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *d = NULL;
    int r = sw_lowerfs_opendir(fs, canon, &d, err);
    if (r < 0)
      return err && *err ? -1 : sw_error(err, -r, "`%s`", canon);
    int fd = layer_dir_fd(c, target, new_dir_uid(c), new_dir_gid(c), err);
    if (fd < 0)
      return -1;
    r = lower_dir_contents(c, fs, d, fd, "", err);
    close(fd);
    if (r == 0 && !sw_strv_contains(c->touched, target))
      sw_strv_push(&c->touched, target);
    return r;
  }
  if (sw_excludes_match(c->o.excludes, base))
    return 0;
  _cleanup_free_ char *name = NULL;
  _cleanup_close_ int dfd = open_parent(c, target, &name, err);
  if (dfd < 0)
    return -1;
  sw_lowerfs_ent_t e = {.name = (char *)base, .host = (char *)host, .st = *st};
  return lower_item(c, fs, NULL, &e, dfd, name, base, err);
}

int
sw_copy_add_data(sw_copy_t *c, const char *name, const char *data, size_t len, sw_error_t *err)
{
  _cleanup_free_ char *target = target_path(c, name, false, NULL);
  _cleanup_free_ char *last = NULL;
  _cleanup_close_ int dfd = open_parent(c, target, &last, err);
  if (dfd < 0)
    return -1;
  meta_t m = {.mode = S_IFREG | 0644, .size = (off_t)len};
  m.mtime.tv_sec = c->o.now;
  apply_opts(c, &m, true);
  if (put_file(dfd, last, -1, NULL, &m, err) < 0)
    return -1;
  _cleanup_close_ int fd = openat(dfd, last, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || sw_write_all(fd, data, len) < 0)
    return sw_error(err, errno, "write `%s` in the layer", target);
  set_times(fd, NULL, &m.mtime, 0);
  return 0;
}

bool
sw_copy_is_archive(const char *host_path)
{
  _cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  unsigned char head[8];
  ssize_t n = pread(fd, head, sizeof(head), 0);
  if (n < 4)
    return false;
  const sw_codec_t *codec = sw_codec_detect(head, (size_t)n);
  /* Look at the (decompressed) tar header: "ustar" at offset 257. */
  sw_source_t *src = sw_source_new(fd, codec, -1);
  char buf[512];
  size_t got = 0;
  sw_error_t e = NULL;
  while (got < sizeof(buf)) {
    ssize_t r = sw_source_read(src, buf + got, sizeof(buf) - got, &e);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  sw_error_release(&e);
  sw_source_free(src);
  return got == sizeof(buf) && memcmp(buf + 257, "ustar", 5) == 0;
}

int
sw_copy_add_archive(sw_copy_t *c, const char *host_path, sw_error_t *err)
{
  _cleanup_close_ int dfd = layer_dir_fd(c, c->dest, new_dir_uid(c), new_dir_gid(c), err);
  if (dfd < 0)
    return -1;
  if (!sw_strv_contains(c->touched, c->dest))
    sw_strv_push(&c->touched, c->dest);
  _cleanup_close_ int in = open(host_path, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return sw_error(err, errno, "open `%s`", host_path);
  _cleanup_free_ char *root = xasprintf("%s%s", c->layer_dir, c->dest);
  sw_layer_apply_opts_t ao = sw_layer_apply_opts_default();
  ao.mode = SW_APPLY_FLAT;
  ao.name = host_path;
  return sw_layer_apply(in, root, &ao, NULL, err);
}

int
sw_copy_finish(sw_copy_t *c, sw_error_t *err)
{
  struct timespec now = {.tv_sec = c->o.now};
  for (size_t i = 0; c->touched && c->touched[i]; i++) {
    const char *p = c->touched[i];
    while (*p == '/')
      p++;
    if (*p == '\0')
      continue;
    set_times(c->layer_fd, p, &now, AT_SYMLINK_NOFOLLOW);
  }
  return 0;
}

/* As a real mkdir -p (Docker's WORKDIR, runc's cwd): the deepest existing parent gets the
 * build's mtime (a directory was made in it), the ones above keep the image's. */
static void
keep_parent_times(sw_copy_t *c, sw_lowerfs_t *fs, const char *canon)
{
  _cleanup_free_ char *cur = xstrdup(canon);
  bool deepest = true;
  for (char *slash = strrchr(cur, '/'); slash && slash != cur; slash = strrchr(cur, '/')) {
    *slash = '\0';
    _cleanup_free_ char *canon2 = NULL, *host = NULL;
    struct stat st;
    sw_error_t e = NULL;
    if (sw_lowerfs_lookup(fs, cur, false, &canon2, &st, &host, &e) == 0 && S_ISDIR(st.st_mode)) {
      if (!deepest)
        set_times(c->layer_fd, cur + 1, &st.st_mtim, AT_SYMLINK_NOFOLLOW);
      deepest = false;
    }
    sw_error_release(&e);
  }
}

int
sw_copy_mkdir_layer(const char *layer_dir, sw_lowerfs_t *fs, const char *path, uid_t uid, gid_t gid,
                    int64_t now, sw_error_t *err)
{
  sw_copy_opts_t o = {
      .chown = true, .uid = uid, .gid = gid, .chmod = -1, .now = now, .dest_fs = fs};
  _cleanup_(sw_copy_freep) sw_copy_t *c = NULL;
  if (sw_copy_new(layer_dir, &o, &c, err) < 0)
    return -1;
  _cleanup_free_ char *canon = sw_copy_resolve_dest(fs, path, err);
  int fd = layer_dir_fd(c, canon, uid, gid, err);
  if (fd < 0)
    return -1;
  close(fd);
  if (sw_copy_finish(c, err) < 0)
    return -1;
  keep_parent_times(c, fs, canon);
  return 0;
}

/* ---- content hash of a path in an image ---- */

static int hash_ent(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent, const sw_lowerfs_ent_t *e,
                    const sw_excludes_t *ex, sw_fcache_t *fc, const char *exrel,
                    char out[SW_HASH_HEX_SIZE], sw_error_t *err);

static int
hash_dir(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, mode_t mode, const sw_excludes_t *ex,
         sw_fcache_t *fc, const char *exrel, char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  sw_lowerfs_ent_t *ents = NULL;
  size_t n = 0;
  if (sw_lowerfs_list(fs, d, &ents, &n, err) < 0)
    return -1;
  sw_content_dir_t *h = sw_content_dir_new(mode);
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    _cleanup_free_ char *krel =
        exrel[0] ? xasprintf("%s/%s", exrel, ents[i].name) : xstrdup(ents[i].name);
    if (sw_excludes_match(ex, krel))
      continue;
    char kh[SW_HASH_HEX_SIZE];
    r = hash_ent(fs, d, &ents[i], ex, fc, krel, kh, err);
    if (r == 0)
      sw_content_dir_add(h, ents[i].name, kh);
  }
  sw_content_dir_finish(h, out);
  sw_lowerfs_ents_free(ents, n);
  return r;
}

static int
hash_file(sw_fcache_t *fc, const char *host, const struct stat *st, char hex[SW_HASH_HEX_SIZE],
          sw_error_t *err)
{
  sw_fcache_t *own = fc ? NULL : sw_fcache_open(NULL, SW_FCACHE_BY_PATH, 0);
  int r = sw_fcache_file(fc ? fc : own, AT_FDCWD, host, st, hex, err);
  sw_fcache_free(own);
  return r;
}

static int
hash_ent(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent, const sw_lowerfs_ent_t *e,
         const sw_excludes_t *ex, sw_fcache_t *fc, const char *exrel, char out[SW_HASH_HEX_SIZE],
         sw_error_t *err)
{
  char node[SW_HASH_HEX_SIZE];
  mode_t mode = e->st.st_mode;
  if (S_ISREG(mode)) {
    char bytes[SW_HASH_HEX_SIZE];
    if (hash_file(fc, e->host, &e->st, bytes, err) < 0)
      return -1;
    sw_content_file(mode, (uint64_t)e->st.st_size, bytes, node);
  } else if (S_ISLNK(mode)) {
    char target[4096];
    ssize_t n = readlink(e->host, target, sizeof(target) - 1);
    if (n < 0)
      return sw_error(err, errno, "readlink `%s`", e->host);
    target[n] = '\0';
    sw_content_symlink(target, node);
  } else if (S_ISDIR(mode)) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *d = NULL;
    if (sw_lowerfs_child(fs, parent, e->name, &d, err) < 0)
      return err && *err ? -1 : sw_error(err, ENOTDIR, "`%s`", e->name);
    if (hash_dir(fs, d, mode, ex, fc, exrel, node, err) < 0)
      return -1;
  } else {
    sw_content_special(mode, e->st.st_rdev, node);
  }
  sw_content_owned(node, e->st.st_uid, e->st.st_gid, out);
  return 0;
}

int
sw_copy_hash_lower(sw_lowerfs_t *fs, const char *path, const sw_excludes_t *excludes,
                   sw_fcache_t *fc, char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  int r = sw_lowerfs_lookup(fs, path, true, &canon, &st, &host, err);
  if (r < 0)
    return r;
  if (S_ISDIR(st.st_mode)) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *d = NULL;
    r = sw_lowerfs_opendir(fs, canon, &d, err);
    if (r < 0)
      return r;
    char node[SW_HASH_HEX_SIZE];
    if (hash_dir(fs, d, st.st_mode, excludes, fc, "", node, err) < 0)
      return -1;
    sw_content_owned(node, st.st_uid, st.st_gid, out);
    return 0;
  }
  const char *base = strrchr(canon, '/') ? strrchr(canon, '/') + 1 : canon;
  if (sw_excludes_match(excludes, base)) {
    sw_content_dir_finish(sw_content_dir_new(0), out);
    return 0;
  }
  sw_lowerfs_ent_t e = {.name = (char *)base, .host = host, .st = st};
  return hash_ent(fs, NULL, &e, excludes, fc, base, out, err);
}
