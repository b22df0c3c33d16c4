/* Unit tests for the layer codecs: compress.c, layer_write.c, layer_apply.c.
 * Round trips (dir → tar → dir, every codec), determinism and SOURCE_DATE_EPOCH clamping,
 * whiteouts in both target modes, and crafted malicious tars that must be refused with nothing
 * written outside the target; layer_check.c (fsck's snapshot-against-blob comparison). Needs root
 * (chown, device nodes, trusted.* xattrs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "compress.h"
#include "layer_apply.h"
#include "layer_check.h"
#include "layer_write.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* Crafted entries list only the fields they need. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ---- helpers ---- */

static char *
mktemp_dir(void)
{
  char *t = xstrdup("/tmp/sw-test-layer-XXXXXX");
  assert_non_null(mkdtemp(t));
  return t;
}

static void
rm_tree(const char *p)
{
  sw_error_t err = NULL;
  assert_int_equal(sw_rm_rf(p, &err), 0);
}

static void
put_file(const char *dir, const char *rel, const char *data, mode_t mode)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(sw_write_all(fd, data, strlen(data)), 0);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static void
set_mtime(const char *dir, const char *rel, time_t t)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int
memfd(void)
{
  int fd = memfd_create("layer", MFD_CLOEXEC);
  assert_true(fd >= 0);
  return fd;
}

/* A snapshot exercising everything: modes, owners, links, xattrs, whiteouts, opaque dirs. */
static void
make_snapshot(const char *d)
{
  char *p = NULL;
  assert_int_equal(mkdir(p = xasprintf("%s/a", d), 0755), 0);
  free(p);
  put_file(d, "a/suid", "#!/bin/sh\necho hi\n", 04755);
  put_file(d, "a/plain", "plain data\n", 0640);
  assert_int_equal(chown(p = xasprintf("%s/a/plain", d), 1234, 5678), 0);
  free(p);
  assert_int_equal(setxattr(p = xasprintf("%s/a/plain", d), "user.test", "v1", 2, 0), 0);
  free(p);
  _cleanup_free_ char *hard = xasprintf("%s/a/hard", d);
  assert_int_equal(link(p = xasprintf("%s/a/suid", d), hard), 0);
  free(p);
  assert_int_equal(symlink("/etc/passwd", p = xasprintf("%s/abs-link", d)), 0);
  free(p);
  assert_int_equal(symlink("a/plain", p = xasprintf("%s/rel-link", d)), 0);
  free(p);
  assert_int_equal(mkdir(p = xasprintf("%s/tmp", d), 0700), 0);
  assert_int_equal(chmod(p, 01777), 0);
  free(p);
  assert_int_equal(mkfifo(p = xasprintf("%s/fifo", d), 0644), 0);
  free(p);
  assert_int_equal(mknod(p = xasprintf("%s/null", d), S_IFCHR | 0666, makedev(1, 3)), 0);
  free(p);
  assert_int_equal(mknod(p = xasprintf("%s/gone", d), S_IFCHR, makedev(0, 0)), 0); /* whiteout */
  free(p);
  assert_int_equal(mkdir(p = xasprintf("%s/opq", d), 0755), 0);
  assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
  free(p);
  put_file(d, "opq/kept", "new\n", 0644);
  put_file(d, "na\xc3\xafve \xe2\x98\x83.txt", "utf8 name\n", 0644);
  /* a name longer than ustar's 100 bytes: needs a PAX record */
  char longname[200];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  put_file(d, longname, "long\n", 0644);
  const char *all[] = {"a/suid", "a/plain", "a/hard",   "abs-link", "rel-link", "fifo",
                       "null",   "gone",    "opq/kept", "a",        "tmp",      "opq"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(all); i++)
    set_mtime(d, all[i], 1600000000 + (time_t)i);
}

/* Compare two trees entry by entry: type, mode, owner, size, content, link target, rdev, mtime,
 * xattrs (the overlay ones included: they must survive as overlay metadata). */
