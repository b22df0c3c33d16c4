/* slipway: snapshot (overlay upper dir) → deterministic OCI tar → sw_sink_t; see layer_write.h. */
#include "layer_write.h"
#include "userns.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define READ_BUF (1u << 20)

typedef struct {
  struct archive *a;
  struct archive_entry *e;
  sw_sink_t *sink;
  sw_error_t sink_err; /* the sink's error, kept while libarchive unwinds */
  int64_t epoch;
  const char *root;
  sw_buf_t rel; /* path of the current entry, relative to root, no leading "./" */
  uint8_t *buf;
  sw_inomap_t links; /* nlink > 1 files only */
} lw_t;

static la_ssize_t
lw_write_cb(struct archive *a, void *cd, const void *buf, size_t len)
{
  lw_t *w = cd;
  if (sw_sink_write(w->sink, buf, len, &w->sink_err) < 0) {
    archive_set_error(a, EIO, "%s", w->sink_err->msg);
    return -1;
  }
  return (la_ssize_t)len;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (bytewise), without "." and "..". */
static int
list_sorted(int dfd, char ***out, size_t *n, sw_error_t *err)
{
  int fd = dup(dfd);
  if (fd < 0)
    return sw_error(err, errno, "dup");
  _cleanup_dir_ DIR *d = fdopendir(fd);
  char **v = NULL;
  size_t len = 0, cap = 0;
  struct dirent *de;

  if (d == NULL) {
    close(fd);
    return sw_error(err, errno, "opendir");
  }
  rewinddir(d);
  while ((errno = 0, de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (len + 1 >= cap) {
      cap = cap ? cap * 2 : 32;
      v = xrealloc(v, cap * sizeof(char *));
    }
    v[len++] = xstrdup(de->d_name);
  }
  if (errno) {
    int e = errno;
    for (size_t i = 0; i < len; i++)
      free(v[i]);
    free(v);
    return sw_error(err, e, "readdir");
  }
  if (len > 1)
    qsort(v, len, sizeof(char *), cmp_str);
  *out = v;
  *n = len;
  return 0;
}

static int64_t
clamp_mtime(const lw_t *w, const struct stat *st)
{
  int64_t t = (int64_t)st->st_mtim.tv_sec;
  if (w->epoch != SW_EPOCH_NONE && t > w->epoch)
    t = w->epoch;
  return t;
}

static bool
is_overlay_xattr(const char *name)
{
  return sw_str_has_prefix(name, "trusted.overlay.") || sw_str_has_prefix(name, "user.overlay.");
}

/* Copy the xattrs of an entry (sorted, overlay's own left out) into w->e. fd >= 0 reads them from
 * the fd, else from the path (not following a symlink). Sets *opaque for an opaque directory. */
static int
add_xattrs(lw_t *w, int fd, const char *path, bool *opaque, sw_error_t *err)
{
  char list[65536];
  ssize_t n = fd >= 0 ? flistxattr(fd, list, sizeof(list)) : llistxattr(path, list, sizeof(list));
  _cleanup_free_ char **names = NULL;
  size_t count = 0;

  if (n < 0) {
    if (errno == ENOTSUP || errno == ENODATA)
      return 0;
    return sw_error(err, errno, "`%s`: list xattrs", w->rel.data);
  }
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1)
    count++;
  names = xcalloc(count + 1, sizeof(char *));
  count = 0;
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1)
    names[count++] = list + off;
  qsort(names, count, sizeof(char *), cmp_str);
  for (size_t i = 0; i < count; i++) {
    const char *name = names[i];
    char val[65536];
    ssize_t vn =
        fd >= 0 ? fgetxattr(fd, name, val, sizeof(val)) : lgetxattr(path, name, val, sizeof(val));
    if (vn < 0) {
      if (errno == ENODATA)
        continue;
      return sw_error(err, errno, "`%s`: read xattr `%s`", w->rel.data, name);
    }
    if (is_overlay_xattr(name)) {
      if (sw_str_has_suffix(name, ".opaque") && vn == 1 && val[0] == 'y')
        *opaque = true;
      if (sw_str_has_suffix(name, ".redirect") || sw_str_has_suffix(name, ".metacopy"))
        return sw_error(err, 0,
                        "`%s` carries overlay xattr `%s`: the snapshot is not a complete diff "
                        "(mount overlays with redirect_dir=off,metacopy=off)",
                        w->rel.data, name);
      continue;
    }
    archive_entry_xattr_add_entry(w->e, name, val, (size_t)vn);
  }
  return 0;
}

static int
write_header(lw_t *w, sw_error_t *err)
{
  int r = archive_write_header(w->a, w->e);
  if (r < ARCHIVE_WARN) {
    if (w->sink_err)
      return sw_error(err, w->sink_err->status, "%s", w->sink_err->msg);
    return sw_error(err, 0, "`%s`: tar header: %s", w->rel.data, archive_error_string(w->a));
  }
  return 0;
}

