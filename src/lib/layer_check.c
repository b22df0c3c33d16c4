/* slipway: a snapshot compared with its layer blob's entries; see layer_check.h. Both sides are
 * listed into arrays sorted by path and merged: 20,000 entries cost a few MB and no writes. */
#include "layer_check.h"

#include "userns.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef struct {
  char *path;
  long seq; /* order in the tar (the last entry of a path wins); -1: an implied parent */
  mode_t type;
  mode_t mode;
  int64_t size;
  dev_t rdev;
  char *link;
  bool loose; /* only the type (and a device's numbers) is known: implied parent, hardlink,
                 whiteout */
} ent_t;

typedef struct {
  ent_t *v;
  size_t n, cap;
} ents_t;

static ent_t *
ents_add(ents_t *e, const char *path)
{
  if (e->n == e->cap) {
    e->cap = e->cap ? e->cap * 2 : 256;
    e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
  }
  ent_t *x = &e->v[e->n++];
  memset(x, 0, sizeof(*x));
  x->path = xstrdup(path);
  return x;
}

static void
ents_free(ents_t *e)
{
  for (size_t i = 0; i < e->n; i++) {
    free(e->v[i].path);
    free(e->v[i].link);
  }
  free(e->v);
}

static int
cmp_ent(const void *a, const void *b)
{
  const ent_t *x = a, *y = b;
  int c = strcmp(x->path, y->path);
  return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* ---- the blob's side ---- */

/* A tar name without "./", "." or empty components and without a trailing '/'. */
static char *
clean_name(const char *in)
{
  char *out = xmalloc(strlen(in) + 1);
  size_t n = 0;
  for (const char *p = in; *p;) {
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    if (len && !(len == 1 && *p == '.')) {
      if (n)
        out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p = *end ? end + 1 : end;
  }
  out[n] = '\0';
  return out;
}

static void
add_parents(ents_t *e, const char *path)
{
  _cleanup_free_ char *p = xstrdup(path);
  for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    ent_t *x = ents_add(e, p);
    x->seq = -1;
    x->type = S_IFDIR;
    x->loose = true;
    *s = '/';
  }
}

static void
add_tar_entry(ents_t *e, struct archive_entry *ae, long seq)
{
  _cleanup_free_ char *p = clean_name(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
  if (*p == '\0')
    return; /* the layer's root */
  add_parents(e, p);
  char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
  if (strcmp(base, ".wh..wh..opq") == 0)
    return; /* an xattr of its directory (an implied parent above) */
  ent_t *x;
  if (strncmp(base, ".wh.", 4) == 0) {
    memmove(base, base + 4, strlen(base + 4) + 1);
    x = ents_add(e, p);
    x->type = S_IFCHR; /* overlay's whiteout: a 0/0 character device */
    x->loose = true;
  } else {
    mode_t type = archive_entry_filetype(ae) & S_IFMT;
    /* Rootless: layer_apply makes no device node in a user namespace (the kernel refuses). */
    if ((type == S_IFCHR || type == S_IFBLK) && archive_entry_rdev(ae) != 0 &&
        !archive_entry_hardlink(ae) && sw_userns_nested())
      return;
    x = ents_add(e, p);
    x->type = archive_entry_hardlink(ae) ? S_IFREG : (archive_entry_filetype(ae) & S_IFMT);
    x->loose = archive_entry_hardlink(ae) != NULL;
    x->mode = archive_entry_perm(ae) & 07777;
    x->size = archive_entry_size(ae);
    x->rdev = archive_entry_rdev(ae);
    if (archive_entry_symlink(ae))
      x->link = xstrdup(archive_entry_symlink(ae));
  }
  x->seq = seq;
}

typedef struct {
  sw_source_t *src;
  sw_error_t io_err;
} reader_t;

static la_ssize_t
read_cb(struct archive *a, void *cd, const void **buf)
{
  reader_t *r = cd;
  ssize_t n = sw_source_read_block(r->src, buf, &r->io_err);
  if (n < 0) {
    archive_set_error(a, EIO, "%s", r->io_err->msg);
    return -1;
  }
  return (la_ssize_t)n;
}

static int
list_blob(sw_source_t *src, ents_t *out, sw_error_t *err)
{
  reader_t r = {.src = src};
  struct archive *a = archive_read_new();
  struct archive_entry *ae;
  long seq = 0;
  int rc;
  archive_read_support_format_tar(a);
  rc = archive_read_open(a, &r, NULL, read_cb, NULL);
  while (rc == ARCHIVE_OK &&
         ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK || rc == ARCHIVE_WARN)) {
    add_tar_entry(out, ae, seq++);
    rc = ARCHIVE_OK;
  }
  if (rc != ARCHIVE_EOF) {
    if (r.io_err && err)
      *err = steal_ptr(&r.io_err);
    else
      sw_error(err, 0, "not a readable tar: %s", archive_error_string(a));
    sw_error_release(&r.io_err);
    archive_read_free(a);
    return -1;
  }
  archive_read_free(a);
  sw_error_release(&r.io_err);
  /* The last entry of each path wins; an implied parent only where nothing else is. */
  qsort(out->v, out->n, sizeof(*out->v), cmp_ent);
  size_t k = 0;
  for (size_t i = 0; i < out->n; i++) {
    if (i + 1 < out->n && strcmp(out->v[i].path, out->v[i + 1].path) == 0) {
      free(out->v[i].path);
      free(out->v[i].link);
      continue;
    }
    out->v[k++] = out->v[i];
  }
  out->n = k;
  return 0;
}

/* ---- the snapshot's side ---- */

static int
list_dir(int dfd, const char *prefix, ents_t *out, sw_error_t *err)
{
  int fd = dup(dfd);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  struct dirent *de;
  if (d == NULL) {
    if (fd >= 0)
      close(fd);
    return sw_error(err, errno, "read directory `%s`", *prefix ? prefix : ".");
  }
  rewinddir(d);
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *rel =
        *prefix ? xasprintf("%s/%s", prefix, de->d_name) : xstrdup(de->d_name);
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      r = sw_error(err, errno, "stat `%s`", rel);
      break;
    }
    if (S_ISSOCK(st.st_mode))
      continue; /* never in a layer's tar */
    ent_t *x = ents_add(out, rel);
    x->type = st.st_mode & S_IFMT;
    x->mode = st.st_mode & 07777;
    x->size = st.st_size;
    x->rdev = st.st_rdev;
    if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX];
      ssize_t n = readlinkat(dirfd(d), de->d_name, buf, sizeof(buf) - 1);
      buf[n > 0 ? n : 0] = '\0';
      x->link = xstrdup(buf);
    } else if (S_ISDIR(st.st_mode)) {
      _cleanup_close_ int sub =
          openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      r = sub < 0 ? sw_error(err, errno, "open `%s`", rel) : list_dir(sub, rel, out, err);
    }
  }
  closedir(d);
  return r;
}

