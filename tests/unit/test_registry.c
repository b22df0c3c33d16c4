/* Unit tests for the registry client's pure logic: WWW-Authenticate, docker config.json,
 * manifests / indexes / platform selection, configs, error bodies, retry policy, references. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry-private.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void
test_challenge_bearer(void **state)
{
  sw_auth_challenge_t c = {0};
  sw_error_t err = NULL;
  assert_int_equal(
      sw_auth_challenge_parse(
          "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\""
          ",scope=\"repository:samalba/my-app:pull,push\"",
          &c, &err),
      0);
  assert_string_equal(c.scheme, "bearer");
  assert_string_equal(c.realm, "https://auth.docker.io/token");
  assert_string_equal(c.service, "registry.docker.io");
  assert_string_equal(c.scope, "repository:samalba/my-app:pull,push");
  assert_null(c.error);
  sw_auth_challenge_clear(&c);

  /* quoted escapes, odd spacing, unknown params, error= */
  assert_int_equal(sw_auth_challenge_parse("bearer  realm = \"http://h/t\\\"x\" , foo=bar, "
                                           "error=\"insufficient_scope\"",
                                           &c, &err),
                   0);
  assert_string_equal(c.realm, "http://h/t\"x");
  assert_string_equal(c.error, "insufficient_scope");
  sw_auth_challenge_clear(&c);
}

static void
test_challenge_basic_and_multi(void **state)
{
  sw_auth_challenge_t c = {0};
  sw_error_t err = NULL;
  assert_int_equal(sw_auth_challenge_parse("Basic realm=\"Registry Realm\"", &c, &err), 0);
  assert_string_equal(c.scheme, "basic");
  assert_string_equal(c.realm, "Registry Realm");
  sw_auth_challenge_clear(&c);
  /* Bearer wins over Basic whatever the order */
  assert_int_equal(sw_auth_challenge_parse("Basic realm=\"x\", Bearer realm=\"https://t/\","
                                           "service=\"s\"",
                                           &c, &err),
                   0);
  assert_string_equal(c.scheme, "bearer");
  assert_string_equal(c.realm, "https://t/");
  assert_string_equal(c.service, "s");
  sw_auth_challenge_clear(&c);
}

