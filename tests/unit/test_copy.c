/* Unit tests for copy.c's rules shared with BuildKit's copier: destinations through symlinks of
 * the image (dangling ones too), a directory never replacing a non-directory nor the reverse,
 * several sources into a destination without "/", hardlinks kept, bzip2/xz archives; and the
 * inode table (util.c). The image is one snapshot directory seen through a lowerfs. Needs root
 * (chown). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef struct {
  char *tmp;   /* everything below */
  char *image; /* the image's snapshot */
  char *src;   /* a --from source's snapshot */
  char *layer; /* the layer being written */
  sw_lowerfs_t *fs, *srcfs;
} fx_t;

static void
write_file(const char *path, const char *data)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(sw_write_all(fd, data, strlen(data)), 0);
  close(fd);
}

static void
fx_init(fx_t *f)
{
  f->tmp = xstrdup("/tmp/sw-test-copy-XXXXXX");
  assert_non_null(mkdtemp(f->tmp));
  f->image = xasprintf("%s/image", f->tmp);
  f->src = xasprintf("%s/src", f->tmp);
  f->layer = xasprintf("%s/layer", f->tmp);
  assert_int_equal(mkdir(f->image, 0755), 0);
  assert_int_equal(mkdir(f->src, 0755), 0);
  assert_int_equal(mkdir(f->layer, 0755), 0);
  /* the image: /dir/, /file, /rel -> target (dangling), /abs -> /dir/deep (dangling),
   * /flink -> /file, /loop -> /loop */
  _cleanup_free_ char *p = xasprintf("%s/dir", f->image);
  assert_int_equal(mkdir(p, 0755), 0);
  _cleanup_free_ char *file = xasprintf("%s/file", f->image);
  write_file(file, "e\n");
  const char *links[][2] = {
      {"rel", "target"}, {"abs", "/dir/deep"}, {"flink", "/file"}, {"loop", "/loop"}};
  for (size_t i = 0; i < SW_ARRAY_SIZE(links); i++) {
    _cleanup_free_ char *l = xasprintf("%s/%s", f->image, links[i][0]);
    assert_int_equal(symlink(links[i][1], l), 0);
  }
  /* the --from source: /h/one and /h/two are one inode, /h/three another */
  _cleanup_free_ char *h = xasprintf("%s/h", f->src);
  assert_int_equal(mkdir(h, 0755), 0);
  _cleanup_free_ char *one = xasprintf("%s/h/one", f->src);
  _cleanup_free_ char *two = xasprintf("%s/h/two", f->src);
  _cleanup_free_ char *three = xasprintf("%s/h/three", f->src);
  write_file(one, "x\n");
  assert_int_equal(link(one, two), 0);
  write_file(three, "y\n");
  char *layers[] = {f->image, NULL};
  f->fs = sw_lowerfs_new(layers);
  char *slayers[] = {f->src, NULL};
  f->srcfs = sw_lowerfs_new(slayers);
}

static void
fx_free(fx_t *f)
{
  sw_lowerfs_free(f->fs);
  sw_lowerfs_free(f->srcfs);
  sw_error_t err = NULL;
  assert_int_equal(sw_rm_rf(f->tmp, &err), 0);
  free(f->tmp);
  free(f->image);
  free(f->src);
  free(f->layer);
}

static sw_copy_t *
new_copy_opts(fx_t *f, const char *dest, bool chown, bool link_lower)
{
  sw_copy_opts_t o = {
      .chmod = -1, .now = 1600000000, .dest_fs = f->fs, .chown = chown, .link_lower = link_lower};
  o.uid = o.gid = chown ? 1000 : 0;
  sw_copy_t *c = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_copy_new(f->layer, &o, &c, &err), 0);
  assert_int_equal(sw_copy_set_dest(c, dest, &err), 0);
  return c;
}

static sw_copy_t *
new_copy(fx_t *f, const char *dest, bool chown)
{
  return new_copy_opts(f, dest, chown, false);
}

static void
test_resolve_dest(void **state)
{
  fx_t f;
  fx_init(&f);
  sw_error_t err = NULL;
  struct {
    const char *in, *want;
  } cases[] = {
      {"/rel/sub/", "/target/sub"},         /* dangling relative link: followed */
      {"/abs/x", "/dir/deep/x"},            /* dangling absolute link into a real dir */
      {"/flink", "/file"},                  /* the last component too */
      {"/dir/../rel", "/target"},           /* cleaned first */
      {"/missing/rel/x", "/missing/rel/x"}, /* below something missing: as written */
      {"/file/x", "/file/x"},               /* below a file: as written (the copy fails) */
  };
  for (size_t i = 0; i < SW_ARRAY_SIZE(cases); i++) {
    _cleanup_free_ char *got = sw_copy_resolve_dest(f.fs, cases[i].in, &err);
    assert_non_null(got);
    assert_string_equal(got, cases[i].want);
  }
  assert_null(sw_copy_resolve_dest(f.fs, "/loop/x", &err));
  assert_int_equal(err->status, ELOOP);
  sw_error_release(&err);
  fx_free(&f);
}