/* ---- the comparison ---- */

static bool
same(const ent_t *have, const ent_t *want)
{
  if (have->type != want->type)
    return false;
  if ((S_ISCHR(want->type) || S_ISBLK(want->type)) && have->rdev != want->rdev)
    return false;
  if (want->loose)
    return true;
  if (S_ISLNK(want->type))
    return strcmp(have->link ? have->link : "", want->link ? want->link : "") == 0;
  if (have->mode != want->mode)
    return false;
  return !S_ISREG(want->type) || have->size == want->size;
}

static void
note(sw_layer_diff_t *d, size_t *count, const char *what, const char *path)
{
  (*count)++;
  if (d->first == NULL)
    d->first = xasprintf("%s `%s`", what, path);
}

static void
compare(const ents_t *have, const ents_t *want, sw_layer_diff_t *d)
{
  size_t i = 0, j = 0;
  while (i < have->n || j < want->n) {
    int c = i == have->n ? 1 : j == want->n ? -1 : strcmp(have->v[i].path, want->v[j].path);
    if (c < 0)
      note(d, &d->extra, "extra", have->v[i++].path);
    else if (c > 0)
      note(d, &d->missing, "missing", want->v[j++].path);
    else {
      if (!same(&have->v[i], &want->v[j]))
        note(d, &d->changed, "changed", want->v[j].path);
      i++;
      j++;
    }
  }
}

int
sw_layer_check(int fd, const sw_codec_t *codec, const char *digest, const char *diff_id,
               const char *snapshot, sw_layer_diff_t *diff, sw_error_t *err)
{
  _cleanup_source_ sw_source_t *src = sw_source_new(fd, codec, -1);
  ents_t want = {0}, have = {0};
  sw_sink_result_t res;
  int r = list_blob(src, &want, err);
  if (r == 0)
    r = sw_source_drain(src, err) < 0 || sw_source_result(src, &res, err) < 0 ? -1 : 0;
  if (r == 0 && digest && strcmp(res.digest, digest) != 0)
    r = sw_error(err, 0, "the blob holds data of digest %s", res.digest);
  if (r == 0 && diff_id && strcmp(res.diff_id, diff_id) != 0)
    r = sw_error(err, 0, "the blob's tar has diffID %s", res.diff_id);
  if (r == 0 && snapshot) {
    _cleanup_close_ int dfd = open(snapshot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    memset(diff, 0, sizeof(*diff));
    r = dfd < 0 ? sw_error(err, errno, "open `%s`", snapshot) : list_dir(dfd, "", &have, err);
    if (r == 0) {
      qsort(have.v, have.n, sizeof(*have.v), cmp_ent);
      compare(&have, &want, diff);
    }
  }
  ents_free(&want);
  ents_free(&have);
  return r;
}