static void
compare_trees(const char *a, const char *b, const char *rel)
{
  _cleanup_free_ char *pa = *rel ? xasprintf("%s/%s", a, rel) : xstrdup(a);
  _cleanup_free_ char *pb = *rel ? xasprintf("%s/%s", b, rel) : xstrdup(b);
  struct stat sa, sb;
  assert_int_equal(lstat(pa, &sa), 0);
  if (lstat(pb, &sb) != 0)
    fail_msg("`%s` missing after the round trip", rel);
  assert_int_equal(sa.st_mode, sb.st_mode);
  if (*rel) {
    assert_int_equal(sa.st_uid, sb.st_uid);
    assert_int_equal(sa.st_gid, sb.st_gid);
    assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
  }
  if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode))
    assert_int_equal(sa.st_rdev, sb.st_rdev);
  if (S_ISLNK(sa.st_mode)) {
    char la[PATH_MAX] = {0}, lb[PATH_MAX] = {0};
    assert_true(readlink(pa, la, sizeof(la) - 1) > 0);
    assert_true(readlink(pb, lb, sizeof(lb) - 1) > 0);
    assert_string_equal(la, lb);
    return;
  }
  char xa[4096] = {0}, xb[4096] = {0};
  ssize_t na = llistxattr(pa, xa, sizeof(xa)), nb = llistxattr(pb, xb, sizeof(xb));
  assert_int_equal(na, nb);
  for (ssize_t off = 0; off < na; off += (ssize_t)strlen(xa + off) + 1) {
    char va[256], vb[256];
    ssize_t n1 = lgetxattr(pa, xa + off, va, sizeof(va));
    ssize_t n2 = lgetxattr(pb, xa + off, vb, sizeof(vb));
    assert_int_equal(n1, n2);
    assert_memory_equal(va, vb, (size_t)n1);
  }
  if (S_ISREG(sa.st_mode)) {
    _cleanup_free_ char *ca = NULL, *cb = NULL;
    size_t la = 0, lb = 0;
    sw_error_t err = NULL;
    assert_int_equal(sw_read_file(pa, 0, &ca, &la, &err), 0);
    assert_int_equal(sw_read_file(pb, 0, &cb, &lb, &err), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ca, cb, la);
  }
  if (S_ISDIR(sa.st_mode)) {
    DIR *d = opendir(pa);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      _cleanup_free_ char *sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
      compare_trees(a, b, sub);
      n++;
    }
    closedir(d);
    /* and nothing extra on the other side */
    d = opendir(pb);
    size_t m = 0;
    while ((de = readdir(d)))
      m += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(n, m);
  }
}

static void
write_layer(const char *dir, const sw_codec_t *codec, int64_t epoch, int fd, sw_layer_info_t *info)
{
  sw_layer_write_opts_t o = {.comp = {.codec = codec}, .source_date_epoch = epoch};
  sw_error_t err = NULL;
  assert_int_equal(ftruncate(fd, 0), 0);
  lseek(fd, 0, SEEK_SET);
  if (sw_layer_write(dir, &o, fd, info, &err) < 0)
    fail_msg("sw_layer_write: %s", err->msg);
  lseek(fd, 0, SEEK_SET);
}

/* ---- round trips ---- */

