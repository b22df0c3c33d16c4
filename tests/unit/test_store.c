/* Unit tests for the store: layout and schema, blobs, layers (commit, import unpacking in the
 * same pass, lazy unpack as the fallback),
 * images (commit, lookup by name / short ID / digest, tag, rmi semantics), cache records,
 * transactions (rollback leaves nothing), prune/GC (LRU by --keep-storage). Each test runs on
 * a fresh store in a temp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

typedef struct {
  char root[64];
  sw_store_t *s;
} fx_t;

static void
ok(int r, sw_error_t *err)
{
  if (r < 0)
    fail_msg("%s", *err ? (*err)->msg : "failed");
}

static int
setup(void **state)
{
  fx_t *f = xcalloc(1, sizeof(*f));
  sw_error_t err = NULL;
  snprintf(f->root, sizeof(f->root), "/tmp/sw-store-test-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  ok(sw_store_open(f->root, &f->s, &err), &err);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_store_free(f->s);
  sw_rm_rf(f->root, &err);
  free(f);
  return 0;
}

static bool
exists(const char *root, const char *rel)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
  return access(p, F_OK) == 0;
}

/* A directory under ROOT/tmp with a file; committed as a layer. */
static void
make_layer(fx_t *f, const char *content, sw_layer_desc_t *l)
{
  sw_error_t err = NULL;
  _cleanup_free_ char *dir = sw_store_mkdtemp(f->s, "test-", &err);
  assert_non_null(dir);
  _cleanup_free_ char *file = xasprintf("%s/hello.txt", dir);
  ok(sw_write_file_atomic(file, content, strlen(content), 0644, &err), &err);
  ok(sw_layer_commit_dir(f->s, dir, NULL, l, &err), &err);
  assert_int_equal(access(dir, F_OK), -1); /* consumed */
}

static void
test_layout(void **state)
{
  fx_t *f = *state;
  const char *dirs[] = {"blobs/sha256", "snapshots", "tmp",       "mounts",
                        "containers",   "lock",      "slipway.db"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(dirs); i++)
    assert_true(exists(f->root, dirs[i]));
  /* reopening (schema already there) works, and a second handle can coexist */
  sw_store_t *s2 = NULL;
  sw_error_t err = NULL;
  ok(sw_store_open(f->root, &s2, &err), &err);
  sw_store_free(s2);
  _cleanup_free_ char *m = sw_store_cache_mount_dir(f->s, "pip", &err);
  assert_true(sw_str_has_suffix(m, "/mounts/pip"));
  _cleanup_free_ char *m2 = sw_store_cache_mount_dir(f->s, "../../etc", &err);
  assert_null(strstr(m2, ".."));
}

