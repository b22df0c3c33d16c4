/* Unit tests for image.c: reference normalisation, deterministic config/manifest/index JSON,
 * manifest parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "image.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void
norm_is(const char *in, const char *want)
{
  sw_error_t err = NULL;
  char *got = sw_ref_normalize(in, &err);
  if (got == NULL)
    fail_msg("%s: %s", in, err->msg);
  assert_string_equal(got, want);
  free(got);
}

static void
norm_fails(const char *in)
{
  sw_error_t err = NULL;
  char *got = sw_ref_normalize(in, &err);
  if (got)
    fail_msg("%s normalised to %s, want error", in, got);
  assert_non_null(err);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  assert_non_null(strstr(err->msg, in));
  sw_error_release(&err);
}

static void
test_ref_normalize(void **state)
{
  norm_is("foo", "docker.io/library/foo:latest");
  norm_is("foo:1.2", "docker.io/library/foo:1.2");
  norm_is("user/foo", "docker.io/user/foo:latest");
  norm_is("docker.io/foo", "docker.io/library/foo:latest");
  norm_is("index.docker.io/library/foo:x", "docker.io/library/foo:x");
  norm_is("localhost:5000/x:y", "localhost:5000/x:y");
  norm_is("localhost/x", "localhost/x:latest");
  norm_is("registry.example.com/a/b/c", "registry.example.com/a/b/c:latest");
  norm_is("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest");
  norm_is("foo@" D1, "docker.io/library/foo@" D1);
  norm_is("foo:tag@" D1, "docker.io/library/foo:tag@" D1);
  norm_is("my_app-1.x__y", "docker.io/library/my_app-1.x__y:latest");
  norm_fails("Foo");
  norm_fails("foo:");
  norm_fails("foo:bad/tag");
  norm_fails("-foo");
  norm_fails("foo@sha256:123");
  norm_fails("a//b");
  norm_fails("");
}

static void
test_ref_display(void **state)
{
  char *repo, *tag;
  sw_ref_display("docker.io/library/foo:latest", &repo, &tag);
  assert_string_equal(repo, "foo");
  assert_string_equal(tag, "latest");
  free(repo);
  free(tag);
  sw_ref_display("docker.io/user/foo:1", &repo, &tag);
  assert_string_equal(repo, "user/foo");
  assert_string_equal(tag, "1");
  free(repo);
  free(tag);
  sw_ref_display("localhost:5000/x:y", &repo, &tag);
  assert_string_equal(repo, "localhost:5000/x");
  assert_string_equal(tag, "y");
  free(repo);
  free(tag);
}

static void
test_config_json_order(void **state)
{
  json_t *cfg = sw_config_new("amd64");
  sw_config_set_created(cfg, 1700000000);
  sw_config_env_set(cfg, "PATH", "/usr/bin");
  sw_config_env_set(cfg, "A", "1");
  sw_config_env_set(cfg, "PATH", "/bin");
  char *cmd[] = {"sh", "-c", "echo hi", NULL};
  sw_config_set_strv(cfg, "Cmd", cmd);
  sw_config_label_set(cfg, "z", "last");
  sw_config_label_set(cfg, "a", "first");
  sw_config_expose(cfg, "80");
  sw_config_expose(cfg, "53/udp");
  json_object_set_new(sw_config_container(cfg), "WorkingDir", json_string("/app"));
  json_object_set_new(sw_config_container(cfg), "User", json_string("app"));
  sw_config_add_diff_id(cfg, D1);
  sw_config_add_history(cfg, 1700000000, "/bin/sh -c #(nop) ADD file", NULL, false);
  sw_config_add_history(cfg, 1700000001, "ENV A=1", "buildkit.dockerfile.v0", true);

  char *s = sw_json_dump(cfg);
  assert_string_equal(
      s, "{\"created\":\"2023-11-14T22:13:20Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
         "\"config\":{\"User\":\"app\",\"ExposedPorts\":{\"53/udp\":{},\"80/tcp\":{}},"
         "\"Env\":[\"PATH=/bin\",\"A=1\"],\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],"
         "\"WorkingDir\":\"/app\",\"Labels\":{\"a\":\"first\",\"z\":\"last\"}},"
         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]},"
         "\"history\":[{\"created\":\"2023-11-14T22:13:20Z\",\"created_by\":\"/bin/sh -c #(nop) "
         "ADD file\"},{\"created\":\"2023-11-14T22:13:21Z\",\"created_by\":\"ENV A=1\","
         "\"comment\":\"buildkit.dockerfile.v0\",\"empty_layer\":true}]}");
  assert_string_equal(sw_config_env_get(cfg, "PATH"), "/bin");
  assert_null(sw_config_env_get(cfg, "PAT"));
  assert_int_equal(sw_config_created(cfg), 1700000000);

  /* Same content in another insertion order dumps to the same bytes. */
  json_error_t je;
  json_t *again = json_loads(s, 0, &je);
  json_t *shuffled = json_object();
  const char *keys[] = {"history", "rootfs", "config", "os", "architecture", "created"};
  for (size_t i = 0; i < 6; i++)
    json_object_set(shuffled, keys[i], json_object_get(again, keys[i]));
  char *s2 = sw_json_dump(shuffled);
  assert_string_equal(s, s2);
  free(s2);
  free(s);
  json_decref(shuffled);
  json_decref(again);
  json_decref(cfg);
}

