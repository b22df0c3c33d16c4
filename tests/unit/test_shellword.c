/* Unit tests for shellword.c: BuildKit-style word expansion. The expected values are the ones
 * BuildKit's shell lexer gives (frontend/dockerfile/shell). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "shellword.h"
#include "util.h"

static char *env_default[] = {"PWD=/home",     "SHELL=bash", "KOREAN=한국어", "EMPTY=",     "BARE",
                              "V=foo/bar/baz", "SP=a  b",    "X=x",           "PATH=/a:/b", NULL};

static void
expect(const char *word, const char *want)
{
  _cleanup_free_ char *out = NULL;
  sw_error_t err = NULL;
  int r = sw_word_expand(word, env_default, '\\', &out, &err);
  if (r < 0)
    fail_msg("`%s`: unexpected error: %s", word, err->msg);
  if (strcmp(out, want) != 0)
    fail_msg("`%s`: got `%s`, want `%s`", word, out, want);
}

static void
expect_words(const char *word, const char *const *want)
{
  _cleanup_strv_ char **out = NULL;
  sw_error_t err = NULL;
  size_t i;
  if (sw_word_expand_words(word, env_default, '\\', &out, &err) < 0)
    fail_msg("`%s`: unexpected error: %s", word, err->msg);
  for (i = 0; want[i]; i++) {
    if (out[i] == NULL || strcmp(out[i], want[i]) != 0)
      fail_msg("`%s`: word %zu is `%s`, want `%s`", word, i, out[i] ? out[i] : "(none)", want[i]);
  }
  if (out[i] != NULL)
    fail_msg("`%s`: extra word `%s`", word, out[i]);
}

static void
expect_error(const char *word, const char *needle)
{
  _cleanup_free_ char *out = NULL;
  sw_error_t err = NULL;
  if (sw_word_expand(word, env_default, '\\', &out, &err) == 0)
    fail_msg("`%s`: expected an error, got `%s`", word, out);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("`%s`: error `%s` lacks `%s`", word, err->msg, needle);
  sw_error_release(&err);
}

static void
test_simple(void **state)
{
  (void)state;
  expect("hello", "hello");
  expect("he'll'o", "hello");
  expect("he\"l\"lo", "hello");
  expect("$PWD", "/home");
  expect("${PWD}", "/home");
  expect("x$PWD/y", "x/home/y");
  expect("$UNSET", "");
  expect("a$", "a$");
  expect("$KOREAN", "한국어");
  expect("${KOREAN}x", "한국어x");
  expect("$PWD$SHELL", "/homebash");
  expect("$1x", "x");
  expect("$BARE|", "|");
}

static void
test_quotes_and_escapes(void **state)
{
  (void)state;
  expect("'$PWD'", "$PWD");
  expect("\"$PWD\"", "/home");
  expect("\\$PWD", "$PWD");
  expect("\"\\$PWD\"", "$PWD");
  expect("\"a\\\"b\"", "a\"b");
  expect("\"a\\b\"", "a\\b"); /* only " $ and \ can be escaped in double quotes */
  expect("\"a\\\\b\"", "a\\b");
  expect("a\\ b", "a b");
  expect("'a\\b'", "a\\b");
  expect("abc\\", "abc"); /* a trailing escape is dropped */
  expect("\"'\"", "'");
  expect("'\"'", "\"");
}

static void
test_modifiers(void **state)
{
  (void)state;
  expect("${UNSET:-def}", "def");
  expect("${EMPTY:-def}", "def");
  expect("${EMPTY-def}", "");
  expect("${UNSET-def}", "def");
  expect("${X:-def}", "x");
  expect("${X:+alt}", "alt");
  expect("${EMPTY:+alt}", "");
  expect("${EMPTY+alt}", "alt");
  expect("${UNSET+alt}", "");
  expect("${UNSET:-$PWD}", "/home");
  expect("${UNSET:-'a b'}", "a b");
  expect("${X?msg}", "x");
  expect("${EMPTY?msg}", "");
}

