/* Unit tests for `ADD https://…` source rules: which sources are URLs or git repositories, and
 * the file name a download gets (URL path, Content-Disposition, BuildKit's fallback). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fetch-git.h"
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

static void
git_is(const char *src, const char *remote, const char *ref, const char *subdir)
{
  sw_git_src_t g;
  sw_error_t err = NULL;
  assert_int_equal(sw_git_parse(src, &g, &err), 0);
  assert_string_equal(g.remote, remote);
  if (ref)
    assert_string_equal(g.ref, ref);
  else
    assert_null(g.ref);
  if (subdir)
    assert_string_equal(g.subdir, subdir);
  else
    assert_null(g.subdir);
  sw_git_src_clear(&g);
}

static void
test_git_parse(void **state)
{
  (void)state;
  git_is("https://h/r.git", "https://h/r.git", NULL, NULL);
  git_is("https://h/r.git#main", "https://h/r.git", "main", NULL);
  git_is("https://h/r.git#v1.2:docs/api/", "https://h/r.git", "v1.2", "docs/api");
  git_is("https://h/r.git#:sub", "https://h/r.git", NULL, "sub");
  git_is("git@github.com:o/r.git#refs/pull/1/head", "git@github.com:o/r.git", "refs/pull/1/head",
         NULL);
  git_is("https://h/r.git#main:./a/../b", "https://h/r.git", "main", "b");
  git_is("https://h/r.git#main:.", "https://h/r.git", "main", NULL);
  const char *bad[] = {"https://h/r.git#main:../x", "https://h/r.git#main:a/../../x",
                       "https://h/r.git#--upload-pack=x", "https://h/r.git#a..b",
                       "-oProxyCommand=x#main"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    sw_git_src_t g;
    sw_error_t err = NULL;
    assert_int_equal(sw_git_parse(bad[i], &g, &err), -1);
    sw_error_release(&err);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_name),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_git_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