static void
roundtrip_with(const sw_codec_t *codec)
{
  _cleanup_free_ char *src = mktemp_dir(), *dst = mktemp_dir();
  _cleanup_close_ int fd = memfd();
  _cleanup_close_ int fd2 = memfd();
  sw_layer_info_t w, a, w2;
  sw_error_t err = NULL;

  make_snapshot(src);
  write_layer(src, codec, SW_EPOCH_NONE, fd, &w);
  assert_string_equal(w.media_type, codec->oci_media_type);
  assert_true(sw_digest_valid(w.diff_id) && sw_digest_valid(w.digest));
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  o.expect_diff_id = w.diff_id;
  o.expect_digest = w.digest;
  if (sw_layer_apply(fd, dst, &o, &a, &err) < 0)
    fail_msg("sw_layer_apply: %s", err->msg);
  assert_string_equal(a.diff_id, w.diff_id);
  assert_string_equal(a.digest, w.digest);
  assert_int_equal(a.size, w.size);
  assert_int_equal(a.tar_size, w.tar_size);
  assert_ptr_equal(a.codec, codec);
  compare_trees(src, dst, "");
  /* hardlinks stay hardlinks */
  struct stat s1, s2;
  _cleanup_free_ char *h1 = xasprintf("%s/a/suid", dst), *h2 = xasprintf("%s/a/hard", dst);
  assert_int_equal(stat(h1, &s1), 0);
  assert_int_equal(stat(h2, &s2), 0);
  assert_int_equal(s1.st_ino, s2.st_ino);
  /* and writing the applied tree again gives the very same tar */
  write_layer(dst, codec, SW_EPOCH_NONE, fd2, &w2);
  assert_string_equal(w2.diff_id, w.diff_id);
  assert_string_equal(w2.digest, w.digest);
  rm_tree(src);
  rm_tree(dst);
}

static void
test_roundtrip_gzip(void **state)
{
  roundtrip_with(&sw_codec_gzip);
}

static void
test_roundtrip_zstd(void **state)
{
  roundtrip_with(&sw_codec_zstd);
}

static void
test_roundtrip_none(void **state)
{
  roundtrip_with(&sw_codec_none);
}

/* The tar itself: sorted, OCI whiteouts, no user/group names, PAX xattrs. */
static void
test_tar_format(void **state)
{
  _cleanup_free_ char *src = mktemp_dir();
  _cleanup_close_ int fd = memfd();
  sw_layer_info_t w;
  struct archive_entry *e;
  char **names = NULL;

  make_snapshot(src);
  write_layer(src, &sw_codec_none, SW_EPOCH_NONE, fd, &w);
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
  bool saw_xattr = false;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    sw_strv_push(&names, archive_entry_pathname(e));
    assert_true(archive_entry_uname(e) == NULL || *archive_entry_uname(e) == '\0');
    assert_true(archive_entry_gname(e) == NULL || *archive_entry_gname(e) == '\0');
    const char *k;
    const void *v;
    size_t n;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &k, &v, &n) == ARCHIVE_OK) {
      assert_false(sw_str_has_prefix(k, "trusted.overlay."));
      saw_xattr |= strcmp(k, "user.test") == 0;
    }
  }
  archive_read_free(a);
  assert_true(saw_xattr);
  assert_true(sw_strv_contains(names, ".wh.gone"));
  assert_true(sw_strv_contains(names, "opq/.wh..wh..opq"));
  assert_false(sw_strv_contains(names, "gone"));
  /* the opaque marker right after its directory */
  for (size_t i = 0; names[i]; i++)
    if (strcmp(names[i], "opq/.wh..wh..opq") == 0)
      assert_string_equal(names[i - 1], "opq/");
  assert_string_equal(names[0], "a/");
  sw_strv_free(names);
  rm_tree(src);
}

/* ---- determinism ---- */

