/* Unit tests for the registry build cache's record format: encode → parse round trip (keys,
 * layers, times, no-layer records, shared blobs, parent chain), the carrying manifest, and the
 * parser's refusals of malformed or hostile configs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cacheconfig.h"
#include "util.h"

#include <jansson.h>
#include <string.h>

#define H(c)                                                                                       \
  "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
      c c c c c c c c c c c c c c c c c c c c c

static sw_cache_entry_t
entry(const char *key, const char *diff, const char *digest, int64_t created)
{
  sw_cache_entry_t e = {.created = created};
  snprintf(e.key, sizeof(e.key), "%s", key);
  if (diff) {
    e.has_layer = true;
    snprintf(e.layer.diff_id, sizeof(e.layer.diff_id), "%s", diff);
    snprintf(e.layer.digest, sizeof(e.layer.digest), "%s", digest);
    snprintf(e.layer.media_type, sizeof(e.layer.media_type), "%s", SW_MT_OCI_LAYER_GZIP);
    e.layer.size = 1234;
  }
  return e;
}

static void
test_round_trip(void **state)
{
  (void)state;
  sw_cache_entry_t in[3] = {
      entry(H("1"), H("a"), H("b"), 1700000000),
      entry(H("2"), NULL, NULL, 1700000100),     /* WORKDIR that changed nothing */
      entry(H("3"), H("c"), H("d"), 1700000200), /* on top of the first layer */
  };
  snprintf(in[2].parent, sizeof(in[2].parent), "%s", H("a"));
  snprintf(in[2].parent_key, sizeof(in[2].parent_key), "%s", H("2"));
  char *config = NULL, *manifest = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_cacheconfig_encode(in, 3, &config, &manifest, &err), 0);

  sw_cache_entry_t *out = NULL;
  size_t n = 0;
  assert_int_equal(sw_cacheconfig_parse(config, strlen(config), &out, &n, &err), 0);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(out[i].key, in[i].key);
    assert_int_equal(out[i].has_layer, in[i].has_layer);
    assert_int_equal(out[i].created, in[i].created);
  }
  assert_string_equal(out[0].layer.diff_id, H("a"));
  assert_string_equal(out[0].layer.digest, H("b"));
  assert_string_equal(out[0].layer.media_type, SW_MT_OCI_LAYER_GZIP);
  assert_int_equal(out[0].layer.size, 1234);
  assert_string_equal(out[2].layer.digest, H("d"));
  free(out);

  /* BuildKit's shape: layer 1's parent is layer 0; record 2 links to record 1 */
  json_t *j = json_loads(config, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_integer_value(
                       json_object_get(json_array_get(json_object_get(j, "layers"), 1), "parent")),
                   0);
  json_t *inputs = json_object_get(json_array_get(json_object_get(j, "records"), 2), "inputs");
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(json_array_get(inputs, 0), 0), "link")), 1);
  json_decref(j);

  /* the manifest carries the config (digest of its bytes) and both blobs */
  json_t *m = json_loads(manifest, 0, NULL);
  json_t *cfg = json_object_get(m, "config");
  assert_string_equal(json_string_value(json_object_get(cfg, "mediaType")), SW_MT_CACHE_CONFIG);
  char *want = sw_sha256_digest(config, strlen(config));
  assert_string_equal(json_string_value(json_object_get(cfg, "digest")), want);
  assert_int_equal(json_integer_value(json_object_get(cfg, "size")), strlen(config));
  assert_int_equal(json_array_size(json_object_get(m, "layers")), 2);
  free(want);
  json_decref(m);
  free(config);
  free(manifest);
}

