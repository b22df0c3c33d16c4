/* Unit tests for the build context: .dockerignore pruning, source matching (globs, symlinks
 * inside only, `..` refused), Merkle hashes (mtime-blind, mode- and content-sensitive) and the
 * stat cache that spares re-reading unchanged files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>

static char dir[256], cache[300];

static void
put(const char *rel, const char *data)
{
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, rel);
  char *slash = strrchr(p, '/');
  *slash = '\0';
  sw_error_t err = NULL;
  assert_int_equal(sw_mkdir_p(p, 0755, &err), 0);
  *slash = '/';
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(sw_write_all(fd, data, strlen(data)), 0);
  close(fd);
}

static int
setup(void **state)
{
  snprintf(dir, sizeof(dir), "/tmp/sw-test-context-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(cache, sizeof(cache), "%s.cache", dir);
  put("Dockerfile", "FROM scratch\n");
  put("requirements.txt", "django\n");
  put("app/main.py", "print(1)\n");
  put("app/util.py", "x = 1\n");
  put("app/data.json", "{}\n");
  put("build/out.o", "obj");
  put("build/keep.txt", "keep");
  put("logs/a.log", "log");
  put(".dockerignore", "build\n!build/keep.txt\nlogs\n*.tmp\n");
  put("x.tmp", "tmp");
  return 0;
}

static int
teardown(void **state)
{
  sw_error_t err = NULL;
  sw_rm_rf(dir, &err);
  sw_rm_rf(cache, &err);
  sw_error_release(&err);
  return 0;
}

static sw_context_t *
open_ctx(void)
{
  sw_context_t *c = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_context_open(dir, NULL, cache, &c, &err), 0);
  return c;
}

static size_t
match(sw_context_t *c, const char *src, sw_ctx_node_t ***nodes)
{
  size_t n = 0;
  sw_error_t err = NULL;
  int r = sw_context_match(c, src, "test", nodes, &n, &err);
  if (r < 0)
    fail_msg("match `%s`: %s", src, err->msg);
  return n;
}

static void
hash_of(sw_context_t *c, const char *src, char out[SW_HASH_HEX_SIZE])
{
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, src, &nodes), 1);
  sw_error_t err = NULL;
  assert_int_equal(sw_context_hash(c, nodes[0], out, &err), 0);
  free(nodes);
}

static void
test_ignore_and_listing(void **state)
{
  sw_context_t *c = open_ctx();
  sw_ctx_node_t *root = sw_context_root(c);
  sw_error_t err = NULL;
  assert_int_equal(sw_context_list(c, root, &err), 0);
  bool has_logs = false, has_build = false, has_tmp = false;
  for (size_t i = 0; i < root->nkids; i++) {
    has_logs |= strcmp(root->kids[i]->name, "logs") == 0;
    has_build |= strcmp(root->kids[i]->name, "build") == 0;
    has_tmp |= strcmp(root->kids[i]->name, "x.tmp") == 0;
  }
  assert_false(has_logs); /* excluded, no exception below: pruned */
  assert_false(has_tmp);
  assert_true(has_build); /* excluded but holds an exception */
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, "build", &nodes), 1);
  assert_int_equal(sw_context_list(c, nodes[0], &err), 0);
  assert_int_equal(nodes[0]->nkids, 1);
  assert_string_equal(nodes[0]->kids[0]->name, "keep.txt");
  free(nodes);

  /* an ignored source is "not found", and says why */
  size_t n = 0;
  assert_int_equal(sw_context_match(c, "logs/a.log", "Dockerfile:3: COPY", &nodes, &n, &err), -1);
  assert_non_null(strstr(err->msg, ".dockerignore"));
  assert_non_null(strstr(err->msg, "Dockerfile:3"));
  sw_error_release(&err);
  sw_context_free(c);
}