static void
test_deterministic(void **state)
{
  _cleanup_free_ char *s1 = mktemp_dir(), *s2 = mktemp_dir();
  _cleanup_close_ int f1 = memfd();
  _cleanup_close_ int f2 = memfd();
  sw_layer_info_t i1, i2;

  make_snapshot(s1);
  make_snapshot(s2);
  write_layer(s1, &sw_codec_gzip, SW_EPOCH_NONE, f1, &i1);
  write_layer(s1, &sw_codec_gzip, SW_EPOCH_NONE, f2, &i2);
  assert_string_equal(i1.digest, i2.digest);
  /* different directory, same content and mtimes: same layer */
  write_layer(s2, &sw_codec_gzip, SW_EPOCH_NONE, f2, &i2);
  assert_string_equal(i1.diff_id, i2.diff_id);
  assert_string_equal(i1.digest, i2.digest);
  /* mtimes newer than SOURCE_DATE_EPOCH are clamped: then they no longer matter */
  set_mtime(s1, "a/plain", 1900000000);
  set_mtime(s2, "a/plain", 1950000000);
  write_layer(s1, &sw_codec_gzip, SW_EPOCH_NONE, f1, &i1);
  write_layer(s2, &sw_codec_gzip, SW_EPOCH_NONE, f2, &i2);
  assert_string_not_equal(i1.diff_id, i2.diff_id);
  write_layer(s1, &sw_codec_zstd, 1700000000, f1, &i1);
  write_layer(s2, &sw_codec_zstd, 1700000000, f2, &i2);
  assert_string_equal(i1.diff_id, i2.diff_id);
  assert_string_equal(i1.digest, i2.digest);
  /* the clamped time is what lands in the tar; older ones are kept */
  _cleanup_free_ char *dst = mktemp_dir();
  sw_error_t err = NULL;
  assert_int_equal(sw_layer_apply(f1, dst, NULL, NULL, &err), 0);
  struct stat st;
  _cleanup_free_ char *p1 = xasprintf("%s/a/plain", dst), *p2 = xasprintf("%s/a/suid", dst);
  assert_int_equal(lstat(p1, &st), 0);
  assert_int_equal(st.st_mtim.tv_sec, 1700000000);
  assert_int_equal(lstat(p2, &st), 0);
  assert_int_equal(st.st_mtim.tv_sec, 1600000002); /* a/hard, same inode, set last */
  rm_tree(s1);
  rm_tree(s2);
  rm_tree(dst);
}

/* ---- crafted tars ---- */

typedef struct {
  const char *path;
  mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK; 0 = hardlink */
  const char *target;
  const char *xattr;
} tent_t;

static int
make_tar(const tent_t *ents, size_t n)
{
  int fd = memfd();
  struct archive *a = archive_write_new();
  archive_write_set_format_pax(a);
  assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_copy_pathname(e, ents[i].path);
    archive_entry_set_filetype(e, ents[i].type ? ents[i].type : AE_IFREG);
    archive_entry_set_perm(e, ents[i].type == AE_IFDIR ? 0755 : 0644);
    if (ents[i].type == AE_IFLNK)
      archive_entry_copy_symlink(e, ents[i].target);
    else if (ents[i].type == 0)
      archive_entry_copy_hardlink(e, ents[i].target);
    if (ents[i].xattr)
      archive_entry_xattr_add_entry(e, ents[i].xattr, "x", 1);
    archive_entry_set_size(e, ents[i].type == AE_IFREG ? 5 : 0);
    assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
    if (ents[i].type == AE_IFREG)
      archive_write_data(a, "evil\n", 5);
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

/* Entries of a directory, recursively counted. */
static size_t
count_tree(const char *p)
{
  DIR *d = opendir(p);
  struct dirent *de;
  size_t n = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *sub = xasprintf("%s/%s", p, de->d_name);
    n += 1 + (de->d_type == DT_DIR ? count_tree(sub) : 0);
  }
  closedir(d);
  return n;
}

/* Apply into BASE/root; BASE holds root and a decoy `outside/` dir. Returns the apply result;
 * asserts nothing appeared outside root. */