static void
test_blobs(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  char *d = NULL, *text = NULL;
  size_t len;
  ok(sw_blob_put(f->s, "hello", 5, NULL, &d, &err), &err);
  assert_string_equal(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  assert_true(sw_blob_exists(f->s, d));
  ok(sw_blob_put(f->s, "hello", 5, d, NULL, &err), &err); /* existing: a hit */
  ok(sw_blob_read(f->s, d, 0, &text, &len, &err), &err);
  assert_int_equal(len, 5);
  assert_memory_equal(text, "hello", 5);
  free(text);
  assert_int_equal(sw_blob_put(f->s, "other", 5, d, NULL, &err), -1);
  assert_non_null(strstr(err->msg, "mismatch"));
  sw_error_release(&err);
  assert_false(sw_blob_exists(f->s, D1));
  assert_int_equal(sw_blob_open(f->s, D1, NULL, &err), -1);
  sw_error_release(&err);

  sw_blob_writer_t *w = sw_blob_writer_new(f->s, &err);
  ok(sw_blob_writer_write(w, "hel", 3, &err), &err);
  ok(sw_blob_writer_write(w, "lo", 2, &err), &err);
  char *d2 = NULL;
  ok(sw_blob_writer_commit(w, d, &d2, &err), &err);
  assert_string_equal(d, d2);
  w = sw_blob_writer_new(f->s, &err);
  ok(sw_blob_writer_write(w, "x", 1, &err), &err);
  assert_int_equal(sw_blob_writer_commit(w, d, NULL, &err), -1);
  sw_error_release(&err);
  free(d);
  free(d2);
}

static void
test_layers(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_desc_t l, l2, got;
  make_layer(f, "hi\n", &l);
  assert_true(sw_digest_valid(l.diff_id) && sw_digest_valid(l.digest));
  assert_string_equal(l.media_type, SW_MT_OCI_LAYER_GZIP);
  assert_true(sw_blob_exists(f->s, l.digest));
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, l.diff_id);
  _cleanup_free_ char *hello = xasprintf("%s/hello.txt", snap);
  assert_int_equal(access(hello, F_OK), 0);
  assert_int_equal(sw_layer_get(f->s, l.diff_id, NULL, &got, &err), 1);
  assert_string_equal(got.digest, l.digest);
  assert_int_equal(sw_layer_get(f->s, D1, NULL, &got, &err), 0);
  /* the same content again: same diffID, the new dir is dropped */
  make_layer(f, "hi\n", &l2);
  assert_string_equal(l.diff_id, l2.diff_id);

  /* import the blob into a second store: unpacked in the same pass; a missing snapshot is
   * unpacked again on ensure (the lazy fallback) */
  char root2[] = "/tmp/sw-store-test2-XXXXXX";
  assert_non_null(mkdtemp(root2));
  sw_store_t *s2 = NULL;
  ok(sw_store_open(root2, &s2, &err), &err);
  _cleanup_close_ int fd = sw_blob_open(f->s, l.digest, NULL, &err);
  sw_layer_desc_t imp;
  assert_int_equal(sw_layer_import(s2, fd, l.media_type, l.digest, D1, &imp, &err), -1);
  assert_non_null(strstr(err->msg, "diffID mismatch"));
  sw_error_release(&err);
  lseek(fd, 0, SEEK_SET);
  ok(sw_layer_import(s2, fd, l.media_type, l.digest, l.diff_id, &imp, &err), &err);
  assert_string_equal(imp.diff_id, l.diff_id);
  _cleanup_free_ char *snap2 = sw_snapshot_path(s2, l.diff_id);
  _cleanup_free_ char *hello2 = xasprintf("%s/hello.txt", snap2);
  assert_int_equal(access(hello2, F_OK), 0);
  ok(sw_rm_rf(snap2, &err), &err);
  ok(sw_snapshot_ensure(s2, l.diff_id, &err), &err);
  assert_int_equal(access(hello2, F_OK), 0);

  sw_store_free(s2);
  sw_rm_rf(root2, &err);
}