static void
test_globs(void **state)
{
  sw_context_t *c = open_ctx();
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, "app/*.py", &nodes), 2);
  assert_string_equal(nodes[0]->rel, "app/main.py");
  assert_string_equal(nodes[1]->rel, "app/util.py");
  free(nodes);
  assert_int_equal(match(c, "*/data.json", &nodes), 1);
  free(nodes);
  assert_int_equal(match(c, "nothing*", &nodes), 0); /* a wildcard may match nothing */
  free(nodes);
  assert_int_equal(match(c, "./app/../requirements.txt", &nodes), 1);
  assert_string_equal(nodes[0]->rel, "requirements.txt");
  free(nodes);
  sw_context_free(c);
}

static void
test_outside_refused(void **state)
{
  char p[512];
  snprintf(p, sizeof(p), "%s/escape", dir);
  assert_int_equal(symlink("/etc", p), 0);
  snprintf(p, sizeof(p), "%s/up", dir);
  assert_int_equal(symlink("../..", p), 0);
  snprintf(p, sizeof(p), "%s/inside", dir);
  assert_int_equal(symlink("app/main.py", p), 0);

  sw_context_t *c = open_ctx();
  sw_ctx_node_t **nodes = NULL;
  size_t n = 0;
  sw_error_t err = NULL;
  const char *bad[] = {"../x", "app/../../x", "escape/passwd", "escape", "up/etc"};
  for (size_t i = 0; i < SW_ARRAY_SIZE(bad); i++) {
    assert_int_equal(sw_context_match(c, bad[i], "COPY", &nodes, &n, &err), -1);
    if (strstr(err->msg, "outside the build context") == NULL)
      fail_msg("`%s`: %s", bad[i], err->msg);
    sw_error_release(&err);
  }
  /* a link that stays inside is followed */
  assert_int_equal(match(c, "inside", &nodes), 1);
  assert_string_equal(nodes[0]->rel, "app/main.py");
  free(nodes);
  sw_context_free(c);
  unlink(p);
  snprintf(p, sizeof(p), "%s/escape", dir);
  unlink(p);
  snprintf(p, sizeof(p), "%s/up", dir);
  unlink(p);
}

static void
test_hashes(void **state)
{
  char h1[SW_HASH_HEX_SIZE], h2[SW_HASH_HEX_SIZE], h3[SW_HASH_HEX_SIZE], f1[SW_HASH_HEX_SIZE],
      f2[SW_HASH_HEX_SIZE];
  sw_context_t *c = open_ctx();
  hash_of(c, "app", h1);
  hash_of(c, "requirements.txt", f1);
  sw_context_free(c);

  /* mtime only: same hash */
  char p[512];
  snprintf(p, sizeof(p), "%s/app/main.py", dir);
  struct timeval tv[2] = {{1, 0}, {1, 0}};
  assert_int_equal(utimes(p, tv), 0);
  c = open_ctx();
  hash_of(c, "app", h2);
  assert_string_equal(h1, h2);
  sw_context_free(c);

  /* mode: different */
  assert_int_equal(chmod(p, 0755), 0);
  c = open_ctx();
  hash_of(c, "app", h2);
  assert_string_not_equal(h1, h2);
  sw_context_free(c);
  assert_int_equal(chmod(p, 0644), 0);

  /* content, same size: different; other files keep their hash */
  put("app/main.py", "print(2)\n");
  c = open_ctx();
  hash_of(c, "app", h3);
  assert_string_not_equal(h1, h3);
  hash_of(c, "requirements.txt", f2);
  assert_string_equal(f1, f2);

  /* excludes leave paths out */
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, "app", &nodes), 1);
  char *ex[] = {"*.json", NULL};
  char he[SW_HASH_HEX_SIZE];
  sw_error_t err = NULL;
  assert_int_equal(sw_context_hash_excluding(c, nodes[0], ex, he, &err), 0);
  assert_string_not_equal(he, h3);
  free(nodes);
  sw_context_free(c);
  put("app/data.json", "{\"changed\": true}\n");
  c = open_ctx();
  assert_int_equal(match(c, "app", &nodes), 1);
  char he2[SW_HASH_HEX_SIZE];
  assert_int_equal(sw_context_hash_excluding(c, nodes[0], ex, he2, &err), 0);
  assert_string_equal(he, he2); /* the excluded file changed: no difference */
  free(nodes);
  sw_context_free(c);
}