static int
apply_crafted(const tent_t *ents, size_t n, sw_apply_mode_t mode, const char *want_err,
              char **base_out)
{
  char *base = mktemp_dir();
  _cleanup_free_ char *root = xasprintf("%s/root", base), *out = xasprintf("%s/outside", base);
  assert_int_equal(mkdir(root, 0755), 0);
  assert_int_equal(mkdir(out, 0755), 0);
  _cleanup_close_ int fd = make_tar(ents, n);
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  o.mode = mode;
  o.name = "sha256:test";
  sw_error_t err = NULL;
  int r = sw_layer_apply(fd, root, &o, NULL, &err);
  if (want_err) {
    if (r == 0)
      fail_msg("crafted tar `%s` was accepted, expected \"%s\"", ents[n - 1].path, want_err);
    if (strstr(err->msg, want_err) == NULL || strstr(err->msg, "layer sha256:test") == NULL)
      fail_msg("error \"%s\" does not say \"%s\"", err->msg, want_err);
    sw_error_release(&err);
  } else if (r < 0) {
    fail_msg("unexpected error: %s", err->msg);
  }
  /* nothing escaped: BASE has root and outside only, outside is empty, /tmp/evil absent */
  assert_int_equal(count_tree(out), 0);
  assert_int_equal(count_tree(base), 2 + count_tree(root));
  assert_int_equal(access("/tmp/evil", F_OK), -1);
  if (base_out)
    *base_out = base;
  else {
    rm_tree(base);
    free(base);
  }
  return r;
}

#define CRAFTED(mode, want, ...)                                                                   \
  do {                                                                                             \
    const tent_t ents_[] = {__VA_ARGS__};                                                          \
    apply_crafted(ents_, SW_ARRAY_SIZE(ents_), mode, want, NULL);                                  \
  } while (0)

static void
test_malicious(void **state)
{
  const sw_apply_mode_t S = SW_APPLY_SNAPSHOT;
  CRAFTED(S, "escapes", {"../outside/x", AE_IFREG});
  CRAFTED(S, "escapes", {"a/../../outside/x", AE_IFREG});
  CRAFTED(S, "absolute", {"/tmp/evil", AE_IFREG});
  CRAFTED(S, "symlink", {"l", AE_IFLNK, "../outside"}, {"l/x", AE_IFREG});
  CRAFTED(S, "symlink", {"l", AE_IFLNK, "/tmp"}, {"l/evil", AE_IFREG});
  CRAFTED(S, "symlink", {"d", AE_IFDIR}, {"d/l", AE_IFLNK, "/"}, {"d/l/tmp/evil", AE_IFREG});
  CRAFTED(S, "escapes", {"h", 0, "../outside/x"});
  CRAFTED(S, "absolute", {"h", 0, "/etc/passwd"});
  CRAFTED(S, "not an earlier file", {"h", 0, "etc/passwd"});
  CRAFTED(S, "not an earlier file", {"d", AE_IFDIR}, {"h", 0, "d"});
  CRAFTED(S, "not an earlier file", {"l", AE_IFLNK, "/etc"}, {"h", 0, "l/passwd"});
  CRAFTED(S, "names no file", {".wh..", AE_IFREG});
  CRAFTED(S, "names no file", {"a/.wh...", AE_IFREG});
  CRAFTED(S, "names no file", {".wh.", AE_IFREG});
  CRAFTED(
      S, "NAME_MAX",
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       AE_IFREG});
  CRAFTED(S, "overlayfs xattr", {"d", AE_IFDIR, NULL, "trusted.overlay.redirect"});
  CRAFTED(S, "overlayfs xattr", {"f", AE_IFREG, NULL, "trusted.overlay.opaque"});
  /* a symlink replaced by a directory of the same name is fine (the link goes, not its target) */
  CRAFTED(S, NULL, {"d", AE_IFLNK, "../outside"}, {"d", AE_IFDIR}, {"d/x", AE_IFREG});
  /* flat mode follows in-root symlinks (merged /usr) but scoped to the root: stays inside */
  char *base = NULL;
  const tent_t flat[] = {{"l", AE_IFLNK, "/"},
                         {"l/tmp/evil", AE_IFREG},
                         {"up", AE_IFLNK, "../.."},
                         {"up/outside/x", AE_IFREG}};
  apply_crafted(flat, SW_ARRAY_SIZE(flat), SW_APPLY_FLAT, NULL, &base);
  _cleanup_free_ char *in1 = xasprintf("%s/root/tmp/evil", base);
  _cleanup_free_ char *in2 = xasprintf("%s/root/outside/x", base);
  assert_int_equal(access(in1, F_OK), 0);
  assert_int_equal(access(in2, F_OK), 0);
  rm_tree(base);
  free(base);
  CRAFTED(SW_APPLY_FLAT, "escapes", {"../outside/x", AE_IFREG});
  CRAFTED(SW_APPLY_FLAT, "absolute", {"h", 0, "/etc/passwd"});
}

