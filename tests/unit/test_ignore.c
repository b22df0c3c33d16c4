/* Unit tests for ignore.c: .dockerignore as Docker (moby/patternmatcher) matches it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ignore.h"
#include "util.h"

#include <sys/stat.h>

static sw_ignore_t *
load(const char *text)
{
  sw_ignore_t *ig = NULL;
  sw_error_t err = NULL;
  if (sw_ignore_parse(".dockerignore", text, strlen(text), &ig, &err) < 0)
    fail_msg("parse failed: %s", err->msg);
  return ig;
}

static void
check(const char *text, const char *path, bool want)
{
  _cleanup_(sw_ignore_freep) sw_ignore_t *ig = load(text);
  if (sw_ignore_match(ig, path) != want)
    fail_msg("patterns `%s`: `%s` should %sbe excluded", text, path, want ? "" : "not ");
}

static void
test_basic_patterns(void **state)
{
  (void)state;
  check("foo", "foo", true);
  check("foo", "foo/bar/baz", true); /* a parent directory matches */
  check("foo", "xfoo", false);
  check("foo", "a/foo", false); /* patterns are anchored at the root */
  check("*.pyc", "a.pyc", true);
  check("*.pyc", "sub/a.pyc", false); /* `*` does not cross '/' */
  check("*/*.pyc", "sub/a.pyc", true);
  check("?.txt", "a.txt", true);
  check("?.txt", "ab.txt", false);
  check("[a-c].txt", "b.txt", true);
  check("[a-c].txt", "d.txt", false);
  check("[^a-c].txt", "d.txt", true);
  check("a\\*b", "a*b", true);
  check("a\\*b", "axb", false);
  check("a.b", "aXb", false); /* '.' is literal */
  check("", "anything", false);
}

static void
test_double_star(void **state)
{
  (void)state;
  check("**/__pycache__", "__pycache__", true);
  check("**/__pycache__", "a/b/__pycache__/x.pyc", true);
  check("**/*.md", "README.md", true);
  check("**/*.md", "docs/a/b.md", true);
  check("docs/**", "docs/a/b", true);
  check("docs/**", "docs", false);
  check("a/**/b", "a/b", true);
  check("a/**/b", "a/x/y/b", true);
  check("a/**/b", "a/x/y/c", false);
  check("**", "x/y", true);
}

static void
test_exceptions_and_order(void **state)
{
  (void)state;
  const char *p = "*.md\n!README.md\n";
  check(p, "CHANGES.md", true);
  check(p, "README.md", false);
  check("!README.md\n*.md\n", "README.md", true); /* the last match wins */
  check("docs\n!docs/keep.txt\n", "docs/keep.txt", false);
  check("docs\n!docs/keep.txt\n", "docs/other.txt", true);
  check("a/b\n!a\n", "a/b/c", false);
  check("*\n!src\n", "src/main.py", false);
  check("*\n!src\n", "setup.py", true);
}

static void
test_cleaning_and_comments(void **state)
{
  (void)state;
  const char *p = "# comment\n\n  /build  \n./dist/\nx//y/../z\n\xEF\xBB\xBF\n";
  check(p, "build/out", true);
  check(p, "dist", true);
  check(p, "x/z", true);
  check(p, "# comment", false);
  check("\xEF\xBB\xBF"
        "node_modules\r\n",
        "node_modules/x", true);
  check("secret\n", "./secret", true);
  check("secret\n", "/secret", true);
}

static void
test_bad_patterns(void **state)
{
  const char *bad[] = {"[a", "a\\", "[]", "[-a]", "[a-]", "!", "ok\n!\n"};
  (void)state;
  for (size_t i = 0; i < SW_ARRAY_SIZE(bad); i++) {
    sw_ignore_t *ig = NULL;
    sw_error_t err = NULL;
    if (sw_ignore_parse(".dockerignore", bad[i], strlen(bad[i]), &ig, &err) == 0) {
      sw_ignore_free(ig);
      fail_msg("pattern `%s` should be rejected", bad[i]);
    }
    assert_non_null(strstr(err->msg, ".dockerignore:"));
    sw_error_release(&err);
  }
}