static int
write_data(lw_t *w, int fd, uint64_t size, sw_error_t *err)
{
  uint64_t done = 0;
  for (;;) {
    ssize_t n = read(fd, w->buf, READ_BUF);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return sw_error(err, errno, "read `%s`", w->rel.data);
    }
    if (n == 0)
      break;
    if (done + (uint64_t)n > size)
      return sw_error(err, 0, "`%s` grew while it was written into the layer", w->rel.data);
    if (archive_write_data(w->a, w->buf, (size_t)n) < 0) {
      if (w->sink_err)
        return sw_error(err, w->sink_err->status, "%s", w->sink_err->msg);
      return sw_error(err, 0, "`%s`: tar data: %s", w->rel.data, archive_error_string(w->a));
    }
    done += (uint64_t)n;
  }
  if (done != size)
    return sw_error(err, 0, "`%s` shrank while it was written into the layer", w->rel.data);
  return 0;
}

/* An empty regular file entry: OCI whiteouts. */
static int
write_marker(lw_t *w, const char *path, int64_t mtime, sw_error_t *err)
{
  archive_entry_clear(w->e);
  archive_entry_copy_pathname(w->e, path);
  archive_entry_set_filetype(w->e, AE_IFREG);
  archive_entry_set_perm(w->e, 0);
  archive_entry_set_size(w->e, 0);
  archive_entry_set_mtime(w->e, mtime, 0);
  return write_header(w, err);
}

static int walk_dir(lw_t *w, int dfd, sw_error_t *err);

static void
entry_from_stat(lw_t *w, const struct stat *st)
{
  archive_entry_clear(w->e);
  archive_entry_copy_pathname(w->e, w->rel.data);
  archive_entry_set_mode(w->e, st->st_mode);
  archive_entry_set_uid(w->e, st->st_uid);
  archive_entry_set_gid(w->e, st->st_gid);
  archive_entry_set_mtime(w->e, clamp_mtime(w, st), 0);
}

static int
write_dir(lw_t *w, int dfd, const char *name, const struct stat *st, sw_error_t *err)
{
  _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  bool opaque = false;

  if (fd < 0)
    return sw_error(err, errno, "open directory `%s`", w->rel.data);
  entry_from_stat(w, st);
  if (add_xattrs(w, fd, NULL, &opaque, err) < 0 || write_header(w, err) < 0)
    return -1;
  if (opaque) {
    _cleanup_free_ char *p = xasprintf("%s/.wh..wh..opq", w->rel.data);
    if (write_marker(w, p, clamp_mtime(w, st), err) < 0)
      return -1;
  }
  return walk_dir(w, fd, err);
}

static int
write_file(lw_t *w, int dfd, const char *name, const struct stat *st, sw_error_t *err)
{
  bool opaque = false;

  entry_from_stat(w, st);
  if (st->st_nlink > 1) {
    const char *first = sw_inomap_lookup_or_add(&w->links, st->st_dev, st->st_ino, 0, w->rel.data);
    if (first) {
      archive_entry_set_hardlink(w->e, first);
      archive_entry_set_size(w->e, 0);
      return write_header(w, err);
    }
  }
  _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", w->rel.data);
  archive_entry_set_size(w->e, st->st_size);
  if (add_xattrs(w, fd, NULL, &opaque, err) < 0 || write_header(w, err) < 0)
    return -1;
  return write_data(w, fd, (uint64_t)st->st_size, err);
}

static int
write_special(lw_t *w, int dfd, const char *name, const struct stat *st, sw_error_t *err)
{
  _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", dfd, name);
  bool opaque = false;

  entry_from_stat(w, st);
  if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX + 1];
    ssize_t n = readlinkat(dfd, name, target, PATH_MAX);
    if (n < 0)
      return sw_error(err, errno, "readlink `%s`", w->rel.data);
    target[n] = '\0';
    archive_entry_copy_symlink(w->e, target);
  } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
    archive_entry_set_rdevmajor(w->e, major(st->st_rdev));
    archive_entry_set_rdevminor(w->e, minor(st->st_rdev));
  }
  if (add_xattrs(w, -1, proc, &opaque, err) < 0)
    return -1;
  return write_header(w, err);
}

static int
write_one(lw_t *w, int dfd, const char *name, sw_error_t *err)
{
  struct stat st;

  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sw_error(err, errno, "stat `%s`", w->rel.data);
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
    /* An overlay whiteout: `.wh.NAME` next to where NAME was. */
    size_t dirlen = w->rel.len - strlen(name);
    _cleanup_free_ char *p = xasprintf("%.*s.wh.%s", (int)dirlen, w->rel.data, name);
    return write_marker(w, p, clamp_mtime(w, &st), err);
  }
  if (S_ISDIR(st.st_mode))
    return write_dir(w, dfd, name, &st, err);
  if (S_ISREG(st.st_mode))
    return write_file(w, dfd, name, &st, err);
  if (S_ISSOCK(st.st_mode))
    return 0; /* tar cannot hold sockets; docker skips them too */
  return write_special(w, dfd, name, &st, err);
}