/* OCI whiteouts in both modes. */
static void
test_whiteouts(void **state)
{
  _cleanup_free_ char *root = mktemp_dir(), *snap = mktemp_dir();
  char *p = NULL;
  /* the lower layers, flattened */
  assert_int_equal(mkdir(p = xasprintf("%s/b", root), 0755), 0);
  free(p);
  put_file(root, "a", "lower a\n", 0644);
  put_file(root, "b/old", "lower\n", 0644);
  put_file(root, "keep", "lower\n", 0644);
  const tent_t ents[] = {{".wh.a", AE_IFREG}, {"b", AE_IFDIR}, {"b/.wh..wh..opq", AE_IFREG},
                         {"b/new", AE_IFREG}, {"c", AE_IFREG}, {".wh.c", AE_IFREG}};
  _cleanup_close_ int fd = make_tar(ents, SW_ARRAY_SIZE(ents));
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  sw_error_t err = NULL;
  o.mode = SW_APPLY_FLAT;
  assert_int_equal(sw_layer_apply(fd, root, &o, NULL, &err), 0);
  struct stat st;
  assert_int_equal(lstat(p = xasprintf("%s/a", root), &st), -1);
  free(p);
  assert_int_equal(lstat(p = xasprintf("%s/b/old", root), &st), -1);
  free(p);
  assert_int_equal(lstat(p = xasprintf("%s/b/new", root), &st), 0);
  free(p);
  assert_int_equal(lstat(p = xasprintf("%s/keep", root), &st), 0);
  free(p);
  /* a whiteout only hides lower layers: `c` of this very layer stays */
  assert_int_equal(lstat(p = xasprintf("%s/c", root), &st), 0);
  free(p);

  /* snapshot mode: overlay whiteouts and the opaque xattr */
  lseek(fd, 0, SEEK_SET);
  assert_int_equal(sw_layer_apply(fd, snap, NULL, NULL, &err), 0);
  assert_int_equal(lstat(p = xasprintf("%s/a", snap), &st), 0);
  free(p);
  assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  char v[4] = {0};
  assert_int_equal(getxattr(p = xasprintf("%s/b", snap), "trusted.overlay.opaque", v, 3), 1);
  free(p);
  assert_string_equal(v, "y");
  assert_int_equal(lstat(p = xasprintf("%s/c", snap), &st), 0);
  free(p);
  assert_true(S_ISREG(st.st_mode));
  rm_tree(root);
  rm_tree(snap);
}

/* ---- codecs ---- */

static void
compress_buf(const sw_codec_t *c, int level, const void *data, size_t len, int fd)
{
  sw_compression_t comp = {.codec = c, .level = level, .threads = 2};
  sw_error_t err = NULL;
  sw_sink_result_t r;
  sw_sink_t *s = sw_sink_new(&comp, fd);
  assert_int_equal(sw_sink_write(s, data, len, &err), 0);
  assert_int_equal(sw_sink_finish(s, &r, &err), 0);
  sw_sink_free(s);
  assert_int_equal(r.raw_size, len);
}