static void
test_shared_blob_once(void **state)
{
  (void)state;
  sw_cache_entry_t in[2] = {entry(H("1"), H("a"), H("b"), 1), entry(H("2"), H("a"), H("b"), 2)};
  char *config = NULL, *manifest = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_cacheconfig_encode(in, 2, &config, &manifest, &err), 0);
  json_t *m = json_loads(manifest, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(m, "layers")), 1);
  json_decref(m);
  sw_cache_entry_t *out = NULL;
  size_t n = 0;
  assert_int_equal(sw_cacheconfig_parse(config, strlen(config), &out, &n, &err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(out[1].layer.digest, H("b"));
  free(out);
  free(config);
  free(manifest);
}

static void
test_layer_without_blob_refused(void **state)
{
  (void)state;
  sw_cache_entry_t in = entry(H("1"), H("a"), "", 1);
  char *config = NULL, *manifest = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_cacheconfig_encode(&in, 1, &config, &manifest, &err), -1);
  assert_non_null(strstr(err->msg, "no blob"));
  sw_error_release(&err);
}

static void
expect_refused(const char *json, const char *msg)
{
  sw_cache_entry_t *out = NULL;
  size_t n = 0;
  sw_error_t err = NULL;
  assert_int_equal(sw_cacheconfig_parse(json, strlen(json), &out, &n, &err), -1);
  assert_null(out);
  if (strstr(err->msg, msg) == NULL)
    fail_msg("`%s`: error `%s` lacks `%s`", json, err->msg, msg);
  sw_error_release(&err);
}

#define LAYER(mt, blob, diff)                                                                      \
  "{\"blob\":\"" blob "\",\"annotations\":{\"mediaType\":\"" mt "\",\"diffID\":\"" diff            \
  "\",\"size\":5}}"

static void
test_parse_refuses_bad_input(void **state)
{
  (void)state;
  expect_refused("[", "invalid JSON");
  expect_refused("[]", "expected an object");
  expect_refused("{\"layers\":{}}", "expected an object");
  expect_refused("{\"records\":[{\"digest\":\"sha256:xyz\"}]}", "record 0");
  expect_refused("{\"records\":[{\"digest\":\"" H("1") "\",\"layers\":[{\"layer\":0}]}]}",
                 "out of range");
  expect_refused("{\"layers\":[" LAYER(SW_MT_OCI_LAYER_GZIP, H("a"),
                                       H("b")) "],"
                                               "\"records\":[{\"digest\":\"" H(
                                                   "1") "\",\"layers\":[{\"layer\":-1}]}]}",
                 "out of range");
  expect_refused("{\"layers\":[" LAYER("application/x-evil", H("a"), H("b")) "],\"records\":[]}",
                 "not a layer type");
  expect_refused(
      "{\"layers\":[" LAYER(SW_MT_OCI_LAYER, "sha256:../../etc", H("b")) "],"
                                                                         "\"records\":[]}",
      "sha256 digests");
  expect_refused("{\"layers\":[{\"blob\":\"" H(
                     "a") "\",\"annotations\":{\"mediaType\":\"" SW_MT_OCI_LAYER
                          "\",\"diffID\":\"" H("b") "\",\"size\":-4}}],\"records\":[]}",
                 "bad size");
  expect_refused("{\"records\":[],\"records\":[]}", "invalid JSON"); /* duplicate keys */
}

static void
test_parse_accepts_buildkit_times(void **state)
{
  (void)state;
  const char *j = "{\"layers\":[" LAYER(
      SW_MT_OCI_LAYER_ZSTD, H("a"),
      H("b")) "],\"records\":["
              "{\"digest\":\"" H("1") "\",\"layers\":[{\"layer\":0,\"createdAt\":"
                                      "\"2023-11-14T22:13:20.123456789Z\"}]}]}";
  sw_cache_entry_t *out = NULL;
  size_t n = 0;
  sw_error_t err = NULL;
  assert_int_equal(sw_cacheconfig_parse(j, strlen(j), &out, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(out[0].created, 1700000000);
  assert_true(out[0].has_layer);
  free(out);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_shared_blob_once),
      cmocka_unit_test(test_layer_without_blob_refused),
      cmocka_unit_test(test_parse_refuses_bad_input),
      cmocka_unit_test(test_parse_accepts_buildkit_times),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
