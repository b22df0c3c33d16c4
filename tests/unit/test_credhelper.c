/* Unit tests for choosing a docker credential helper from config.json: credHelpers by host or
 * server address over credsStore, Docker Hub's server address, none; and the empty `auths`
 * marker login writes when a helper keeps the secret. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry-private.h"

#include <string.h>

static void
helper_is(const char *json, const char *host, const char *want, const char *want_where)
{
  char *where = NULL;
  char *got = sw_credhelper_name(json, host, &where);
  if (want == NULL) {
    assert_null(got);
  } else {
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_string_equal(where, want_where);
  }
  free(got);
  free(where);
}

static void
test_choose(void **state)
{
  (void)state;
  const char *both = "{\"credsStore\":\"desktop\",\"credHelpers\":{"
                     "\"123.dkr.ecr.us-east-1.amazonaws.com\":\"ecr-login\","
                     "\"https://gcr.io\":\"gcloud\","
                     "\"https://index.docker.io/v1/\":\"hub\"}}";
  helper_is(both, "123.dkr.ecr.us-east-1.amazonaws.com", "ecr-login",
            "credHelpers[\"123.dkr.ecr.us-east-1.amazonaws.com\"]");
  helper_is(both, "gcr.io", "gcloud", "credHelpers[\"https://gcr.io\"]");
  helper_is(both, "docker.io", "hub", "credHelpers[\"https://index.docker.io/v1/\"]");
  helper_is(both, "registry.example.com:5000", "desktop", "credsStore");
  helper_is("{\"credsStore\":\"\"}", "x.io", NULL, NULL);
  helper_is("{\"auths\":{}}", "x.io", NULL, NULL);
  helper_is("not json", "x.io", NULL, NULL);
  helper_is(NULL, "x.io", NULL, NULL);
}

static void
test_mark(void **state)
{
  (void)state;
  char *out = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_docker_config_mark("{\"auths\":{\"https://r.io/v2/\":{\"auth\":\"eDp5\"},"
                                         "\"o.io\":{\"auth\":\"eDp5\"}},\"credsStore\":\"s\"}",
                                         "r.io", &out, &err),
                   0);
  assert_non_null(strstr(out, "\"r.io\": {}"));
  assert_null(strstr(out, "https://r.io"));
  assert_non_null(strstr(out, "\"o.io\""));
  assert_non_null(strstr(out, "\"credsStore\": \"s\""));
  free(out);
  assert_int_equal(sw_docker_config_mark("[1]", "r.io", &out, &err), -1);
  sw_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_choose),
      cmocka_unit_test(test_mark),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