/* A one-file ustar (name, "x\n") in a memfd, at offset 0. */
static int
one_file_tar(const char *name)
{
  uint8_t t[512 * 4] = {0};
  unsigned sum = 0;
  snprintf((char *)t, 100, "%s", name);
  memcpy(t + 100, "0000644", 8);
  memcpy(t + 108, "0000000", 8);
  memcpy(t + 116, "0000000", 8);
  memcpy(t + 124, "00000000002", 12);
  memcpy(t + 136, "14506030000", 12);
  memset(t + 148, ' ', 8);
  t[156] = '0';
  memcpy(t + 257, "ustar", 6);
  memcpy(t + 263, "00", 2);
  for (int i = 0; i < 512; i++)
    sum += t[i];
  snprintf((char *)t + 148, 8, "%06o", sum);
  memcpy(t + 512, "x\n", 2);
  int fd = memfd_create("tar", MFD_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(sw_write_all(fd, t, sizeof(t)), 0);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static void
test_import_tar_unpacks(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_desc_t l;

  /* a good tar: the snapshot is ready as soon as the row is, tmp/ is left empty */
  _cleanup_close_ int good = one_file_tar("ok.txt");
  ok(sw_layer_import_tar(f->s, good, NULL, &l, &err), &err);
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, l.diff_id);
  _cleanup_free_ char *file = xasprintf("%s/ok.txt", snap);
  assert_int_equal(access(file, F_OK), 0);
  assert_true(sw_blob_exists(f->s, l.digest));
  _cleanup_free_ char *tmp = xasprintf("%s/tmp", f->root);
  _cleanup_dir_ DIR *d = opendir(tmp);
  struct dirent *de;
  while (d && (de = readdir(d)))
    assert_true(de->d_name[0] == '.');

  /* a tar that would leave its root is refused at the door, named by its diffID, and nothing
   * of it is stored: no blob, no snapshot, no row, nothing left in tmp/ */
  _cleanup_close_ int bad = one_file_tar("../evil");
  sw_layer_desc_t none;
  memset(&none, 0, sizeof(none));
  assert_int_equal(sw_layer_import_tar(f->s, bad, NULL, &none, &err), -1);
  assert_non_null(strstr(err->msg, "escapes"));
  assert_non_null(strstr(err->msg, "layer sha256:"));
  assert_non_null(strstr(err->msg, "entry `../evil`"));
  sw_error_release(&err);
  assert_int_equal(none.digest[0], '\0');
  assert_false(exists(f->root, "../evil"));
  _cleanup_free_ char *blobs = xasprintf("%s/blobs/sha256", f->root);
  size_t nblobs = 0;
  _cleanup_dir_ DIR *bd = opendir(blobs);
  while (bd && (de = readdir(bd)))
    nblobs += de->d_name[0] != '.';
  assert_int_equal(nblobs, 1); /* the good layer's only */
  rewinddir(d);
  while (d && (de = readdir(d)))
    assert_true(de->d_name[0] == '.');
}

static size_t
count_entries(const char *root, const char *rel)
{
  _cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
  _cleanup_dir_ DIR *d = opendir(p);
  struct dirent *de;
  size_t n = 0;
  while (d && (de = readdir(d)))
    n += de->d_name[0] != '.';
  return n;
}

/* The doors that take several layers stage them: a staged layer is verified and unpacked but
 * invisible (no row, blob or snapshot) until committed; cleared, it leaves nothing. */
static void
test_stage_then_commit(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_staged_t a, b;
  sw_layer_desc_t l;

  _cleanup_close_ int fa = one_file_tar("a.txt");
  _cleanup_close_ int fb = one_file_tar("b.txt");
  ok(sw_layer_stage_tar(f->s, fa, NULL, NULL, &a, &err), &err);
  ok(sw_layer_stage_tar(f->s, fb, NULL, NULL, &b, &err), &err);
  assert_non_null(a.tmp);
  assert_non_null(a.dir);
  assert_int_equal(sw_layer_get(f->s, a.desc.diff_id, NULL, &l, &err), 0);
  assert_false(sw_blob_exists(f->s, a.desc.digest));
  assert_int_equal(count_entries(f->root, "snapshots"), 0);
  assert_int_equal(count_entries(f->root, "blobs/sha256"), 0);

  /* one committed, one dropped */
  ok(sw_layer_stage_commit(f->s, &a, &err), &err);
  sw_layer_staged_clear(&b);
  assert_int_equal(sw_layer_get(f->s, a.desc.diff_id, NULL, &l, &err), 1);
  assert_true(sw_blob_exists(f->s, a.desc.digest));
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, a.desc.diff_id);
  _cleanup_free_ char *file = xasprintf("%s/a.txt", snap);
  assert_int_equal(access(file, F_OK), 0);
  sw_layer_staged_clear(&a);
  assert_int_equal(count_entries(f->root, "snapshots"), 1);
  assert_int_equal(count_entries(f->root, "blobs/sha256"), 1);
  assert_int_equal(count_entries(f->root, "tmp"), 0);

  /* a stored layer is a hit: nothing to commit but the (idempotent) row */
  _cleanup_close_ int fa2 = one_file_tar("a.txt");
  sw_layer_staged_t again;
  char digest[SW_DIGEST_LEN + 1];
  snprintf(digest, sizeof(digest), "%s", l.digest);
  ok(sw_layer_stage(f->s, fa2, NULL, NULL, digest, l.diff_id, &again, &err), &err);
  assert_true(again.row);
  assert_null(again.tmp);
  assert_null(again.dir);
  ok(sw_layer_stage_commit(f->s, &again, &err), &err);
  sw_layer_staged_clear(&again);

  /* a wrong diffID wins over what the tar holds, and leaves nothing */
  _cleanup_close_ int fc = one_file_tar("../evil");
  assert_int_equal(sw_layer_stage_tar(f->s, fc, NULL, D1, &b, &err), -1);
  assert_non_null(strstr(err->msg, "diffID mismatch"));
  sw_error_release(&err);
  assert_int_equal(count_entries(f->root, "tmp"), 0);
}

