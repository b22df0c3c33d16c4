/* slipway: COPY/ADD into a layer directory; see copy.h. */
#include "copy.h"

#include "compress.h"
#include "layer_apply.h"
#include "userns.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <libgen.h>
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
  sw_inomap_t links; /* source files with several names: the first one's path in the layer */
};

/* ---- paths ---- */

static char *
path_join(const char *dir, const char *name)
{
  if (strcmp(dir, "/") == 0)
    return xasprintf("/%s", name);
  return xasprintf("%s/%s", dir, name);
}

/* The target of a symlink of the image, as a path to walk again from "/": the link's text
 * (relative to the link's directory `dir`) followed by the components still to resolve. */
static char *
relink(const char *host, const char *dir, const char *rest, sw_error_t *err)
{
  char target[4096];
  ssize_t n = readlink(host, target, sizeof(target) - 1);
  if (n < 0) {
    sw_error(err, errno, "readlink `%s`", host);
    return NULL;
  }
  target[n] = '\0';
  _cleanup_free_ char *joined = target[0] == '/' ? xasprintf("%s/%s", target, rest)
                                                 : xasprintf("%s/%s/%s", dir, target, rest);
  return sw_path_clean_abs(joined);
}

char *
sw_copy_resolve_dest(sw_lowerfs_t *fs, const char *path, sw_error_t *err)
{
  _cleanup_free_ char *clean = sw_path_clean_abs(path);
  if (fs == NULL || strcmp(clean, "/") == 0)
    return steal_ptr(&clean);
  /* As BuildKit's fs.RootPath: every symlink on the path is followed inside the image, the
   * last component's too and dangling ones as well (`ln -s target /link` then COPY to
   * /link/sub/ writes /target/sub/ and keeps the link); what does not exist is taken as
   * written. */
  char *cur = xstrdup("/");
  const char *p = clean + 1;
  int links = 0;
  while (*p) {
    size_t n = strcspn(p, "/");
    _cleanup_free_ char *comp = xstrndup(p, n);
    _cleanup_free_ char *cand = path_join(cur, comp);
    _cleanup_free_ char *canon = NULL, *host = NULL;
    struct stat st;
    sw_error_t e = NULL;
    int r = sw_lowerfs_lookup(fs, cand, false, &canon, &st, &host, &e);
    sw_error_release(&e);
    const char *rest = p + n;
    while (*rest == '/')
      rest++;
    if (r == 0 && S_ISLNK(st.st_mode)) {
      if (++links > 40) {
        free(cur);
        sw_error(err, ELOOP, "destination `%s`: too many levels of symbolic links in the image",
                 path);
        return NULL;
      }
      char *next = relink(host, cur, rest, err);
      free(cur);
      if (next == NULL)
        return NULL;
      free(clean);
      clean = next; /* walk the new path from the top */
      cur = xstrdup("/");
      p = clean + 1;
      continue;
    }
    if (r < 0 || !S_ISDIR(st.st_mode)) {
      /* The rest does not exist (or is not a directory): taken as written. */
      char *full = path_join(cur, p);
      free(cur);
      return full;
    }
    free(cur);
    cur = steal_ptr(&canon);
    p = rest;
  }
  return cur;
}

/* ---- writing into the layer, never following a symlink ---- */

/* Removes a non-directory an earlier source of this copy wrote (check_replace keeps
 * directories from being replaced). */
static int
remove_entry(int dfd, const char *name, sw_error_t *err)
{
  if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
    return sw_error(err, errno, "remove `%s` in the layer", name);
  return 0;
}

static const char *
type_name(mode_t m)
{
  return S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : S_ISREG(m) ? "file" : "special file";
}

static int
not_a_dir(const char *path, mode_t have, sw_error_t *err)
{
  return sw_error(err, ENOTDIR,
                  "cannot copy to non-directory: `%s` is a %s and the source a directory (as "
                  "BuildKit, a directory never replaces something else: remove it in a RUN step "
                  "first, or copy elsewhere)",
                  path, type_name(have));
}

/* What the image being built has at `path` (a last symlink not followed): its st_mode, 0 if
 * nothing. */