static void
test_challenge_bad(void **state)
{
  sw_auth_challenge_t c = {0};
  sw_error_t err = NULL;
  assert_int_equal(sw_auth_challenge_parse("", &c, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_auth_challenge_parse("Bearer service=\"x\"", &c, &err), -1);
  assert_non_null(strstr(err->msg, "without a realm"));
  sw_error_release(&err);
  assert_int_equal(sw_auth_challenge_parse("Bearer realm=\"unterminated", &c, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_auth_challenge_parse("Bearer realm=\"x\", =", &c, &err), -1);
  sw_error_release(&err);
}

static void
test_base64(void **state)
{
  char *e = sw_base64_encode("user:pa:ss", 10);
  assert_string_equal(e, "dXNlcjpwYTpzcw==");
  size_t n;
  char *d = sw_base64_decode(e, &n);
  assert_int_equal(n, 10);
  assert_string_equal(d, "user:pa:ss");
  free(d);
  free(e);
  assert_null(sw_base64_decode("abc", NULL));
  assert_null(sw_base64_decode("ab!=", NULL));
}

static void
test_config_lookup(void **state)
{
  const char *json = "{\"auths\":{"
                     "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
                     "\"https://reg.example.com:5000/v2/\":{\"auth\":\"dTpwOmM=\"},"
                     "\"other.io\":{\"username\":\"o\",\"password\":\"pw\"},"
                     "\"broken.io\":{\"auth\":\"bm9jb2xvbg==\"},"
                     "\"empty.io\":{}}}";
  char *u = NULL, *p = NULL;
  sw_error_t err = NULL;

  assert_int_equal(sw_docker_config_lookup(json, "docker.io", &u, &p, &err), 1);
  assert_string_equal(u, "hub");
  assert_string_equal(p, "hubpw");
  free(u), free(p);
  assert_int_equal(sw_docker_config_lookup(json, "reg.example.com:5000", &u, &p, &err), 1);
  assert_string_equal(u, "u");
  assert_string_equal(p, "p:c"); /* only the first colon splits */
  free(u), free(p);
  assert_int_equal(sw_docker_config_lookup(json, "other.io", &u, &p, &err), 1);
  assert_string_equal(p, "pw");
  free(u), free(p);
  assert_int_equal(sw_docker_config_lookup(json, "reg.example.com", &u, &p, &err), 0);
  assert_int_equal(sw_docker_config_lookup(json, "empty.io", &u, &p, &err), 0);
  assert_int_equal(sw_docker_config_lookup(json, "broken.io", &u, &p, &err), -1);
  assert_non_null(strstr(err->msg, "broken.io"));
  sw_error_release(&err);
  assert_int_equal(sw_docker_config_lookup("{", "x", &u, &p, &err), -1);
  sw_error_release(&err);
}

static void
test_config_set(void **state)
{
  char *out = NULL, *u = NULL, *p = NULL;
  sw_error_t err = NULL;
  const char *old = "{\"credsStore\":\"\",\"auths\":{\"http://localhost:5000\":{\"auth\":\"eDp5\"},"
                    "\"keep.io\":{\"auth\":\"azpr\"}}}";

  assert_int_equal(sw_docker_config_set(old, "localhost:5000", "alice", "s3cret", &out, &err), 0);
  assert_non_null(strstr(out, "credsStore"));
  assert_non_null(strstr(out, "keep.io"));
  assert_null(strstr(out, "http://localhost:5000")); /* the old spelling is replaced */
  assert_int_equal(sw_docker_config_lookup(out, "localhost:5000", &u, &p, &err), 1);
  assert_string_equal(u, "alice");
  assert_string_equal(p, "s3cret");
  free(u), free(p), free(out);

  assert_int_equal(sw_docker_config_set(NULL, "docker.io", "a", "b", &out, &err), 0);
  assert_non_null(strstr(out, "https://index.docker.io/v1/"));
  free(out);
  assert_int_equal(sw_docker_config_set("[1]", "x", "a", "b", &out, &err), -1);
  sw_error_release(&err);
}

static const char *index_json =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
    "\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
    "\"size\":11,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
    "\"size\":12,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";

static void
test_index_select(void **state)
{
  sw_rmanifest_t *m = NULL;
  sw_platform_t p;
  sw_error_t err = NULL;

  assert_int_equal(sw_rmanifest_parse(index_json, strlen(index_json), NULL, &m, &err), 0);
  assert_int_equal(m->kind, SW_MANIFEST_INDEX);
  assert_int_equal(m->n_manifests, 3);
  assert_int_equal(sw_platform_parse(NULL, &p, &err), 0);
  assert_string_equal(sw_index_select(m, &p, &err)->digest, D2);
  assert_int_equal(sw_platform_parse("linux/aarch64", &p, &err), 0);
  assert_string_equal(p.arch, "arm64");
  assert_string_equal(sw_index_select(m, &p, &err)->digest, D1);
  assert_int_equal(sw_platform_parse("linux/arm64/v8", &p, &err), 0);
  assert_string_equal(sw_index_select(m, &p, &err)->digest, D1);
  assert_int_equal(sw_platform_parse("linux/s390x", &p, &err), 0);
  assert_null(sw_index_select(m, &p, &err));
  assert_non_null(strstr(err->msg, "linux/amd64"));
  assert_non_null(strstr(err->msg, "linux/s390x"));
  sw_error_release(&err);
  assert_int_equal(sw_platform_parse("linux", &p, &err), -1);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  sw_error_release(&err);
  assert_int_equal(sw_platform_parse("linux/", &p, &err), -1);
  sw_error_release(&err);
  sw_rmanifest_free(m);
}

/* An index as pull --all-platforms and push check it before fetching any entry. */
static int
check_index_text(const char *entries, sw_error_t *err)
{
  _cleanup_free_ char *j = xasprintf("{\"schemaVersion\":2,\"mediaType\":"
                                     "\"application/vnd.oci.image.index.v1+json\","
                                     "\"manifests\":[%s]}",
                                     entries);
  sw_rmanifest_t *m = NULL;
  if (sw_rmanifest_parse(j, strlen(j), NULL, &m, err) < 0)
    return -2;
  int r = sw_index_check(m, err);
  sw_rmanifest_free(m);
  return r;
}

#define ENTRY(mt, d, arch)                                                                         \
  "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":10,\"platform\":{\"os\":\"" arch        \
  "\",\"architecture\":\"" arch "\"}}"
#define MAN "application/vnd.oci.image.manifest.v1+json"
#define IDX "application/vnd.oci.image.index.v1+json"

static void
test_index_check(void **state)
{
  sw_error_t err = NULL;
  sw_rmanifest_t *m = NULL;

  /* index_json: two images and an attestation */
  assert_int_equal(sw_rmanifest_parse(index_json, strlen(index_json), NULL, &m, &err), 0);
  assert_int_equal(sw_index_check(m, &err), 0);
  assert_false(sw_desc_is_attestation(&m->manifests[0]));
  assert_true(sw_desc_is_attestation(&m->manifests[2]));
  sw_rmanifest_free(m);

  assert_int_equal(check_index_text(ENTRY(MAN, D1, "linux") "," ENTRY(IDX, D2, "linux"), &err), -1);
  assert_non_null(strstr(err->msg, "manifests[1] (" D2 ") is itself an index"));
  sw_error_release(&err);
  assert_int_equal(check_index_text(ENTRY(MAN, D1, "linux") "," ENTRY(MAN, D1, "linux"), &err), -1);
  assert_non_null(strstr(err->msg, "manifests[0] and [1] are the same manifest " D1));
  sw_error_release(&err);
  assert_int_equal(check_index_text(ENTRY("application/x-nope", D1, "linux"), &err), -1);
  assert_non_null(strstr(err->msg, "`application/x-nope`"));
  sw_error_release(&err);
  assert_int_equal(check_index_text("", &err), -1);
  assert_non_null(strstr(err->msg, "no image manifest"));
  sw_error_release(&err);
  assert_int_equal(check_index_text(ENTRY(MAN, D1, "unknown"), &err), -1);
  assert_non_null(strstr(err->msg, "no image manifest"));
  sw_error_release(&err);

  /* a huge entry count: refused by the check, whatever the parser allows */
  sw_buf_t b = {0};
  for (int i = 0; i < SW_INDEX_MAX_ENTRIES + 1; i++)
    sw_buf_printf(&b, "%s{\"mediaType\":\"" MAN "\",\"digest\":\"sha256:%064x\",\"size\":1}",
                  i ? "," : "", i);
  assert_int_equal(check_index_text(b.data, &err), -1);
  assert_non_null(strstr(err->msg, "257 manifests (more than 256)"));
  sw_error_release(&err);
  sw_buf_free(&b);
}

static void
test_manifest_image(void **state)
{
  const char *j = "{\"schemaVersion\":2,\"mediaType\":"
                  "\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{"
                  "\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":7,"
                  "\"digest\":\"" D1 "\"},\"layers\":[{\"mediaType\":"
                  "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":100,"
                  "\"digest\":\"" D2 "\"},{\"mediaType\":"
                  "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"size\":5,"
                  "\"digest\":\"" D3 "\"}]}";
  sw_rmanifest_t *m = NULL;
  sw_error_t err = NULL;

  assert_int_equal(sw_rmanifest_parse(j, strlen(j), NULL, &m, &err), 0);
  assert_int_equal(m->kind, SW_MANIFEST_IMAGE);
  assert_string_equal(m->config.digest, D1);
  assert_int_equal(m->n_layers, 2);
  assert_int_equal(m->layers[0].size, 100);
  assert_int_equal(sw_layer_media_comp(m->layers[0].media_type), SW_COMP_GZIP);
  assert_int_equal(sw_layer_media_comp(m->layers[1].media_type), SW_COMP_ZSTD);
  sw_rmanifest_free(m);
  assert_int_equal(sw_layer_media_comp("application/vnd.oci.image.layer.v1.tar"), SW_COMP_NONE);
  assert_int_equal(sw_layer_media_comp("application/json"), SW_COMP_UNKNOWN);

  /* OCI without mediaType: from Content-Type, then from shape */
  const char *j2 = "{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"" D1 "\"},"
                   "\"layers\":[]}";
  assert_int_equal(sw_rmanifest_parse(j2, strlen(j2), NULL, &m, &err), 0);
  assert_string_equal(m->media_type, SW_MT_OCI_MANIFEST);
  assert_int_equal(m->n_layers, 0);
  sw_rmanifest_free(m);
  assert_int_equal(
      sw_rmanifest_parse(j2, strlen(j2), SW_MT_DOCKER_MANIFEST "; charset=utf-8", &m, &err), 0);
  assert_string_equal(m->media_type, SW_MT_DOCKER_MANIFEST);
  sw_rmanifest_free(m);
}

static void
test_manifest_bad(void **state)
{
  sw_rmanifest_t *m = NULL;
  sw_error_t err = NULL;
  const char *bad[] = {
      "{\"schemaVersion\":1,\"fsLayers\":[]}",
      "{\"schemaVersion\":2}",
      "[]",
      "{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"sha256:abc\"},\"layers\":[]}",
      "{\"schemaVersion\":2,\"config\":{\"size\":-1,\"digest\":\"" D1 "\"},\"layers\":[]}",
      "{\"schemaVersion\":2,\"config\":{\"size\":1,\"digest\":\"" D1 "\"},\"layers\":{}}",
      "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\"}]}",
      "{\"schemaVersion\":2,\"schemaVersion\":2}",
  };
  for (size_t i = 0; i < SW_ARRAY_SIZE(bad); i++) {
    assert_int_equal(sw_rmanifest_parse(bad[i], strlen(bad[i]), NULL, &m, &err), -1);
    assert_non_null(err);
    sw_error_release(&err);
  }
  assert_int_equal(sw_rmanifest_parse(bad[0], strlen(bad[0]), NULL, &m, &err), -1);
  assert_non_null(strstr(err->msg, "schema 1"));
  sw_error_release(&err);
}

static void
test_config_diff_ids(void **state)
{
  const char *c = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
  char **ids = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_config_diff_ids(c, strlen(c), &ids, &err), 0);
  assert_int_equal(sw_strv_len(ids), 2);
  assert_string_equal(ids[1], D2);
  sw_strv_free(ids);
  const char *bad = "{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}";
  assert_int_equal(sw_config_diff_ids(bad, strlen(bad), &ids, &err), -1);
  sw_error_release(&err);
}

static void
test_error_body_and_retry(void **state)
{
  const char *b = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
                  "required\",\"detail\":null},{\"code\":\"DENIED\"}]}";
  char *s = sw_registry_error_body(b, strlen(b));
  assert_string_equal(s, "UNAUTHORIZED: authentication required; DENIED");
  free(s);
  assert_null(sw_registry_error_body("<html>", 6));
  assert_null(sw_registry_error_body(NULL, 0));

  assert_true(sw_retry_wanted(503, 0, NULL));
  assert_true(sw_retry_wanted(500, 0, NULL));
  assert_true(sw_retry_wanted(429, 0, NULL));
  assert_false(sw_retry_wanted(501, 0, NULL));
  assert_false(sw_retry_wanted(404, 0, NULL));
  assert_false(sw_retry_wanted(401, 0, NULL));
  assert_false(sw_retry_wanted(200, 0, NULL));
  assert_true(sw_retry_wanted(0, 18 /* CURLE_PARTIAL_FILE */, NULL));
  assert_true(sw_retry_wanted(0, 7 /* CURLE_COULDNT_CONNECT */, NULL));
  assert_true(sw_retry_wanted(0, 7, "https://registry.example.com/v2/"));
  assert_false(sw_retry_wanted(0, 7, "http://127.0.0.1:5000/v2/x/manifests/latest"));
  assert_false(sw_retry_wanted(0, 7, "http://localhost:5000/v2/"));
  assert_false(sw_retry_wanted(0, 7, "http://[::1]:5000/v2/"));
  assert_false(sw_retry_wanted(0, 7, "http://u:p@127.1.2.3/v2/"));
  assert_true(sw_retry_wanted(0, 7, "http://127.example.com/v2/"));
  assert_false(sw_retry_wanted(0, 6 /* CURLE_COULDNT_RESOLVE_HOST */, "https://nope.invalid/"));
  assert_true(sw_retry_wanted(503, 0, "http://127.0.0.1:5000/v2/"));
  assert_true(sw_retry_wanted(0, 52 /* CURLE_GOT_NOTHING */, NULL));
  assert_false(sw_retry_wanted(0, 6 /* CURLE_COULDNT_RESOLVE_HOST */, NULL));
  assert_false(sw_retry_wanted(0, 60 /* CURLE_PEER_FAILED_VERIFICATION */, NULL));

  assert_int_equal(sw_retry_delay_ms(500, 1), 500);
  assert_int_equal(sw_retry_delay_ms(500, 2), 1000);
  assert_int_equal(sw_retry_delay_ms(500, 4), 4000);
  assert_int_equal(sw_retry_delay_ms(500, 30), 10000);
}

static void
test_retry_after(void **state)
{
  /* 1994-11-06 08:49:37 UTC, the RFC's example date */
  const time_t t = 784111777;
  assert_int_equal(sw_retry_after_ms("3", t), 3000);
  assert_int_equal(sw_retry_after_ms(" 0 ", t), 0);
  assert_int_equal(sw_retry_after_ms("120", t), SW_RETRY_AFTER_MAX_MS);
  assert_int_equal(sw_retry_after_ms("99999999999", t), SW_RETRY_AFTER_MAX_MS);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", t), 10000);
  assert_int_equal(sw_retry_after_ms("Sunday, 06-Nov-94 08:49:42 GMT", t), 5000);
  assert_int_equal(sw_retry_after_ms("Sun Nov  6 08:49:39 1994", t), 2000);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 08:00:00 GMT", t), 0); /* past */
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 10:00:00 GMT", t), SW_RETRY_AFTER_MAX_MS);
  assert_int_equal(sw_retry_after_ms(NULL, t), -1);
  assert_int_equal(sw_retry_after_ms("", t), -1);
  assert_int_equal(sw_retry_after_ms("-3", t), -1);
  assert_int_equal(sw_retry_after_ms("3s", t), -1);
  assert_int_equal(sw_retry_after_ms("1.5", t), -1);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Foo 1994 08:49:47 GMT", t), -1);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 08:49:47 CET", t), -1);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT trailing", t), -1);
  assert_int_equal(sw_retry_after_ms("Sun, 06 Nov 1994 25:49:47 GMT", t), -1);

  /* the server's wait wins over the backoff (429 and 503 alike); none or garbage: backoff */
  assert_int_equal(sw_retry_wait_ms(100, 1, "3", t), 3000);
  assert_int_equal(sw_retry_wait_ms(100, 3, "0", t), 0);
  assert_int_equal(sw_retry_wait_ms(100, 1, NULL, t), 100);
  assert_int_equal(sw_retry_wait_ms(100, 2, "soon", t), 200);

  /* deadlines: the base, plus 1 s per 100 KiB */
  assert_true(sw_transfer_deadline_s(60, 0) == 60.0);
  assert_true(sw_transfer_deadline_s(60, 1024 * 1024) == 70.24);
  assert_true(sw_transfer_deadline_s(2, 100 * 1024) == 3.0);
}