static void
test_stat_cache(void **state)
{
  char h1[SW_HASH_HEX_SIZE], h2[SW_HASH_HEX_SIZE];
  sw_context_t *c = open_ctx();
  hash_of(c, "requirements.txt", h1);
  sw_context_free(c); /* writes the cache */
  struct stat st;
  char p[512];
  snprintf(p, sizeof(p), "%s/requirements.txt", dir);
  assert_int_equal(stat(p, &st), 0);
  /* the file cannot be read now: only the cache can answer */
  assert_int_equal(chmod(p, 0), 0);
  bool root = geteuid() == 0;
  c = open_ctx();
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, "requirements.txt", &nodes), 1);
  sw_error_t err = NULL;
  assert_int_equal(sw_context_hash(c, nodes[0], h2, &err), 0);
  free(nodes);
  sw_context_free(c);
  /* chmod changed the ctime and the mode: a new hash, read again (root reads mode 0 files) */
  if (root)
    assert_string_not_equal(h1, h2);
  assert_int_equal(chmod(p, 0644), 0);
  c = open_ctx();
  hash_of(c, "requirements.txt", h2);
  assert_string_equal(h1, h2);
  sw_context_free(c);
  /* a corrupt cache file is ignored, never trusted */
  DIR *d = opendir(cache);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char cp[600];
    snprintf(cp, sizeof(cp), "%s/%s", cache, de->d_name);
    int fd = open(cp, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "0", 1, 0), 1);
    close(fd);
  }
  closedir(d);
  c = open_ctx();
  hash_of(c, "requirements.txt", h2);
  assert_string_equal(h1, h2);
  sw_context_free(c);
}

static bool
is_whiteout(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

/* RUN --mount=type=bind of the context: the mask hides exactly what .dockerignore excludes,
 * with directories made only on the way to a hidden entry, carrying the originals' modes. */
static void
test_mask(void **state)
{
  _cleanup_(sw_context_freep) sw_context_t *c = NULL;
  sw_error_t err = NULL;
  char hash[SW_HASH_HEX_SIZE], mask[300], p[400];
  size_t n = 0;
  snprintf(p, sizeof(p), "%s/build", dir);
  assert_int_equal(chmod(p, 0750), 0);
  c = open_ctx();
  assert_int_equal(sw_context_hash(c, sw_context_root(c), hash, &err), 0);
  snprintf(mask, sizeof(mask), "%s.mask", dir);
  assert_int_equal(mkdir(mask, 0700), 0);
  assert_int_equal(sw_context_mask(c, sw_context_root(c), mask, &n, &err), 0);
  assert_int_equal(n, 3);
  snprintf(p, sizeof(p), "%s/logs", mask);
  assert_true(is_whiteout(p));
  snprintf(p, sizeof(p), "%s/x.tmp", mask);
  assert_true(is_whiteout(p));
  snprintf(p, sizeof(p), "%s/build/out.o", mask);
  assert_true(is_whiteout(p));
  snprintf(p, sizeof(p), "%s/build/keep.txt", mask);
  assert_int_equal(access(p, F_OK), -1); /* re-included: shows through */
  struct stat st;
  snprintf(p, sizeof(p), "%s/build", mask);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0750);
  snprintf(p, sizeof(p), "%s/app", mask);
  assert_int_equal(access(p, F_OK), -1); /* nothing hidden below: not made */
  assert_int_equal(stat(mask, &st), 0);
  struct stat dst;
  assert_int_equal(stat(dir, &dst), 0);
  assert_int_equal(st.st_mode & 07777, dst.st_mode & 07777);

  /* a subdirectory source: only what is below it */
  sw_ctx_node_t **nodes = NULL;
  assert_int_equal(match(c, "app", &nodes), 1);
  char mask2[320];
  snprintf(mask2, sizeof(mask2), "%s.mask2", dir);
  assert_int_equal(mkdir(mask2, 0700), 0);
  assert_int_equal(sw_context_mask(c, nodes[0], mask2, &n, &err), 0);
  assert_int_equal(n, 0);
  free(nodes);
  sw_rm_rf(mask, &err);
  sw_rm_rf(mask2, &err);
  sw_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ignore_and_listing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_globs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outside_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hashes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stat_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mask, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