static void
test_patterns(void **state)
{
  (void)state;
  expect("${V#*/}", "bar/baz");
  expect("${V##*/}", "baz");
  expect("${V%/*}", "foo/bar");
  expect("${V%%/*}", "foo");
  expect("${V#foo}", "/bar/baz");
  expect("${V#nomatch}", "foo/bar/baz");
  expect("${V%ba?}", "foo/bar/");
  expect("${V/a/X}", "foo/bXr/baz");
  expect("${V//a/X}", "foo/bXr/bXz");
  expect("${V//\\//-}", "foo-bar-baz");
  expect("${V/b*/Q}", "foo/Q");
  expect("${V/#/P}", "foo/bar/baz"); /* BuildKit has no anchored replace */
  expect("${PATH//:/ }", "/a /b");
  expect("${UNSET#x}", "");
}

static void
test_errors(void **state)
{
  (void)state;
  expect_error("${X", "missing '}'");
  expect_error("${}", "bad substitution");
  expect_error("${:x}", "bad substitution");
  expect_error("${X:x}", "unsupported modifier");
  expect_error("${UNSET?}", "UNSET: is not allowed to be unset");
  expect_error("${UNSET?custom message}", "UNSET: custom message");
  expect_error("${EMPTY:?}", "EMPTY: is not allowed to be empty");
  expect_error("'abc", "matching single-quote");
  expect_error("\"abc", "matching double-quote");
  expect_error("${X:-abc", "missing '}'");
  expect_error("${V/a", "missing '/'");
  expect_error("${X", "failed to process \"${X\"");
}

static void
test_words(void **state)
{
  (void)state;
  expect_words("a b  c", (const char *[]){"a", "b", "c", NULL});
  expect_words("'a b' c", (const char *[]){"a b", "c", NULL});
  expect_words("\"a $SP\" c", (const char *[]){"a a  b", "c", NULL});
  expect_words("x$SP", (const char *[]){"xa", "b", NULL});
  expect_words("a\\ b", (const char *[]){"a b", NULL});
  expect_words("''", (const char *[]){NULL});
  expect_words("   ", (const char *[]){NULL});
  expect_words("$UNSET", (const char *[]){NULL});
}

static void
test_escape_backtick_and_flags(void **state)
{
  _cleanup_free_ char *out = NULL;
  _cleanup_free_ char *raw = NULL;
  _cleanup_free_ char *skip = NULL;
  sw_shlex_t lx = {.flags = SW_SHLEX_RAW_QUOTES};
  sw_shlex_t sk = {.flags = SW_SHLEX_SKIP_UNSET, .track = true};
  sw_error_t err = NULL;
  (void)state;

  assert_int_equal(sw_word_expand("a`$PWD\\x", env_default, '`', &out, &err), 0);
  assert_string_equal(out, "a$PWD\\x");
  assert_int_equal(sw_shlex_expand(&lx, "'a'\"b\"", env_default, &raw, &err), 0);
  assert_string_equal(raw, "'a'\"b\"");
  assert_int_equal(sw_shlex_expand(&sk, "$X $NOPE ${NOPE:-d} ${PWD}", env_default, &skip, &err), 0);
  assert_string_equal(skip, "x $NOPE ${NOPE:-d} /home");
  assert_non_null(sk.matched);
  assert_true(sw_strv_contains(sk.matched, "X"));
  assert_true(sw_strv_contains(sk.matched, "PWD"));
  assert_false(sw_strv_contains(sk.matched, "NOPE"));
  sw_strv_free(sk.matched);
}

static void
test_env_last_wins(void **state)
{
  char *env[] = {"A=1", "A=2", NULL};
  _cleanup_free_ char *out = NULL;
  sw_error_t err = NULL;
  (void)state;
  assert_int_equal(sw_word_expand("$A", env, '\\', &out, &err), 0);
  assert_string_equal(out, "2");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple),
      cmocka_unit_test(test_quotes_and_escapes),
      cmocka_unit_test(test_modifiers),
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_words),
      cmocka_unit_test(test_escape_backtick_and_flags),
      cmocka_unit_test(test_env_last_wins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