static void
test_type_conflicts(void **state)
{
  fx_t f;
  fx_init(&f);
  sw_error_t err = NULL;
  /* a file where the image has a directory */
  sw_copy_t *c = new_copy(&f, "/", false);
  assert_int_equal(sw_copy_add_data(c, "dir", "x", 1, &err), -1);
  assert_int_equal(err->status, EISDIR);
  assert_non_null(strstr(err->msg, "cannot replace to directory `/dir` with file"));
  sw_error_release(&err);
  sw_copy_free(c);
  /* a directory where the image has a file, or a symlink */
  const char *dests[] = {"/file", "/flink", "/file/"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(dests); i++) {
    c = new_copy(&f, dests[i], false);
    struct stat st;
    _cleanup_free_ char *host = xasprintf("%s/h", f.src);
    assert_int_equal(stat(host, &st), 0);
    assert_int_equal(sw_copy_add_lower(c, f.srcfs, "/h", &st, host, NULL, &err), -1);
    assert_int_equal(err->status, ENOTDIR);
    assert_non_null(strstr(err->msg, "cannot copy to non-directory: `/file` is a file"));
    sw_error_release(&err);
    sw_copy_free(c);
  }
  /* a file over a file, and into the directory a symlink of the image leads to: fine */
  c = new_copy(&f, "/flink", false);
  assert_int_equal(sw_copy_add_data(c, "n", "new", 3, &err), 0);
  sw_copy_free(c);
  _cleanup_free_ char *written = xasprintf("%s/file", f.layer);
  struct stat st;
  assert_int_equal(lstat(written, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  fx_free(&f);
}

static void
test_several_sources(void **state)
{
  fx_t f;
  fx_init(&f);
  sw_error_t err = NULL;
  /* two files into /multi: the second would replace the first */
  sw_copy_t *c = new_copy(&f, "/multi", false);
  assert_int_equal(sw_copy_add_data(c, "a", "a", 1, &err), 0);
  assert_int_equal(sw_copy_add_data(c, "b", "b", 1, &err), -1);
  assert_non_null(strstr(err->msg, "several sources into `/multi`, which is not a directory"));
  sw_error_release(&err);
  sw_copy_free(c);
  /* a directory, then a file: the file goes into the directory */
  c = new_copy(&f, "/merged", false);
  struct stat st;
  _cleanup_free_ char *host = xasprintf("%s/h", f.src);
  assert_int_equal(stat(host, &st), 0);
  assert_int_equal(sw_copy_add_lower(c, f.srcfs, "/h", &st, host, NULL, &err), 0);
  assert_int_equal(sw_copy_add_data(c, "f", "f", 1, &err), 0);
  sw_copy_free(c);
  _cleanup_free_ char *one = xasprintf("%s/merged/one", f.layer);
  _cleanup_free_ char *ff = xasprintf("%s/merged/f", f.layer);
  assert_int_equal(lstat(one, &st), 0);
  assert_int_equal(lstat(ff, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  fx_free(&f);
}

static void
test_hardlinks_kept(void **state)
{
  fx_t f;
  fx_init(&f);
  sw_error_t err = NULL;
  /* --chown: written, not linked to the source; names of one inode stay one inode */
  sw_copy_t *c = new_copy(&f, "/owned/", true);
  struct stat st;
  _cleanup_free_ char *host = xasprintf("%s/h", f.src);
  assert_int_equal(stat(host, &st), 0);
  assert_int_equal(sw_copy_add_lower(c, f.srcfs, "/h", &st, host, NULL, &err), 0);
  sw_copy_free(c);
  struct stat one, two, three, src;
  _cleanup_free_ char *p1 = xasprintf("%s/owned/one", f.layer);
  _cleanup_free_ char *p2 = xasprintf("%s/owned/two", f.layer);
  _cleanup_free_ char *p3 = xasprintf("%s/owned/three", f.layer);
  _cleanup_free_ char *ps = xasprintf("%s/h/one", f.src);
  assert_int_equal(lstat(p1, &one), 0);
  assert_int_equal(lstat(p2, &two), 0);
  assert_int_equal(lstat(p3, &three), 0);
  assert_int_equal(lstat(ps, &src), 0);
  assert_int_equal(one.st_ino, two.st_ino);
  assert_int_not_equal(one.st_ino, three.st_ino);
  assert_int_not_equal(one.st_ino, src.st_ino);
  assert_int_equal(one.st_uid, 1000);
  fx_free(&f);
}

static ino_t
ino_of(const char *dir, const char *rel)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  return st.st_ino;
}

/* Linked from the snapshots (no --chown): hardlinks stay, but one inode seen in two snapshots
 * of the view (an earlier COPY --from linked it there) is two files of the image. */
static void
test_snapshot_links(void **state)
{
  fx_t f;
  fx_init(&f);
  _cleanup_free_ char *upper = xasprintf("%s/src-upper", f.tmp);
  assert_int_equal(mkdir(upper, 0755), 0);
  _cleanup_free_ char *one = xasprintf("%s/h/one", f.src);
  _cleanup_free_ char *p = xasprintf("%s/p", upper);
  assert_int_equal(link(one, p), 0);
  char *layers[] = {upper, f.src, NULL};
  sw_lowerfs_t *view = sw_lowerfs_new(layers);
  sw_copy_t *c = new_copy_opts(&f, "/all/", false, true);
  struct stat st;
  assert_int_equal(stat(upper, &st), 0);
  sw_error_t err = NULL;
  assert_int_equal(sw_copy_add_lower(c, view, "/", &st, upper, NULL, &err), 0);
  sw_copy_free(c);
  sw_lowerfs_free(view);
  assert_int_equal(ino_of(f.layer, "all/h/one"), ino_of(f.layer, "all/h/two"));
  assert_int_not_equal(ino_of(f.layer, "all/h/one"), ino_of(f.layer, "all/p"));
  assert_int_not_equal(ino_of(f.layer, "all/h/three"), ino_of(f.layer, "all/h/one"));
  fx_free(&f);
}

static void
test_archive_bz2_xz(void **state)
{
  fx_t f;
  fx_init(&f);
  int filters[] = {ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ};
  for (size_t i = 0; i < SW_ARRAY_SIZE(filters); i++) {
    _cleanup_free_ char *path = xasprintf("%s/a%zu", f.tmp, i);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter(a, filters[i]);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "in/x.txt");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0640);
    archive_entry_set_size(e, 2);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, "x\n", 2), 2);
    archive_entry_free(e);
    archive_write_free(a);
    assert_true(sw_copy_is_archive(path));
    _cleanup_free_ char *dest = xasprintf("/out%zu/", i);
    sw_copy_t *c = new_copy(&f, dest, false);
    sw_error_t err = NULL;
    assert_int_equal(sw_copy_add_archive(c, path, &err), 0);
    sw_copy_free(c);
    _cleanup_free_ char *got = xasprintf("%s/out%zu/in/x.txt", f.layer, i);
    struct stat st;
    assert_int_equal(lstat(got, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
  }
  /* compressed, but not a tar: copied as a file */
  _cleanup_free_ char *plain = xasprintf("%s/plain.bz2", f.tmp);
  struct archive *a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter(a, ARCHIVE_FILTER_BZIP2);
  assert_int_equal(archive_write_open_filename(a, plain), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  archive_write_data(a, "not a tar\n", 10);
  archive_entry_free(e);
  archive_write_free(a);
  assert_false(sw_copy_is_archive(plain));
  fx_free(&f);
}

static void
test_inomap(void **state)
{
  sw_inomap_t m = {0};
  char name[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "p%d", i);
    assert_null(sw_inomap_lookup_or_add(&m, 1, (ino_t)i, 7, name));
  }
  assert_string_equal(sw_inomap_lookup_or_add(&m, 1, 500, 7, "again"), "p500");
  assert_null(sw_inomap_lookup_or_add(&m, 1, 500, 8, "other-tree")); /* another group */
  assert_null(sw_inomap_lookup_or_add(&m, 2, 500, 7, "other-dev"));
  assert_int_equal(m.n, 1002);
  sw_inomap_clear(&m);
  assert_int_equal(m.n, 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolve_dest),    cmocka_unit_test(test_type_conflicts),
      cmocka_unit_test(test_several_sources), cmocka_unit_test(test_hardlinks_kept),
      cmocka_unit_test(test_snapshot_links),  cmocka_unit_test(test_archive_bz2_xz),
      cmocka_unit_test(test_inomap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