static mode_t
image_mode(const sw_copy_t *c, const char *path)
{
  if (c->o.dest_fs == NULL)
    return 0;
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  sw_error_t e = NULL;
  int r = sw_lowerfs_lookup(c->o.dest_fs, path, false, &canon, &st, &host, &e);
  sw_error_release(&e);
  return r == 0 ? st.st_mode : 0;
}

/* Open (creating if needed) directory `name` in dfd (image path `path`, for errors). A
 * non-directory there is an error. Metadata for a new one: `mode`, uid, gid. */
static int
open_or_mkdir(int dfd, const char *name, const char *path, mode_t mode, uid_t uid, gid_t gid,
              bool *created, sw_error_t *err)
{
  *created = false;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT) {
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
      return not_a_dir(path, st.st_mode, err);
    return sw_error(err, errno, "open `%s` in the layer", path);
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
      int r = sw_lowerfs_lookup(c->o.dest_fs, cur, false, &canon2, &st, &host, &e);
      sw_error_release(&e);
      if (r == 0 && !S_ISDIR(st.st_mode)) {
        close(fd);
        return not_a_dir(cur, st.st_mode, err);
      }
      if (r == 0) {
        mode = st.st_mode;
        u = st.st_uid;
        g = st.st_gid;
      }
    }
    bool created;
    int nfd = open_or_mkdir(fd, comp, cur, mode, u, g, &created, err);
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

/* Where an entry goes. */
typedef struct {
  int dfd;          /* its parent directory in the layer */
  const char *name; /* its name there */
  const char *path; /* its absolute path in the image */
  bool in_image;    /* the parent is a directory of the image, so `path` may exist there */
} dst_t;

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

/* As BuildKit's copier, a directory is never replaced by something else, nor the reverse
 * (fsutil: "cannot replace to directory … with file", "cannot copy to non-directory: …"),
 * whether the image has it or an earlier source of this copy wrote it. `have`: its st_mode
 * (0: nothing there). */