static void
test_may_include_below(void **state)
{
  _cleanup_(sw_ignore_freep) sw_ignore_t *plain = load("node_modules\n*.pyc\n");
  _cleanup_(sw_ignore_freep) sw_ignore_t *ex = load("docs\n!docs/README.md\n!**/keep\n");
  (void)state;
  assert_false(sw_ignore_may_include_below(plain, "node_modules"));
  assert_false(sw_ignore_has_exceptions(plain));
  assert_int_equal(sw_ignore_count(plain), 2);
  assert_true(sw_ignore_has_exceptions(ex));
  assert_true(sw_ignore_may_include_below(ex, "docs"));
  assert_true(sw_ignore_may_include_below(ex, "anything")); /* `**` reaches below */
  {
    _cleanup_(sw_ignore_freep) sw_ignore_t *ig = load("docs\n!docs/README.md\n");
    assert_true(sw_ignore_may_include_below(ig, "docs"));
    assert_false(sw_ignore_may_include_below(ig, "docs/sub"));
    assert_false(sw_ignore_may_include_below(ig, "other"));
  }
}

static void
test_no_blowup(void **state)
{
  /* `**` and `*` heavy patterns on a long deep path answer quickly (NFA, no backtracking) */
  sw_buf_t path = {0};
  _cleanup_(sw_ignore_freep) sw_ignore_t *ig =
      load("**/**/**/**/**/**/*a*a*a*a*a*a*a*a*b\n!**/x*x*x*x*x*x*x*y/**\n");
  double t0 = sw_now();
  (void)state;
  for (int i = 0; i < 400; i++)
    sw_buf_puts(&path, "aaaaaaaaa/");
  sw_buf_puts(&path, "aaaa");
  assert_false(sw_ignore_match(ig, path.data));
  assert_true(sw_ignore_may_include_below(ig, path.data));
  assert_true(sw_now() - t0 < 2.0);
  sw_buf_free(&path);
}

static void
test_load_for_build(void **state)
{
  char dir[] = "/tmp/sw-ignore-XXXXXX";
  _cleanup_free_ char *ctx_ignore = NULL;
  _cleanup_free_ char *df = NULL;
  _cleanup_free_ char *df_ignore = NULL;
  sw_ignore_t *ig = NULL;
  sw_error_t err = NULL;
  (void)state;

  assert_non_null(mkdtemp(dir));
  ctx_ignore = xasprintf("%s/.dockerignore", dir);
  df = xasprintf("%s/dev.Dockerfile", dir);
  df_ignore = xasprintf("%s/dev.Dockerfile.dockerignore", dir);
  assert_int_equal(sw_write_file_atomic(ctx_ignore, "ctx\n", 4, 0644, &err), 0);

  assert_int_equal(sw_ignore_load_for_build(dir, df, &ig, &err), 0);
  assert_true(sw_ignore_match(ig, "ctx"));
  sw_ignore_free(ig);

  /* NAME.dockerignore beside Dockerfile NAME takes precedence */
  assert_int_equal(sw_write_file_atomic(df_ignore, "beside\n", 7, 0644, &err), 0);
  assert_int_equal(sw_ignore_load_for_build(dir, df, &ig, &err), 0);
  assert_true(sw_ignore_match(ig, "beside"));
  assert_false(sw_ignore_match(ig, "ctx"));
  sw_ignore_free(ig);

  /* no ignore file: nothing excluded */
  unlink(df_ignore);
  unlink(ctx_ignore);
  assert_int_equal(sw_ignore_load_for_build(dir, NULL, &ig, &err), 0);
  assert_int_equal(sw_ignore_count(ig), 0);
  assert_false(sw_ignore_match(ig, "ctx"));
  sw_ignore_free(ig);
  rmdir(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_patterns),
      cmocka_unit_test(test_double_star),
      cmocka_unit_test(test_exceptions_and_order),
      cmocka_unit_test(test_cleaning_and_comments),
      cmocka_unit_test(test_bad_patterns),
      cmocka_unit_test(test_may_include_below),
      cmocka_unit_test(test_no_blowup),
      cmocka_unit_test(test_load_for_build),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
