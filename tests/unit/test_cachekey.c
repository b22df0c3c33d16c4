/* Unit tests for step cache keys and Merkle content hashes: every input that decides a step's
 * result changes its key; what must not matter (env order, mtimes) does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cachekey.h"

static char *args1[] = {"/bin/sh", "-c", "make", NULL};
static char *args2[] = {"/bin/sh", "-c", "make install", NULL};
static char *env1[] = {"A=1", "B=2", NULL};
static char *env1r[] = {"B=2", "A=1", NULL};
static char *env2[] = {"A=1", "B=3", NULL};
static char *sh1[] = {"/bin/sh", "-c", NULL};
static char *sh2[] = {"/bin/bash", "-c", NULL};
static char *fl1[] = {"--network=none", NULL};

static sw_cachekey_input_t
base_input(void)
{
  sw_cachekey_input_t in = {
      .parent = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
      .instruction = "RUN",
      .args = args1,
      .env = env1,
      .user = "",
      .workdir = "/app",
      .shell = sh1,
      .flags = NULL,
      .content = NULL,
      .platform = "linux/amd64",
  };
  return in;
}

static void
key_of(const sw_cachekey_input_t *in, char out[SW_KEY_SIZE])
{
  sw_cachekey_step(in, out);
  assert_true(sw_digest_valid(out));
}

static void
test_key_stable(void **state)
{
  char a[SW_KEY_SIZE], b[SW_KEY_SIZE];
  sw_cachekey_input_t in = base_input();
  key_of(&in, a);
  key_of(&in, b);
  assert_string_equal(a, b);
  /* env order does not matter */
  in.env = env1r;
  key_of(&in, b);
  assert_string_equal(a, b);
}

static void
test_key_changes(void **state)
{
  char a[SW_KEY_SIZE], b[SW_KEY_SIZE];
  sw_cachekey_input_t in = base_input();
  key_of(&in, a);

#define CHANGED(field, value)                                                                      \
  do {                                                                                             \
    sw_cachekey_input_t m = base_input();                                                          \
    m.field = value;                                                                               \
    key_of(&m, b);                                                                                 \
    assert_string_not_equal(a, b);                                                                 \
  } while (0)

  CHANGED(parent, "sha256:1111111111111111111111111111111111111111111111111111111111111111");
  CHANGED(parent, NULL);
  CHANGED(instruction, "COPY");
  CHANGED(args, args2);
  CHANGED(env, env2);
  CHANGED(env, NULL);
  CHANGED(user, "nobody");
  CHANGED(user, NULL);
  CHANGED(workdir, "/");
  CHANGED(shell, sh2);
  CHANGED(flags, fl1);
  CHANGED(content, "abc");
  CHANGED(platform, "linux/arm64");
#undef CHANGED
}

/* Length-prefixing: moving a boundary between two fields changes the key. */
static void
test_key_no_ambiguity(void **state)
{
  char a[SW_KEY_SIZE], b[SW_KEY_SIZE];
  char *x1[] = {"ab", "c", NULL};
  char *x2[] = {"a", "bc", NULL};
  sw_cachekey_input_t in = base_input();
  in.args = x1;
  key_of(&in, a);
  in.args = x2;
  key_of(&in, b);
  assert_string_not_equal(a, b);

  in = base_input();
  in.user = "a";
  in.workdir = "b";
  key_of(&in, a);
  in.user = "ab";
  in.workdir = "";
  key_of(&in, b);
  assert_string_not_equal(a, b);
}

static void
test_base_keys(void **state)
{
  char a[SW_KEY_SIZE], b[SW_KEY_SIZE], c[SW_KEY_SIZE];
  sw_cachekey_base(NULL, "linux/amd64", a);
  sw_cachekey_base("sha256:aa", "linux/amd64", b);
  sw_cachekey_base("sha256:ab", "linux/amd64", c);
  assert_string_not_equal(a, b);
  assert_string_not_equal(b, c);
  sw_cachekey_base("sha256:aa", "linux/amd64", c);
  assert_string_equal(b, c);
}

static void
test_content_nodes(void **state)
{
  const char *bytes = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  char f1[SW_HASH_HEX_SIZE], f2[SW_HASH_HEX_SIZE], f3[SW_HASH_HEX_SIZE], f4[SW_HASH_HEX_SIZE];
  sw_content_file(0100644, 4, bytes, f1);
  sw_content_file(0100755, 4, bytes, f2); /* mode matters */
  sw_content_file(0100644, 5, bytes, f3); /* size matters */
  sw_content_file(0644, 4, bytes, f4);    /* only permission bits of the mode */
  assert_string_not_equal(f1, f2);
  assert_string_not_equal(f1, f3);
  assert_string_equal(f1, f4);

  char l1[SW_HASH_HEX_SIZE], l2[SW_HASH_HEX_SIZE];
  sw_content_symlink("a", l1);
  sw_content_symlink("b", l2);
  assert_string_not_equal(l1, l2);

  /* directories: names, children and mode matter */
  char d1[SW_HASH_HEX_SIZE], d2[SW_HASH_HEX_SIZE], d3[SW_HASH_HEX_SIZE], d4[SW_HASH_HEX_SIZE];
  sw_content_dir_t *d = sw_content_dir_new(0755);
  sw_content_dir_add(d, "a", f1);
  sw_content_dir_add(d, "b", l1);
  sw_content_dir_finish(d, d1);
  d = sw_content_dir_new(0755);
  sw_content_dir_add(d, "a", f1);
  sw_content_dir_add(d, "c", l1);
  sw_content_dir_finish(d, d2);
  d = sw_content_dir_new(0700);
  sw_content_dir_add(d, "a", f1);
  sw_content_dir_add(d, "b", l1);
  sw_content_dir_finish(d, d3);
  d = sw_content_dir_new(0755);
  sw_content_dir_add(d, "a", f1);
  sw_content_dir_add(d, "b", l2);
  sw_content_dir_finish(d, d4);
  assert_string_not_equal(d1, d2);
  assert_string_not_equal(d1, d3);
  assert_string_not_equal(d1, d4);

  /* an empty dir differs from a file */
  char e[SW_HASH_HEX_SIZE];
  sw_content_dir_finish(sw_content_dir_new(0644), e);
  assert_string_not_equal(e, f1);
}

static void
test_keyhash(void **state)
{
  char a[SW_KEY_SIZE], b[SW_KEY_SIZE];
  sw_keyhash_t *h = sw_keyhash_new("x");
  sw_keyhash_str(h, NULL);
  sw_keyhash_finish(h, a);
  h = sw_keyhash_new("x");
  sw_keyhash_str(h, "");
  sw_keyhash_finish(h, b);
  assert_string_not_equal(a, b);
  h = sw_keyhash_new("y");
  sw_keyhash_str(h, "");
  sw_keyhash_finish(h, a);
  assert_string_not_equal(a, b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_stable),       cmocka_unit_test(test_key_changes),
      cmocka_unit_test(test_key_no_ambiguity), cmocka_unit_test(test_base_keys),
      cmocka_unit_test(test_content_nodes),    cmocka_unit_test(test_keyhash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