static void
test_codecs(void **state)
{
  size_t len = 5u << 20; /* several blocks, so the threads and dictionaries are used */
  uint8_t *data = xmalloc(len);
  uint32_t x = 1;
  for (size_t i = 0; i < len; i++) {
    x = x * 1103515245 + 12345;
    data[i] = (uint8_t)((i % 7 == 0) ? (x >> 24) : (uint8_t) "slipway layers "[i % 15]);
  }
  const struct {
    const sw_codec_t *c;
    int level;
  } cases[] = {{&sw_codec_gzip, 1}, {&sw_codec_gzip, 3}, {&sw_codec_gzip, 4},
               {&sw_codec_gzip, 6}, {&sw_codec_zstd, 3}, {&sw_codec_none, 0}};
  for (size_t k = 0; k < SW_ARRAY_SIZE(cases); k++) {
    _cleanup_close_ int fd = memfd();
    /* two streams back to back: multi-member gzip / multi-frame zstd */
    compress_buf(cases[k].c, cases[k].level, data, len, fd);
    compress_buf(cases[k].c, cases[k].level, data, 1000, fd);
    lseek(fd, 0, SEEK_SET);
    sw_source_t *src = sw_source_new(fd, NULL, -1);
    uint8_t *back = xmalloc(len + 1000);
    size_t got = 0;
    ssize_t n;
    sw_error_t err = NULL;
    while ((n = sw_source_read(src, back + got, len + 1000 - got, &err)) > 0)
      got += (size_t)n;
    assert_int_equal(n, 0);
    assert_ptr_equal(sw_source_codec(src), cases[k].c);
    assert_int_equal(got, len + 1000);
    assert_memory_equal(back, data, len);
    assert_memory_equal(back + len, data, 1000);
    sw_source_free(src);
    free(back);
  }
  /* the gzip CLI reads what we write */
  _cleanup_free_ char *dir = mktemp_dir();
  _cleanup_free_ char *gz = xasprintf("%s/t.gz", dir);
  int fd = open(gz, O_WRONLY | O_CREAT, 0644);
  compress_buf(&sw_codec_gzip, 0, data, len, fd);
  close(fd);
  _cleanup_free_ char *cmd = xasprintf("gzip -t %s", gz);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_int_equal(pclose(p), 0);
  /* corrupt input is an error, not garbage */
  fd = open(gz, O_RDWR);
  assert_int_equal(pwrite(fd, "\xff\xff\xff\xff", 4, 1000), 4);
  lseek(fd, 0, SEEK_SET);
  sw_source_t *src = sw_source_new(fd, NULL, -1);
  sw_error_t err = NULL;
  assert_int_equal(sw_source_drain(src, &err), -1);
  assert_non_null(strstr(err->msg, "gzip"));
  sw_error_release(&err);
  sw_source_free(src);
  close(fd);
  rm_tree(dir);
  free(data);
}

static void
test_names(void **state)
{
  sw_compression_t c;
  sw_error_t err = NULL;
  assert_int_equal(sw_compression_parse("zstd:19", &c, &err), 0);
  assert_ptr_equal(c.codec, &sw_codec_zstd);
  assert_int_equal(c.level, 19);
  assert_int_equal(sw_compression_parse("gzip", &c, &err), 0);
  assert_ptr_equal(c.codec, &sw_codec_gzip);
  assert_int_equal(sw_compression_parse("brotli", &c, &err), -1);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  sw_error_release(&err);
  assert_int_equal(sw_compression_parse("zstd:99", &c, &err), -1);
  sw_error_release(&err);
  assert_ptr_equal(sw_codec_detect("\x1f\x8b\x08\x00", 4), &sw_codec_gzip);
  assert_ptr_equal(sw_codec_detect("\x28\xb5\x2f\xfd", 4), &sw_codec_zstd);
  assert_ptr_equal(sw_codec_detect("etc/", 4), &sw_codec_none);
  assert_ptr_equal(sw_codec_from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
                   &sw_codec_gzip);
  assert_ptr_equal(sw_codec_from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
                   &sw_codec_zstd);
  assert_null(sw_codec_from_media_type("application/json"));
  assert_string_equal(sw_codec_media_type(&sw_codec_none, true),
                      "application/vnd.docker.image.rootfs.diff.tar");
}