static int
walk_dir(lw_t *w, int dfd, sw_error_t *err)
{
  char **names = NULL;
  size_t n = 0, base = w->rel.len;
  int ret = 0;

  if (list_sorted(dfd, &names, &n, err) < 0)
    return sw_error_wrap(err, "`%s`", base ? w->rel.data : ".");
  for (size_t i = 0; i < n; i++) {
    if (ret == 0) {
      w->rel.len = base;
      w->rel.data[base] = '\0';
      if (base)
        sw_buf_putc(&w->rel, '/');
      sw_buf_puts(&w->rel, names[i]);
      ret = write_one(w, dfd, names[i], err);
    }
    free(names[i]);
  }
  free(names);
  w->rel.len = base;
  if (w->rel.data)
    w->rel.data[base] = '\0';
  return ret;
}

static void
lw_free(lw_t *w)
{
  if (w->a)
    archive_write_free(w->a);
  if (w->e)
    archive_entry_free(w->e);
  sw_inomap_clear(&w->links);
  free(w->buf);
  sw_buf_free(&w->rel);
  sw_error_release(&w->sink_err);
}

int
sw_layer_write_tar(const char *snapshot_dir, int64_t epoch, sw_sink_t *sink, sw_error_t *err)
{
  lw_t w = {.sink = sink, .epoch = epoch, .root = snapshot_dir};
  /* Outside its user namespace, a rootless build would read the host's ids of the files. */
  if (sw_userns_need("writing a layer", err) < 0)
    return -1;
  _cleanup_close_ int root = open(snapshot_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ret = -1;

  if (root < 0)
    return sw_error(err, errno, "open snapshot `%s`", snapshot_dir);
  w.a = archive_write_new();
  w.e = archive_entry_new();
  w.buf = xmalloc(READ_BUF);
  sw_buf_reserve(&w.rel, 256);
  w.rel.data[0] = '\0';
  if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
      archive_write_set_format_option(w.a, "pax", "xattrheader", "SCHILY") < ARCHIVE_WARN ||
      archive_write_set_bytes_per_block(w.a, 0) != ARCHIVE_OK ||
      archive_write_open(w.a, &w, NULL, lw_write_cb, NULL) != ARCHIVE_OK) {
    sw_error(err, 0, "tar writer: %s", archive_error_string(w.a));
    goto out;
  }
  /* Names are bytes, written as UTF-8 PAX records when they are UTF-8 (no hdrcharset=BINARY
   * noise for ordinary non-ASCII names): libarchive converts through the thread's locale. */
  locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
  locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
  int r = walk_dir(&w, root, err);
  if (utf8) {
    uselocale(old);
    freelocale(utf8);
  }
  if (r < 0)
    goto out;
  if (archive_write_close(w.a) != ARCHIVE_OK) {
    if (w.sink_err)
      sw_error(err, w.sink_err->status, "%s", w.sink_err->msg);
    else
      sw_error(err, 0, "tar writer: %s", archive_error_string(w.a));
    goto out;
  }
  ret = 0;
out:
  lw_free(&w);
  if (ret < 0)
    sw_error_wrap(err, "write layer from `%s`", snapshot_dir);
  return ret;
}

int64_t
sw_epoch_from_env(void)
{
  const char *s = getenv("SOURCE_DATE_EPOCH");
  if (s == NULL || *s == '\0')
    return SW_EPOCH_NONE;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < 0)
    return SW_EPOCH_NONE;
  return v;
}

sw_layer_write_opts_t
sw_layer_write_opts_default(void)
{
  return (sw_layer_write_opts_t){.comp = sw_compression_default(),
                                 .source_date_epoch = sw_epoch_from_env()};
}

int
sw_layer_write(const char *snapshot_dir, const sw_layer_write_opts_t *opts, int out_fd,
               sw_layer_info_t *info, sw_error_t *err)
{
  sw_layer_write_opts_t o = opts ? *opts : sw_layer_write_opts_default();
  if (o.comp.codec == NULL)
    o.comp.codec = &sw_codec_gzip;
  _cleanup_sink_ sw_sink_t *sink = sw_sink_new(&o.comp, out_fd);
  sw_sink_result_t res;

  if (sw_layer_write_tar(snapshot_dir, o.source_date_epoch, sink, err) < 0)
    return -1;
  if (sw_sink_finish(sink, &res, err) < 0)
    return sw_error_wrap(err, "write layer from `%s`", snapshot_dir);
  memcpy(info->diff_id, res.diff_id, sizeof(info->diff_id));
  memcpy(info->digest, res.digest, sizeof(info->digest));
  info->size = res.size;
  info->tar_size = res.raw_size;
  info->codec = o.comp.codec;
  info->media_type = o.comp.codec->oci_media_type;
  return 0;
}