static int
check_replace(const sw_copy_t *c, const dst_t *d, mode_t src_mode, mode_t *have, sw_error_t *err)
{
  struct stat st;
  *have = 0;
  if (fstatat(d->dfd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    *have = st.st_mode;
  else if (d->in_image)
    *have = image_mode(c, d->path);
  if (*have == 0 || S_ISDIR(*have) == S_ISDIR(src_mode))
    return 0;
  if (S_ISDIR(src_mode))
    return not_a_dir(d->path, *have, err);
  return sw_error(err, EISDIR,
                  "cannot replace to directory `%s` with %s (as BuildKit, a directory is never "
                  "replaced: remove it in a RUN step first, or copy elsewhere)",
                  d->path, S_ISLNK(src_mode) ? "symlink" : "file");
}

/* Makes room for a non-directory at d (after check_replace). */
static int
make_room(const sw_copy_t *c, const dst_t *d, mode_t src_mode, sw_error_t *err)
{
  mode_t have;
  if (check_replace(c, d, src_mode, &have, err) < 0)
    return -1;
  return remove_entry(d->dfd, d->name, err);
}

/* A source file with other names in its tree (`group`: which tree): the first one copied is
 * written, the next ones become hardlinks of it, as BuildKit's copier does. Returns 1 if d
 * was linked, 0 if the caller writes the file (recorded as the first), -1 on error. */
static int
link_to_first(sw_copy_t *c, const struct stat *src, uint64_t group, const dst_t *d, sw_error_t *err)
{
  if (src->st_nlink < 2)
    return 0;
  const char *first =
      sw_inomap_lookup_or_add(&c->links, src->st_dev, src->st_ino, group, d->path + 1);
  if (first == NULL)
    return 0;
  if (linkat(c->layer_fd, first, d->dfd, d->name, 0) < 0)
    return errno == ENOENT ? 0 : sw_error(err, errno, "hardlink `%s` to /%s", d->path, first);
  return 1;
}

/* Writes a new file at d (room made). */
static int
write_file(const dst_t *d, int src_fd, const char *src_host, const meta_t *m, sw_error_t *err)
{
  _cleanup_close_ int fd =
      openat(d->dfd, d->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return sw_error(err, errno, "create `%s` in the layer", d->path);
  if (src_fd >= 0 && copy_fd(src_fd, fd, m->size) < 0)
    return sw_error(err, errno, "copy into `%s`", d->path);
  if (src_host)
    copy_xattrs(src_host, fd);
  if (fchown(fd, m->uid, m->gid) < 0 || fchmod(fd, m->mode & 07777) < 0)
    return sw_error(err, errno, "set owner/mode of `%s`", d->path);
  set_times(fd, NULL, &m->mtime, 0);
  return 0;
}

static int
put_file(const sw_copy_t *c, const dst_t *d, int src_fd, const char *src_host, const meta_t *m,
         sw_error_t *err)
{
  if (make_room(c, d, m->mode, err) < 0)
    return -1;
  return write_file(d, src_fd, src_host, m, err);
}

/* A regular file of a source tree: a hardlink of an earlier name of it, or a copy. */
static int
put_regular(sw_copy_t *c, const dst_t *d, const struct stat *src, uint64_t group, int src_fd,
            const char *src_host, const meta_t *m, sw_error_t *err)
{
  if (make_room(c, d, m->mode, err) < 0)
    return -1;
  int r = link_to_first(c, src, group, d, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  return write_file(d, src_fd, src_host, m, err);
}

static int
put_symlink(const sw_copy_t *c, const dst_t *d, const char *target, const meta_t *m,
            sw_error_t *err)
{
  if (make_room(c, d, m->mode, err) < 0)
    return -1;
  if (symlinkat(target, d->dfd, d->name) < 0)
    return sw_error(err, errno, "symlink `%s` in the layer", d->path);
  if (fchownat(d->dfd, d->name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sw_error(err, errno, "chown `%s`", d->path);
  set_times(d->dfd, d->name, &m->mtime, AT_SYMLINK_NOFOLLOW);
  return 0;
}

static int
put_special(const sw_copy_t *c, const dst_t *d, const meta_t *m, sw_error_t *err)
{
  if (S_ISSOCK(m->mode))
    return 0; /* sockets are not copied (nor put in layers) */
  if (make_room(c, d, m->mode, err) < 0)
    return -1;
  if (mknodat(d->dfd, d->name, m->mode, m->rdev) < 0)
    return sw_error(err, errno, "mknod `%s` in the layer", d->path);
  if (fchownat(d->dfd, d->name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sw_error(err, errno, "chown `%s`", d->path);
  set_times(d->dfd, d->name, &m->mtime, AT_SYMLINK_NOFOLLOW);
  return 0;
}

/* A directory of the source: keeps (and re-owns) an existing one, never replaces a
 * non-directory. *in_image: the image has it, so its entries may exist there too. */
static int
put_dir(const sw_copy_t *c, const dst_t *d, const meta_t *m, bool *in_image, sw_error_t *err)
{
  mode_t have;
  if (check_replace(c, d, m->mode, &have, err) < 0)
    return -1;
  *in_image = d->in_image && S_ISDIR(image_mode(c, d->path));
  bool created;
  int fd = open_or_mkdir(d->dfd, d->name, d->path, m->mode, m->uid, m->gid, &created, err);
  if (fd < 0)
    return -1;
  if (!created && (fchown(fd, m->uid, m->gid) < 0 || fchmod(fd, m->mode & 07777) < 0)) {
    int e = errno;
    close(fd);
    return sw_error(err, e, "set owner/mode of `%s`", d->path);
  }
  return fd;
}

/* ---- the copy ---- */

int
sw_copy_new(const char *layer_dir, const sw_copy_opts_t *opts, sw_copy_t **out, sw_error_t *err)
{
  if (sw_userns_need("a copy", err) < 0)
    return -1;
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
  sw_inomap_clear(&c->links);
  free(c);
}

int
sw_copy_set_dest(sw_copy_t *c, const char *dest, sw_error_t *err)
{
  size_t n = strlen(dest);
  c->dest_dir = (n > 0 && dest[n - 1] == '/') || (n >= 2 && strcmp(dest + n - 2, "/.") == 0);
  free(c->dest);
  c->dest = sw_copy_resolve_dest(c->o.dest_fs, dest, err);
  if (c->dest == NULL)
    return -1;
  if (strcmp(c->dest, "/") == 0 || S_ISDIR(image_mode(c, c->dest)))
    c->dest_dir = true;
  return 0;
}

/* Where an item goes: for a directory source the directory receiving its contents, else the
 * file path. As BuildKit, a destination without a trailing "/" names the item itself, each
 * source in turn: a file goes inside a directory an earlier source made there. A file there
 * would be replaced by the next source, keeping only the last: that is an error here. */
static char *
target_path(sw_copy_t *c, const char *base, bool src_is_dir, const char *sub, sw_error_t *err)
{
  if (sub && *sub)
    return path_join(c->dest, sub);
  if (src_is_dir)
    return xstrdup(c->dest);
  if (c->dest_dir)
    return path_join(c->dest, base);
  struct stat st;
  if (fstatat(c->layer_fd, c->dest + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode))
      return path_join(c->dest, base);
    sw_error(err, EEXIST,
             "several sources into `%s`, which is not a directory: each would replace the one "
             "before (BuildKit keeps only the last); end the destination with / to copy them "
             "into a directory",
             c->dest);
    return NULL;
  }
  return xstrdup(c->dest);
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

/* Open the parent of `path` in the layer: fills d (d->path: the parent's path; name: the last
 * component, to free). */
static int
open_parent(sw_copy_t *c, const char *path, dst_t *d, char **parent, char **name, sw_error_t *err)
{
  const char *slash = strrchr(path, '/');
  *parent = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
  *name = xstrdup(slash + 1);
  d->dfd = layer_dir_fd(c, *parent, new_dir_uid(c), new_dir_gid(c), err);
  d->name = *name;
  d->path = path;
  d->in_image = S_ISDIR(image_mode(c, *parent));
  return d->dfd;
}

/* The directory `path` itself (the destination of a directory source), opened in the layer. */
static int
open_target_dir(sw_copy_t *c, const char *path, bool *in_image, sw_error_t *err)
{
  int fd = layer_dir_fd(c, path, new_dir_uid(c), new_dir_gid(c), err);
  *in_image = fd >= 0 && S_ISDIR(image_mode(c, path));
  return fd;
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

static int ctx_item(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, const dst_t *d,
                    const char *exrel, sw_error_t *err);

/* The entries of a context directory into layer directory fd (image path `path`). */
static int
ctx_dir_contents(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, int fd, const char *path,
                 bool in_image, const char *exrel, sw_error_t *err)
{
  if (sw_context_list(ctx, node, err) < 0)
    return -1;
  for (size_t i = 0; i < node->nkids; i++) {
    sw_ctx_node_t *k = node->kids[i];
    _cleanup_free_ char *krel = exrel[0] ? xasprintf("%s/%s", exrel, k->name) : xstrdup(k->name);
    if (sw_excludes_match(c->o.excludes, krel))
      continue;
    _cleanup_free_ char *kpath = path_join(path, k->name);
    dst_t kd = {.dfd = fd, .name = k->name, .path = kpath, .in_image = in_image};
    if (ctx_item(c, ctx, k, &kd, krel, err) < 0)
      return -1;
  }
  return 0;
}

static int
ctx_item(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, const dst_t *d, const char *exrel,
         sw_error_t *err)
{
  meta_t m;
  meta_from_stat(&m, &node->st);
  apply_opts(c, &m, true);
  if (S_ISDIR(m.mode)) {
    bool in_image;
    int fd = put_dir(c, d, &m, &in_image, err);
    if (fd < 0)
      return -1;
    int r = ctx_dir_contents(c, ctx, node, fd, d->path, in_image, exrel, err);
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
    return put_regular(c, d, &node->st, 0, src, NULL, &m, err);
  }
  if (S_ISLNK(m.mode))
    return put_symlink(c, d, node->link, &m, err);
  return put_special(c, d, &m, err);
}

int
sw_copy_add_context(sw_copy_t *c, sw_context_t *ctx, sw_ctx_node_t *node, const char *sub,
                    sw_error_t *err)
{
  bool is_dir = S_ISDIR(node->st.st_mode);
  _cleanup_free_ char *target = target_path(c, node->name, is_dir, sub, err);
  if (target == NULL)
    return -1;
  if (is_dir) {
    bool in_image;
    int fd = open_target_dir(c, target, &in_image, err);
    if (fd < 0)
      return -1;
    int r = ctx_dir_contents(c, ctx, node, fd, target, in_image, "", err);
    close(fd);
    if (r == 0 && !sw_strv_contains(c->touched, target))
      sw_strv_push(&c->touched, target);
    return r;
  }
  if (sw_excludes_match(c->o.excludes, node->name))
    return 0;
  _cleanup_free_ char *parent = NULL, *name = NULL;
  dst_t d;
  if (open_parent(c, target, &d, &parent, &name, err) < 0)
    return -1;
  int r = ctx_item(c, ctx, node, &d, node->name, err);
  close(d.dfd);
  return r;
}

/* -- from an image or stage -- */

/* Hardlinks exist within one snapshot only: the snapshot directory a file of the view comes
 * from (its host path minus its path in the image) tells which tree its inode belongs to. */
static uint64_t
snapshot_group(const char *host, const char *path)
{
  size_t hl = strlen(host), pl = strlen(path);
  size_t n = hl > pl ? hl - pl : hl;
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)host[i]) * 1099511628211ULL;
  return h | 1; /* never 0, the context's group */
}

/* The group of "in the layer already" entries of the inode table (snapshot groups are odd). */
#define IN_LAYER 2

/* Without --chown/--chmod a file of a snapshot is linked into the layer: the same bytes,
 * owner, mode, times and xattrs. Unless the inode is in the layer already as another file of
 * the image (a view can show one inode twice, from two snapshots an earlier COPY --from linked
 * the same way): two files must not become one, so that one is copied. Returns 1 if linked,
 * 0 if the caller copies, -1 on error. */
static int
link_snapshot_file(sw_copy_t *c, const dst_t *d, const sw_lowerfs_ent_t *e, sw_error_t *err)
{
  if (e->st.st_nlink > 1 &&
      sw_inomap_lookup_or_add(&c->links, e->st.st_dev, e->st.st_ino, IN_LAYER, d->path + 1))
    return 0;
  if (linkat(AT_FDCWD, e->host, d->dfd, d->name, 0) == 0)
    return 1;
  if (errno == EXDEV || errno == EMLINK || errno == EPERM)
    return 0;
  return sw_error(err, errno, "link `%s` into the layer", e->host);
}

static int lower_item(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent,
                      const sw_lowerfs_ent_t *e, const char *src_path, const dst_t *d,
                      const char *exrel, sw_error_t *err);

static int
lower_dir_contents(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *sd, int fd,
                   const char *path, bool in_image, const char *exrel, sw_error_t *err)
{
  sw_lowerfs_ent_t *ents = NULL;
  size_t n = 0;
  if (sw_lowerfs_list(fs, sd, &ents, &n, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    _cleanup_free_ char *krel =
        exrel[0] ? xasprintf("%s/%s", exrel, ents[i].name) : xstrdup(ents[i].name);
    if (sw_excludes_match(c->o.excludes, krel))
      continue;
    _cleanup_free_ char *kpath = path_join(path, ents[i].name);
    _cleanup_free_ char *ksrc = path_join(sd->path, ents[i].name);
    dst_t kd = {.dfd = fd, .name = ents[i].name, .path = kpath, .in_image = in_image};
    r = lower_item(c, fs, sd, &ents[i], ksrc, &kd, krel, err);
  }
  sw_lowerfs_ents_free(ents, n);
  return r;
}

static int
lower_item(sw_copy_t *c, sw_lowerfs_t *fs, const sw_lowerfs_dir_t *parent,
           const sw_lowerfs_ent_t *e, const char *src_path, const dst_t *d, const char *exrel,
           sw_error_t *err)
{
  meta_t m;
  meta_from_stat(&m, &e->st);
  apply_opts(c, &m, false);
  if (S_ISDIR(m.mode)) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *sd = NULL;
    if (sw_lowerfs_child(fs, parent, e->name, &sd, err) < 0)
      return err && *err ? -1 : sw_error(err, ENOTDIR, "`%s`", e->name);
    bool in_image;
    int fd = put_dir(c, d, &m, &in_image, err);
    if (fd < 0)
      return -1;
    int r = lower_dir_contents(c, fs, sd, fd, d->path, in_image, exrel, err);
    if (r == 0)
      set_times(fd, NULL, &m.mtime, 0);
    close(fd);
    return r;
  }
  if (S_ISREG(m.mode)) {
    if (make_room(c, d, m.mode, err) < 0)
      return -1;
    int r = link_to_first(c, &e->st, snapshot_group(e->host, src_path), d, err);
    if (r == 0 && c->o.link_lower && !c->o.chown && c->o.chmod < 0)
      r = link_snapshot_file(c, d, e, err);
    if (r != 0)
      return r < 0 ? -1 : 0;
    _cleanup_close_ int src = open(e->host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0)
      return sw_error(err, errno, "open `%s`", e->host);
    return write_file(d, src, e->host, &m, err);
  }
  if (S_ISLNK(m.mode)) {
    char target[4096];
    ssize_t n = readlink(e->host, target, sizeof(target) - 1);
    if (n < 0)
      return sw_error(err, errno, "readlink `%s`", e->host);
    target[n] = '\0';
    return put_symlink(c, d, target, &m, err);
  }
  return put_special(c, d, &m, err);
}

int
sw_copy_add_lower(sw_copy_t *c, sw_lowerfs_t *fs, const char *canon, const struct stat *st,
                  const char *host, const char *sub, sw_error_t *err)
{
  const char *base = strrchr(canon, '/') ? strrchr(canon, '/') + 1 : canon;
  bool is_dir = S_ISDIR(st->st_mode);
  _cleanup_free_ char *target = target_path(c, base, is_dir, sub, err);
  if (target == NULL)
    return -1;
  if (is_dir) {
    _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *sd = NULL;
    int r = sw_lowerfs_opendir(fs, canon, &sd, err);
    if (r < 0)
      return err && *err ? -1 : sw_error(err, -r, "`%s`", canon);
    bool in_image;
    int fd = open_target_dir(c, target, &in_image, err);
    if (fd < 0)
      return -1;
    r = lower_dir_contents(c, fs, sd, fd, target, in_image, "", err);
    close(fd);
    if (r == 0 && !sw_strv_contains(c->touched, target))
      sw_strv_push(&c->touched, target);
    return r;
  }
  if (sw_excludes_match(c->o.excludes, base))
    return 0;
  _cleanup_free_ char *parent = NULL, *name = NULL;
  dst_t d;
  if (open_parent(c, target, &d, &parent, &name, err) < 0)
    return -1;
  sw_lowerfs_ent_t e = {.name = (char *)base, .host = (char *)host, .st = *st};
  int r = lower_item(c, fs, NULL, &e, canon, &d, base, err);
  close(d.dfd);
  return r;
}

int
sw_copy_add_data(sw_copy_t *c, const char *name, const char *data, size_t len, sw_error_t *err)
{
  _cleanup_free_ char *target = target_path(c, name, false, NULL, err);
  if (target == NULL)
    return -1;
  _cleanup_free_ char *parent = NULL, *last = NULL;
  dst_t d;
  if (open_parent(c, target, &d, &parent, &last, err) < 0)
    return -1;
  _cleanup_close_ int dfd = d.dfd;
  meta_t m = {.mode = S_IFREG | 0644, .size = (off_t)len};
  m.mtime.tv_sec = c->o.now;
  apply_opts(c, &m, true);
  if (put_file(c, &d, -1, NULL, &m, err) < 0)
    return -1;
  _cleanup_close_ int fd = openat(dfd, last, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || sw_write_all(fd, data, len) < 0)
    return sw_error(err, errno, "write `%s` in the layer", target);
  set_times(fd, NULL, &m.mtime, 0);
  return 0;
}

int
sw_copy_add_file(sw_copy_t *c, const char *name, const char *host_path, mode_t mode, int64_t mtime,
                 sw_error_t *err)
{
  _cleanup_close_ int in = open(host_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0)
    return sw_error(err, errno, "open `%s`", host_path);
  _cleanup_free_ char *target = target_path(c, name, false, NULL, err);
  if (target == NULL)
    return -1;
  _cleanup_free_ char *parent = NULL, *last = NULL;
  dst_t d;
  if (open_parent(c, target, &d, &parent, &last, err) < 0)
    return -1;
  _cleanup_close_ int dfd = d.dfd;
  meta_t m = {.mode = S_IFREG | (mode & 07777), .size = st.st_size};
  m.mtime.tv_sec = mtime;
  apply_opts(c, &m, true);
  return put_file(c, &d, in, NULL, &m, err);
}

/* bzip2 and xz tars, which ADD unpacks too (as Docker): libarchive's filters decompress them
 * (its "raw" format hands out the decompressed bytes); gzip and zstd go through compress.c. */
static bool
is_bz2_or_xz(const unsigned char *head, size_t n)
{
  static const unsigned char xz[] = {0xfd, '7', 'z', 'X', 'Z', 0};
  return (n >= 3 && memcmp(head, "BZh", 3) == 0) || (n >= 6 && memcmp(head, xz, 6) == 0);
}

static struct archive *
raw_reader(int fd)
{
  struct archive *a = archive_read_new();
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_format_raw(a);
  struct archive_entry *e;
  if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK ||
      archive_read_next_header(a, &e) != ARCHIVE_OK) {
    archive_read_free(a);
    return NULL;
  }
  return a;
}

/* The first tar block of a file (decompressed): is it a tar ("ustar" at offset 257)? */
static bool
tar_header_at_start(int fd, const unsigned char *head, size_t n)
{
  char buf[512];
  size_t got = 0;
  if (is_bz2_or_xz(head, n)) {
    struct archive *a = raw_reader(fd);
    while (a && got < sizeof(buf)) {
      la_ssize_t r = archive_read_data(a, buf + got, sizeof(buf) - got);
      if (r <= 0)
        break;
      got += (size_t)r;
    }
    if (a)
      archive_read_free(a);
  } else {
    sw_source_t *src = sw_source_new(fd, sw_codec_detect(head, n), -1);
    sw_error_t e = NULL;
    while (got < sizeof(buf)) {
      ssize_t r = sw_source_read(src, buf + got, sizeof(buf) - got, &e);
      if (r <= 0)
        break;
      got += (size_t)r;
    }
    sw_error_release(&e);
    sw_source_free(src);
  }
  return got == sizeof(buf) && memcmp(buf + 257, "ustar", 5) == 0;
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
  return tar_header_at_start(fd, head, (size_t)n);
}

/* A bzip2 or xz archive decompressed into an unnamed file beside the layer directory. */
static int
decompress_to_tmpfile(const sw_copy_t *c, int in, const char *host_path, sw_error_t *err)
{
  _cleanup_free_ char *dir = xstrdup(c->layer_dir);
  _cleanup_close_ int out = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (out < 0)
    return sw_error(err, errno, "temporary file for `%s`", host_path);
  struct archive *a = raw_reader(in);
  if (a == NULL)
    return sw_error(err, 0, "`%s`: cannot decompress (bzip2/xz)", host_path);
  _cleanup_free_ char *buf = xmalloc(IO_BUF);
  int rc = 0;
  for (;;) {
    la_ssize_t r = archive_read_data(a, buf, IO_BUF);
    if (r == 0)
      break;
    if (r < 0) {
      rc = sw_error(err, 0, "`%s`: %s", host_path, archive_error_string(a));
      break;
    }
    if (sw_write_all(out, buf, (size_t)r) < 0) {
      rc = sw_error(err, errno, "decompress `%s`", host_path);
      break;
    }
  }
  archive_read_free(a);
  if (rc < 0)
    return -1;
  if (lseek(out, 0, SEEK_SET) < 0)
    return sw_error(err, errno, "seek");
  return steal_fd(&out);
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
  unsigned char head[8];
  ssize_t n = pread(in, head, sizeof(head), 0);
  if (n > 0 && is_bz2_or_xz(head, (size_t)n)) {
    int plain = decompress_to_tmpfile(c, in, host_path, err);
    if (plain < 0)
      return -1;
    close(in);
    in = plain;
  }
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