static sw_image_t *
commit_image(fx_t *f, const char *content, const char *name)
{
  sw_error_t err = NULL;
  sw_layer_desc_t l;
  make_layer(f, content, &l);
  sw_image_t *img = sw_image_new();
  sw_config_set_created(img->config, 1700000000);
  sw_image_add_layer(img, &l);
  sw_config_add_history(img->config, 1700000000, "test", NULL, false);
  char *names[] = {(char *)name, NULL};
  ok(sw_image_commit(f->s, img, name ? names : NULL, &err), &err);
  return img;
}

static void
test_images(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_image_t *a = commit_image(f, "a", "foo"), *got = NULL;
  assert_string_equal(a->names[0], "docker.io/library/foo:latest");
  const char *refs[] = {"foo",
                        "foo:latest",
                        "docker.io/library/foo",
                        a->config_digest,
                        a->config_digest + 7,
                        a->manifest_digest};
  for (size_t i = 0; i < SW_ARRAY_SIZE(refs); i++) {
    assert_int_equal(sw_image_get(f->s, refs[i], &got, &err), 1);
    assert_string_equal(got->manifest_digest, a->manifest_digest);
    assert_true(json_equal(got->config, a->config));
    assert_int_equal(got->n_layers, 1);
    assert_string_equal(got->layers[0].diff_id, a->layers[0].diff_id);
    sw_image_free(got);
  }
  _cleanup_free_ char *shortid = xstrndup(a->config_digest + 7, 12);
  assert_int_equal(sw_image_get(f->s, shortid, &got, &err), 1);
  sw_image_free(got);
  assert_int_equal(sw_image_get(f->s, "bar", &got, &err), 0);
  assert_int_equal(sw_image_find(f->s, "bar", &got, &err), -1);
  assert_non_null(strstr(err->msg, "bar"));
  sw_error_release(&err);

  /* tag, then rmi by name only untags; rmi by ID with two names needs force */
  ok(sw_image_tag(f->s, "foo", "localhost:5000/x:y", &err), &err);
  assert_int_equal(sw_image_get(f->s, "localhost:5000/x:y", &got, &err), 1);
  assert_int_equal(sw_strv_len(got->names), 2);
  sw_image_free(got);
  bool deleted = true;
  char **untagged = NULL;
  assert_int_equal(sw_image_delete(f->s, a->config_digest, false, NULL, &untagged, &deleted, &err),
                   -1);
  sw_error_release(&err);
  ok(sw_image_delete(f->s, "foo", false, NULL, &untagged, &deleted, &err), &err);
  assert_false(deleted);
  assert_int_equal(sw_strv_len(untagged), 1);
  assert_string_equal(untagged[0], "docker.io/library/foo:latest");
  sw_strv_free(untagged);
  assert_int_equal(sw_image_get(f->s, "foo", &got, &err), 0);
  ok(sw_image_delete(f->s, "localhost:5000/x:y", false, NULL, &untagged, &deleted, &err), &err);
  assert_true(deleted);
  sw_strv_free(untagged);
  assert_int_equal(sw_image_get(f->s, a->manifest_digest, &got, &err), 0);

  /* a name moves to the newest image; the old one stays, untagged */
  sw_image_t *b = commit_image(f, "b", "app"), *c = commit_image(f, "c", "app");
  sw_image_t **v;
  size_t n;
  ok(sw_image_list(f->s, &v, &n, &err), &err);
  assert_int_equal(n, 2);
  size_t named = 0;
  for (size_t i = 0; i < n; i++)
    named += sw_strv_len(v[i]->names);
  assert_int_equal(named, 1);
  sw_image_list_free(v, n);
  assert_int_equal(sw_image_get(f->s, "app", &got, &err), 1);
  assert_string_equal(got->manifest_digest, c->manifest_digest);
  sw_image_free(got);
  sw_image_free(a);
  sw_image_free(b);
  sw_image_free(c);
}