static sw_image_t *
two_layer_image(void)
{
  sw_image_t *img = sw_image_new();
  sw_layer_desc_t l = {.diff_id = D1, .digest = D2, .size = 10, .media_type = SW_MT_OCI_LAYER_GZIP};
  sw_image_add_layer(img, &l);
  sw_layer_desc_t l2 = {
      .diff_id = D2, .digest = D3, .size = 20, .media_type = SW_MT_OCI_LAYER_ZSTD};
  sw_image_add_layer(img, &l2);
  img->config_digest = xstrdup(D1);
  img->config_size = 123;
  return img;
}

static void
test_manifest_roundtrip(void **state)
{
  sw_image_t *img = two_layer_image();
  char *m = sw_manifest_build(img, false);
  assert_string_equal(
      m, "{\"schemaVersion\":2,\"mediaType\":\"" SW_MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":"
         "\"" SW_MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":123},\"layers\":[{\"mediaType\":"
         "\"" SW_MT_OCI_LAYER_GZIP "\",\"digest\":\"" D2
         "\",\"size\":10},{\"mediaType\":\"" SW_MT_OCI_LAYER_ZSTD "\",\"digest\":\"" D3
         "\",\"size\":20}]}");
  char *dm = sw_manifest_build(img, true);
  assert_non_null(strstr(dm, SW_MT_DOCKER_MANIFEST));
  assert_non_null(strstr(dm, SW_MT_DOCKER_LAYER_GZIP));
  assert_non_null(strstr(dm, SW_MT_DOCKER_CONFIG));

  sw_image_t *back = xcalloc(1, sizeof(*back));
  sw_error_t err = NULL;
  assert_int_equal(sw_manifest_parse(dm, strlen(dm), back, &err), 0);
  assert_int_equal(back->n_layers, 2);
  assert_string_equal(back->config_digest, D1);
  assert_string_equal(back->layers[1].digest, D3);
  assert_string_equal(back->layers[0].media_type, SW_MT_DOCKER_LAYER_GZIP);
  assert_int_equal(back->layers[1].size, 20);
  assert_int_equal(sw_image_set_config(back, json_deep_copy(img->config), &err), 0);
  assert_string_equal(back->layers[1].diff_id, D2);

  /* diff_ids must match the layer count */
  json_t *bad = sw_config_new("amd64");
  assert_int_equal(sw_image_set_config(back, bad, &err), -1);
  assert_non_null(strstr(err->msg, "diff_ids"));
  sw_error_release(&err);

  /* an index is not a manifest */
  const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
  assert_int_equal(sw_manifest_parse(idx, strlen(idx), back, &err), -1);
  assert_non_null(strstr(err->msg, "index"));
  sw_error_release(&err);
  const char *junk = "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:12\"}}";
  assert_int_equal(sw_manifest_parse(junk, strlen(junk), back, &err), -1);
  sw_error_release(&err);

  sw_image_t *dup = sw_image_dup(img);
  assert_int_equal(dup->n_layers, 2);
  assert_true(json_equal(dup->config, img->config));
  assert_int_equal(sw_image_size(dup), 123 + 10 + 20);
  sw_image_free(dup);
  sw_image_free(back);
  free(m);
  free(dm);
  sw_image_free(img);
}

static void
test_index(void **state)
{
  const char *digests[] = {D1, D2};
  int64_t sizes[] = {5, 6};
  const char *names[] = {"latest", NULL};
  char *s = sw_index_build(digests, sizes, names, 2);
  assert_string_equal(s, "{\"schemaVersion\":2,\"mediaType\":\"" SW_MT_OCI_INDEX
                         "\",\"manifests\":[{\"mediaType\":"
                         "\"" SW_MT_OCI_MANIFEST "\",\"digest\":\"" D1
                         "\",\"size\":5,\"annotations\":{\"" SW_ANNOTATION_REF_NAME
                         "\":\"latest\"}},{\"mediaType\":\"" SW_MT_OCI_MANIFEST "\","
                         "\"digest\":\"" D2 "\",\"size\":6}]}");
  free(s);
  assert_string_equal(sw_media_type_to_oci(SW_MT_DOCKER_LAYER_GZIP), SW_MT_OCI_LAYER_GZIP);
  assert_string_equal(sw_media_type_to_docker(SW_MT_OCI_LAYER), SW_MT_DOCKER_LAYER);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_normalize),
      cmocka_unit_test(test_ref_display),
      cmocka_unit_test(test_config_json_order),
      cmocka_unit_test(test_manifest_roundtrip),
      cmocka_unit_test(test_index),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