static void
test_hosts(void **state)
{
  assert_string_equal(sw_registry_api_host("docker.io"), "registry-1.docker.io");
  assert_true(sw_registry_is_insecure("localhost:5000", NULL));
  assert_true(sw_registry_is_insecure("127.0.0.1:41234", NULL));
  assert_true(sw_registry_is_insecure("[::1]:5000", NULL));
  assert_false(sw_registry_is_insecure("reg.io:5000", NULL));
  char *ins[] = {"reg.io:5000", "lan", NULL};
  assert_true(sw_registry_is_insecure("reg.io:5000", ins));
  assert_true(sw_registry_is_insecure("lan:80", ins));
  assert_false(sw_registry_is_insecure("reg.io:6000", ins));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_challenge_bearer), cmocka_unit_test(test_challenge_basic_and_multi),
      cmocka_unit_test(test_challenge_bad),    cmocka_unit_test(test_base64),
      cmocka_unit_test(test_config_lookup),    cmocka_unit_test(test_config_set),
      cmocka_unit_test(test_index_select),     cmocka_unit_test(test_index_check),
      cmocka_unit_test(test_manifest_image),   cmocka_unit_test(test_manifest_bad),
      cmocka_unit_test(test_config_diff_ids),  cmocka_unit_test(test_error_body_and_retry),
      cmocka_unit_test(test_retry_after),      cmocka_unit_test(test_hosts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
