/* Unit tests for `ADD https://…` source rules: which sources are URLs or git repositories, and
 * the file name a download gets (URL path, Content-Disposition, BuildKit's fallback). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fetch-url.h"

#include <string.h>

static void
name_is(const char *url, const char *cd, const char *want)
{
  char *got = sw_url_file_name(url, cd);
  assert_string_equal(got, want);
  free(got);
}

static void
test_file_name(void **state)
{
  (void)state;
  name_is("https://example.com/a/b/tool-1.0.tar.gz", NULL, "tool-1.0.tar.gz");
  name_is("https://example.com/a/b/file.txt?x=1#frag", NULL, "file.txt");
  name_is("https://example.com/dir/", NULL, "dir"); /* path.Base strips the trailing slash */
  name_is("https://example.com/with%20space.txt", NULL, "with space.txt");
  name_is("https://example.com/a%2Fb", NULL, "__unnamed__"); /* a decoded "/" is refused */
  name_is("https://example.com/..", NULL, "__unnamed__");
  /* no name in the path: Content-Disposition, as Docker's classic builder */
  name_is("https://example.com/", "attachment; filename=\"report.csv\"", "report.csv");
  name_is("https://example.com?id=3", "attachment;filename=plain.bin; size=3", "plain.bin");
  name_is("https://example.com/", "attachment; filename=\"../../etc/passwd\"", "passwd");
  name_is("https://example.com/", "attachment; filename=\"dir/\"", "__unnamed__");
  name_is("https://example.com/", "attachment; filename*=UTF-8''x.txt", "__unnamed__");
  name_is("https://example.com/", "inline", "__unnamed__");
  name_is("https://example.com/", NULL, "__unnamed__");
  /* the URL's name wins */
  name_is("https://example.com/x.txt", "attachment; filename=\"y.txt\"", "x.txt");
}

static void
test_classify(void **state)
{
  (void)state;
  assert_true(sw_url_is_http("https://example.com/x"));
  assert_true(sw_url_is_http("http://example.com/x.tar.gz"));
  assert_false(sw_url_is_http("https://github.com/moby/buildkit.git#v0.14"));
  assert_true(sw_url_is_git("https://github.com/moby/buildkit.git#v0.14:docs"));
  assert_true(sw_url_is_git("git@github.com:moby/buildkit.git"));
  assert_true(sw_url_is_git("git://example.com/r"));
  assert_false(sw_url_is_http("./local/file"));
  assert_false(sw_url_is_git("src.git"));
  assert_false(sw_url_is_http("httpfile"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_name),
      cmocka_unit_test(test_classify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