static void
test_cache_and_txn(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_desc_t l;
  char *v = NULL;
  make_layer(f, "cached", &l);
  char *ids[] = {l.diff_id, NULL};
  assert_int_equal(sw_cache_get(f->s, "k1", &v, &err), 0);
  ok(sw_cache_put(f->s, "k1", "{\"x\":1}", ids, l.size, &err), &err);
  assert_int_equal(sw_cache_get(f->s, "k1", &v, &err), 1);
  assert_string_equal(v, "{\"x\":1}");
  free(v);
  /* a record naming a missing layer is refused */
  char *bad[] = {D1, NULL};
  assert_int_equal(sw_cache_put(f->s, "k2", "{}", bad, 0, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_cache_get(f->s, "k2", &v, &err), 0);
  /* a rolled back transaction leaves nothing; a failing inner call fails the commit */
  ok(sw_store_begin(f->s, &err), &err);
  ok(sw_cache_put(f->s, "k3", "{}", ids, 0, &err), &err);
  sw_store_rollback(f->s);
  assert_int_equal(sw_cache_get(f->s, "k3", &v, &err), 0);
  ok(sw_store_begin(f->s, &err), &err);
  ok(sw_cache_put(f->s, "k4", "{}", ids, 0, &err), &err);
  assert_int_equal(sw_cache_put(f->s, "k5", "{}", bad, 0, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_store_commit(f->s, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_cache_get(f->s, "k4", &v, &err), 0);
  ok(sw_cache_delete(f->s, "k1", &err), &err);
  assert_int_equal(sw_cache_get(f->s, "k1", &v, &err), 0);
}

static void
test_prune(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_desc_t l1, l2, orphan;
  sw_prune_report_t rep;
  sw_store_usage_t u;
  make_layer(f, "one", &l1);
  make_layer(f, "two", &l2);
  make_layer(f, "orphan", &orphan);
  char *i1[] = {l1.diff_id, NULL}, *i2[] = {l2.diff_id, NULL}, *v = NULL;
  ok(sw_cache_put(f->s, "old", "{}", i1, l1.size, &err), &err);
  ok(sw_cache_put(f->s, "new", "{}", i2, l2.size, &err), &err);
  sw_image_t *img = commit_image(f, "kept", "kept");
  _cleanup_free_ char *junk = sw_store_mkdtemp(f->s, "junk-", &err);

  sw_prune_opts_t o = {0};
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  assert_int_equal(rep.layers, 1); /* the orphan */
  assert_false(sw_blob_exists(f->s, orphan.digest));
  _cleanup_free_ char *osnap = sw_snapshot_path(f->s, orphan.diff_id);
  assert_int_equal(access(osnap, F_OK), -1);
  assert_int_equal(access(junk, F_OK), -1);
  assert_true(sw_blob_exists(f->s, l1.digest) && sw_blob_exists(f->s, l2.digest));

  /* keep-storage: 1 byte evicts least recently used records until the rest fits */
  assert_int_equal(sw_cache_get(f->s, "old", &v, &err), 1); /* "old" is now the newest use */
  free(v);
  sleep(1);
  assert_int_equal(sw_cache_get(f->s, "old", &v, &err), 1);
  free(v);
  o.keep_storage = (int64_t)l1.size + l1.tar_size;
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  assert_int_equal(rep.cache_records, 1);
  assert_int_equal(sw_cache_get(f->s, "new", &v, &err), 0);
  assert_int_equal(sw_cache_get(f->s, "old", &v, &err), 1);
  free(v);
  assert_false(sw_blob_exists(f->s, l2.digest));

  o.all = true;
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  ok(sw_store_usage(f->s, &u, &err), &err);
  assert_int_equal(u.cache_records, 0);
  assert_int_equal(u.images, 1); /* named images stay */
  assert_int_equal(u.layers, 1);
  assert_true(sw_blob_exists(f->s, img->manifest_digest));
  sw_image_free(img);
}

/* A build step's layer: snapshot + diffID now, blob later, identical to an eager commit. */
static void
test_lazy_blob(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_layer_desc_t lazy, eager;
  sw_prune_report_t rep;
  sw_prune_opts_t o = {0};
  const struct timespec fixed[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
  _cleanup_free_ char *dir = sw_store_mkdtemp(f->s, "test-", &err);
  _cleanup_free_ char *file = xasprintf("%s/lazy.txt", dir);
  ok(sw_write_file_atomic(file, "lazy", 4, 0644, &err), &err);
  assert_int_equal(utimensat(AT_FDCWD, file, fixed, 0), 0); /* same tar whatever the clock */
  ok(sw_layer_commit_snapshot(f->s, dir, &lazy, &err), &err);
  assert_string_equal(lazy.digest, "");
  assert_true(lazy.tar_size > 0);
  assert_int_equal(sw_layer_get(f->s, lazy.diff_id, NULL, &eager, &err), 0); /* no blob yet */
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, lazy.diff_id);
  assert_int_equal(access(snap, F_OK), 0);
  /* a cache record may name it; GC keeps it for the record */
  char *ids[] = {lazy.diff_id, NULL};
  ok(sw_cache_put(f->s, "lazy", "{}", ids, lazy.tar_size, &err), &err);
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  assert_int_equal(access(snap, F_OK), 0);

  sw_layer_desc_t made = lazy;
  ok(sw_layer_make_blob(f->s, &made, NULL, &err), &err);
  assert_true(sw_blob_exists(f->s, made.digest));
  assert_string_equal(made.diff_id, lazy.diff_id);
  make_layer(f, "lazy", &eager); /* hello.txt, not lazy.txt: another layer */
  assert_string_not_equal(eager.diff_id, lazy.diff_id);
  dir = (free(dir), sw_store_mkdtemp(f->s, "test-", &err));
  free(file);
  file = xasprintf("%s/lazy.txt", dir);
  ok(sw_write_file_atomic(file, "lazy", 4, 0644, &err), &err);
  assert_int_equal(utimensat(AT_FDCWD, file, fixed, 0), 0); /* same tar whatever the clock */
  ok(sw_layer_commit_dir(f->s, dir, NULL, &eager, &err), &err);
  assert_string_equal(eager.digest, made.digest); /* the same blob as an eager commit */
  sw_layer_desc_t again = lazy;
  ok(sw_layer_make_blob(f->s, &again, NULL, &err), &err); /* found, not made again */
  assert_string_equal(again.digest, made.digest);

  /* without the record, GC removes the snapshot row and dir */
  ok(sw_cache_delete(f->s, "lazy", &err), &err);
  o.all = true;
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  assert_int_equal(access(snap, F_OK), -1);
  assert_int_equal(sw_cache_put(f->s, "lazy", "{}", ids, 0, &err), -1);
  sw_error_release(&err);
}

/* Threads share one handle (as the engine's stage threads do); another handle (as another
 * process would) writes at the same time. Everything lands, nothing is lost. */
typedef struct {
  fx_t *f;
  sw_store_t *s;
  int id;
  int failures;
} worker_t;

static void *
worker(void *arg)
{
  worker_t *w = arg;
  for (int i = 0; i < 5; i++) {
    sw_error_t err = NULL;
    sw_layer_desc_t l;
    _cleanup_free_ char *content = xasprintf("worker %d step %d", w->id, i);
    _cleanup_free_ char *dir = sw_store_mkdtemp(w->s, "w-", &err);
    _cleanup_free_ char *file = dir ? xasprintf("%s/f", dir) : NULL;
    _cleanup_free_ char *key = xasprintf("key-%d-%d", w->id, i);
    _cleanup_free_ char *name = xasprintf("img%d:%d", w->id, i);
    char *ids[] = {l.diff_id, NULL}, *names[] = {name, NULL};
    sw_image_t *img = sw_image_new();
    if (file == NULL || sw_write_file_atomic(file, content, strlen(content), 0644, &err) < 0 ||
        sw_layer_commit_dir(w->s, dir, NULL, &l, &err) < 0 || sw_store_begin(w->s, &err) < 0 ||
        sw_cache_put(w->s, key, "{}", ids, l.size, &err) < 0 || sw_store_commit(w->s, &err) < 0)
      w->failures++;
    sw_image_add_layer(img, &l);
    if (w->failures == 0 && sw_image_commit(w->s, img, names, &err) < 0)
      w->failures++;
    if (err)
      print_error("worker %d: %s\n", w->id, err->msg);
    sw_error_release(&err);
    sw_image_free(img);
  }
  return NULL;
}

static void
test_threads(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_store_t *other = NULL;
  ok(sw_store_open(f->root, &other, &err), &err);
  pthread_t t[5];
  worker_t w[5];
  for (int i = 0; i < 5; i++) {
    w[i] = (worker_t){.f = f, .s = i == 4 ? other : f->s, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < 5; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  sw_store_usage_t u;
  ok(sw_store_usage(f->s, &u, &err), &err);
  assert_int_equal(u.images, 25);
  assert_int_equal(u.cache_records, 25);
  assert_int_equal(u.layers, 25);
  sw_store_free(other);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_tar_unpacks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stage_then_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_images, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_and_txn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lazy_blob, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