static void
test_verify_mismatch(void **state)
{
  _cleanup_free_ char *src = mktemp_dir(), *dst = mktemp_dir();
  _cleanup_close_ int fd = memfd();
  sw_layer_info_t w;
  sw_error_t err = NULL;
  put_file(src, "f", "x", 0644);
  write_layer(src, &sw_codec_gzip, SW_EPOCH_NONE, fd, &w);
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  o.name = w.digest;
  o.expect_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  assert_int_equal(sw_layer_apply(fd, dst, &o, NULL, &err), -1);
  assert_non_null(strstr(err->msg, "digest mismatch"));
  assert_non_null(strstr(err->msg, w.digest));
  sw_error_release(&err);
  rm_tree(src);
  rm_tree(dst);
}

/* ---- layer_check.c ---- */

static void
check_diff(int fd, const sw_layer_info_t *w, const char *dir, size_t missing, size_t extra,
           size_t changed, const char *first)
{
  sw_layer_diff_t d;
  sw_error_t err = NULL;
  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  if (sw_layer_check(fd, NULL, w->digest, w->diff_id, dir, &d, &err) < 0)
    fail_msg("sw_layer_check: %s", err->msg);
  assert_int_equal(d.missing, missing);
  assert_int_equal(d.extra, extra);
  assert_int_equal(d.changed, changed);
  if (first)
    assert_string_equal(d.first, first);
  else
    assert_null(d.first);
  free(d.first);
}

/* A snapshot matches its blob (whiteouts, opaque dirs, hardlinks, devices, links), as written
 * and as unpacked, until an entry goes, changes or appears; a blob that is not what its
 * digests say is an error. */
static void
test_layer_check(void **state)
{
  _cleanup_free_ char *src = mktemp_dir(), *dst = mktemp_dir();
  _cleanup_close_ int fd = memfd();
  sw_layer_info_t w;
  sw_layer_diff_t d;
  sw_error_t err = NULL;
  char *p = NULL;

  make_snapshot(src);
  write_layer(src, &sw_codec_gzip, SW_EPOCH_NONE, fd, &w);
  check_diff(fd, &w, src, 0, 0, 0, NULL);
  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  if (sw_layer_apply(fd, dst, NULL, NULL, &err) < 0)
    fail_msg("sw_layer_apply: %s", err->msg);
  check_diff(fd, &w, dst, 0, 0, 0, NULL);

  assert_int_equal(unlink(p = xasprintf("%s/a/plain", dst)), 0);
  free(p);
  check_diff(fd, &w, dst, 1, 0, 0, "missing `a/plain`");
  assert_int_equal(unlink(p = xasprintf("%s/gone", dst)), 0); /* a whiteout */
  free(p);
  check_diff(fd, &w, dst, 2, 0, 0, "missing `a/plain`");
  put_file(dst, "a/new", "x", 0644);
  check_diff(fd, &w, dst, 2, 1, 0, "extra `a/new`"); /* the first by path */
  assert_int_equal(chmod(p = xasprintf("%s/a/suid", dst), 0755), 0);
  free(p);
  check_diff(fd, &w, dst, 2, 1, 1, "changed `a/hard`"); /* the tar's file; a/suid links it */

  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  assert_int_equal(sw_layer_check(fd, NULL, w.diff_id, NULL, NULL, &d, &err), -1);
  assert_non_null(strstr(err->msg, "digest"));
  sw_error_release(&err);
  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  assert_int_equal(sw_layer_check(fd, NULL, NULL, w.digest, NULL, &d, &err), -1);
  assert_non_null(strstr(err->msg, "diffID"));
  sw_error_release(&err);
  rm_tree(src);
  rm_tree(dst);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_gzip), cmocka_unit_test(test_roundtrip_zstd),
      cmocka_unit_test(test_roundtrip_none), cmocka_unit_test(test_tar_format),
      cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_malicious),
      cmocka_unit_test(test_whiteouts),      cmocka_unit_test(test_codecs),
      cmocka_unit_test(test_names),          cmocka_unit_test(test_verify_mismatch),
      cmocka_unit_test(test_layer_check),
  };
  if (geteuid() != 0) {
    fprintf(stderr, "test_layer: needs root (chown, mknod, trusted.* xattrs)\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
