/* Unit tests for image indexes in the store (store_index.c): commit from recorded images (the
 * blob lists each with its config's platform), lookup by name / digest / short digest, the
 * host's entry through sw_image_get, a platform's through sw_image_get_platform (and the error
 * listing the platforms), a stored blob recorded as is (digest kept), names moving between
 * images and indexes, rmi and prune keeping an index's images. Each test has a fresh store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store.h"

typedef struct {
  char root[64];
  sw_store_t *s;
} fx_t;

static void
ok(int r, sw_error_t *err)
{
  if (r < 0)
    fail_msg("%s", *err ? (*err)->msg : "failed");
}

static int
setup(void **state)
{
  fx_t *f = xcalloc(1, sizeof(*f));
  sw_error_t err = NULL;
  snprintf(f->root, sizeof(f->root), "/tmp/sw-index-test-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  ok(sw_store_open(f->root, &f->s, &err), &err);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_store_free(f->s);
  sw_rm_rf(f->root, &err);
  free(f);
  return 0;
}

/* An image with one layer holding content, for arch (variant may be NULL), named name. */
static sw_image_t *
commit_image(fx_t *f, const char *content, const char *arch, const char *variant, const char *name)
{
  sw_error_t err = NULL;
  sw_layer_desc_t l;
  _cleanup_free_ char *dir = sw_store_mkdtemp(f->s, "test-", &err);
  assert_non_null(dir);
  _cleanup_free_ char *file = xasprintf("%s/f.txt", dir);
  ok(sw_write_file_atomic(file, content, strlen(content), 0644, &err), &err);
  ok(sw_layer_commit_dir(f->s, dir, NULL, &l, &err), &err);
  sw_image_t *img = sw_image_new();
  json_object_set_new(img->config, "architecture", json_string(arch));
  if (variant)
    json_object_set_new(img->config, "variant", json_string(variant));
  sw_config_set_created(img->config, 1700000000);
  sw_image_add_layer(img, &l);
  char *names[] = {(char *)name, NULL};
  ok(sw_image_commit(f->s, img, name ? names : NULL, &err), &err);
  return img;
}

static const char *
other_arch(void)
{
  return strcmp(sw_host_arch(), "arm64") == 0 ? "amd64" : "arm64";
}

static void
test_commit_get(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *host = commit_image(f, "h", sw_host_arch(), NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *arm =
      commit_image(f, "a", other_arch(), strcmp(other_arch(), "arm64") == 0 ? "v8" : NULL, NULL);
  char *ms[] = {host->manifest_digest, arm->manifest_digest, NULL};
  char *names[] = {"app:1", NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  ok(sw_index_commit(f->s, ms, names, &idx, &err), &err);
  assert_int_equal(idx->n_entries, 2);
  assert_string_equal(idx->entries[0].manifest_digest, host->manifest_digest);
  assert_string_equal(idx->entries[0].platform, sw_host_platform());
  assert_int_equal(idx->entries[1].manifest_size, arm->manifest_size);
  assert_string_equal(idx->names[0], "docker.io/library/app:1");
  assert_int_equal(idx->created, 1700000000);

  /* the blob is an OCI index of both manifests with their platforms */
  _cleanup_free_ char *text = NULL;
  size_t len;
  ok(sw_blob_read(f->s, idx->digest, 0, &text, &len, &err), &err);
  assert_int_equal((int64_t)len, idx->size);
  json_t *j = json_loadb(text, len, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "mediaType")), SW_MT_OCI_INDEX);
  json_t *m1 = json_array_get(json_object_get(j, "manifests"), 1);
  assert_string_equal(json_string_value(json_object_get(m1, "digest")), arm->manifest_digest);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(m1, "platform"), "architecture")),
      other_arch());
  json_decref(j);

  /* the same images give the same index (content-addressed) */
  _cleanup_(sw_index_freep) sw_index_t *again = NULL;
  ok(sw_index_commit(f->s, ms, NULL, &again, &err), &err);
  assert_string_equal(again->digest, idx->digest);
  assert_int_equal(sw_strv_len(again->names), 1);

  const char *refs[] = {"app:1", "docker.io/library/app:1", idx->digest, idx->digest + 7};
  for (size_t i = 0; i < SW_ARRAY_SIZE(refs); i++) {
    _cleanup_(sw_index_freep) sw_index_t *got = NULL;
    assert_int_equal(sw_index_get(f->s, refs[i], &got, &err), 1);
    assert_string_equal(got->digest, idx->digest);
    assert_int_equal(got->n_entries, 2);
    assert_string_equal(got->entries[1].platform, idx->entries[1].platform);
  }
  _cleanup_free_ char *shortid = xstrndup(idx->digest + 7, 12);
  assert_int_equal(sw_index_get(f->s, shortid, NULL, &err), 1);
  assert_int_equal(sw_index_get(f->s, "app:2", NULL, &err), 0);
  assert_int_equal(sw_index_get(f->s, host->config_digest, NULL, &err), 0);

  /* sw_image_get of the index's name: the host's image; by platform: the other one */
  _cleanup_(sw_image_freep) sw_image_t *got = NULL, *got2 = NULL, *got3 = NULL;
  assert_int_equal(sw_image_get(f->s, "app:1", &got, &err), 1);
  assert_string_equal(got->manifest_digest, host->manifest_digest);
  _cleanup_free_ char *plat = xasprintf("linux/%s", other_arch());
  assert_int_equal(sw_image_get_platform(f->s, "app:1", plat, &got2, &err), 1);
  assert_string_equal(got2->manifest_digest, arm->manifest_digest);
  assert_int_equal(sw_image_get_platform(f->s, "app:1", "linux/s390x", &got3, &err), -1);
  assert_non_null(strstr(err->msg, "linux/s390x"));
  assert_non_null(strstr(err->msg, sw_host_platform()));
  assert_non_null(strstr(err->msg, "--platform"));
  sw_error_release(&err);
  /* an image's ref gives the image, whatever the platform */
  sw_image_free(steal_ptr(&got3));
  assert_int_equal(sw_image_get_platform(f->s, host->manifest_digest, "linux/s390x", &got3, &err),
                   1);

  /* one image per platform */
  char *dup[] = {host->manifest_digest, host->manifest_digest, NULL};
  assert_int_equal(sw_index_commit(f->s, dup, NULL, NULL, &err), -1);
  assert_non_null(strstr(err->msg, "one per platform"));
  sw_error_release(&err);
  /* entries must be images of the store */
  char *missing[] = {"sha256:1111111111111111111111111111111111111111111111111111111111111111",
                     NULL};
  assert_int_equal(sw_index_commit(f->s, missing, NULL, NULL, &err), -1);
  assert_non_null(strstr(err->msg, "sha256:1111"));
  sw_error_release(&err);
}

static void
test_platform_match(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *arm = commit_image(f, "a", "arm64", NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *v7 = commit_image(f, "b", "arm", "v7", NULL);
  char *ms[] = {arm->manifest_digest, v7->manifest_digest, NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  ok(sw_index_commit(f->s, ms, NULL, &idx, &err), &err);
  assert_string_equal(idx->entries[1].platform, "linux/arm/v7");
  const sw_index_entry_t *e = sw_index_entry_for(idx, "linux/arm64/v8", &err);
  assert_non_null(e); /* arm64 = arm64/v8 */
  assert_ptr_equal(e, &idx->entries[0]);
  e = sw_index_entry_for(idx, "linux/aarch64", &err);
  assert_ptr_equal(e, &idx->entries[0]);
  e = sw_index_entry_for(idx, "linux/arm", &err); /* any arm variant */
  assert_ptr_equal(e, &idx->entries[1]);
  assert_null(sw_index_entry_for(idx, "linux/arm/v6", &err));
  assert_non_null(strstr(err->msg, "linux/arm64, linux/arm/v7"));
  sw_error_release(&err);
}

static void
test_commit_blob(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *a = commit_image(f, "a", "amd64", NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *b = commit_image(f, "b", "arm64", NULL, NULL);
  /* an index as a registry serves it: another key order, an attestation manifest */
  _cleanup_free_ char *text = xasprintf(
      "{\"manifests\":[{\"digest\":\"%s\",\"size\":%lld,\"mediaType\":\"%s\","
      "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
      "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld,"
      "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
      "{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":1,"
      "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}],"
      "\"schemaVersion\":2,\"mediaType\":\"%s\"}",
      a->manifest_digest, (long long)a->manifest_size, SW_MT_OCI_MANIFEST, SW_MT_OCI_MANIFEST,
      b->manifest_digest, (long long)b->manifest_size, SW_MT_OCI_MANIFEST, 7, SW_MT_OCI_INDEX);
  _cleanup_free_ char *d = NULL;
  ok(sw_blob_put(f->s, text, strlen(text), NULL, &d, &err), &err);
  char *names[] = {"localhost:5000/multi:v1", NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  ok(sw_index_commit_blob(f->s, d, names, &idx, &err), &err);
  assert_string_equal(idx->digest, d);
  assert_int_equal(idx->n_entries, 2);
  assert_string_equal(idx->entries[1].platform, "linux/arm64"); /* normalised */
  _cleanup_(sw_image_freep) sw_image_t *got = NULL;
  assert_int_equal(
      sw_image_get_platform(f->s, "localhost:5000/multi:v1", "linux/arm64", &got, &err), 1);
  assert_string_equal(got->manifest_digest, b->manifest_digest);

  /* an entry that is not an image of the store is refused, naming it */
  _cleanup_free_ char *bad =
      xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
                "\"digest\":\"sha256:%064d\",\"size\":3,\"platform\":{\"os\":\"linux\","
                "\"architecture\":\"amd64\"}}]}",
                SW_MT_OCI_INDEX, SW_MT_OCI_MANIFEST, 42);
  _cleanup_free_ char *bd = NULL;
  ok(sw_blob_put(f->s, bad, strlen(bad), NULL, &bd, &err), &err);
  assert_int_equal(sw_index_commit_blob(f->s, bd, NULL, NULL, &err), -1);
  assert_non_null(strstr(err->msg, "entry 0"));
  assert_non_null(strstr(err->msg, "not an image of the store"));
  sw_error_release(&err);
  assert_int_equal(sw_index_get(f->s, bd, NULL, &err), 0);
  /* an image manifest is not an index */
  assert_int_equal(sw_index_commit_blob(f->s, a->manifest_digest, NULL, NULL, &err), -1);
  sw_error_release(&err);
}

static void
test_names_rmi_prune(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *a = commit_image(f, "a", "amd64", NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *b = commit_image(f, "b", "arm64", NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *c = commit_image(f, "c", "amd64", NULL, "app");
  char *ms[] = {a->manifest_digest, b->manifest_digest, NULL};
  char *names[] = {"app", NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  /* the index takes the name from image c */
  ok(sw_index_commit(f->s, ms, names, &idx, &err), &err);
  _cleanup_(sw_image_freep) sw_image_t *cc = NULL;
  assert_int_equal(sw_image_get(f->s, c->manifest_digest, &cc, &err), 1);
  assert_int_equal(sw_strv_len(cc->names), 0);
  /* tag of the index name tags the index; an image taking a name takes it from the index */
  ok(sw_image_tag(f->s, "app", "app:two", &err), &err);
  _cleanup_(sw_index_freep) sw_index_t *got = NULL;
  assert_int_equal(sw_index_get(f->s, "app:two", &got, &err), 1);
  assert_int_equal(sw_strv_len(got->names), 2);
  ok(sw_image_tag(f->s, c->manifest_digest, "app:two", &err), &err);
  assert_int_equal(sw_index_get(f->s, "app:two", NULL, &err), 0);
  ok(sw_image_tag(f->s, "app", "app:three", &err), &err);

  /* an image an index lists is not removed by rmi (the error names the index) nor by prune */
  bool deleted = true;
  char **untagged = NULL;
  assert_int_equal(
      sw_image_delete(f->s, a->manifest_digest, false, NULL, &untagged, &deleted, &err), -1);
  assert_non_null(strstr(err->msg, "image index"));
  sw_error_release(&err);
  sw_prune_opts_t o = {.all = true};
  sw_prune_report_t rep = {0};
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  sw_strv_free(rep.leftovers);
  assert_int_equal(rep.images, 0);
  assert_true(sw_blob_exists(f->s, idx->digest));
  _cleanup_(sw_image_freep) sw_image_t *still = NULL;
  assert_int_equal(sw_image_get(f->s, b->manifest_digest, &still, &err), 1);

  /* rmi of one of two names untags; of the last removes the index and its images */
  ok(sw_image_delete(f->s, "app", false, NULL, &untagged, &deleted, &err), &err);
  assert_false(deleted);
  sw_strv_free(untagged);
  assert_int_equal(sw_index_get(f->s, idx->digest, NULL, &err), 1);
  ok(sw_image_delete(f->s, "app:three", false, NULL, &untagged, &deleted, &err), &err);
  assert_true(deleted);
  sw_strv_free(untagged);
  assert_int_equal(sw_index_get(f->s, idx->digest, NULL, &err), 0);
  _cleanup_(sw_image_freep) sw_image_t *gone = NULL;
  assert_int_equal(sw_image_get(f->s, a->manifest_digest, &gone, &err), 0);
  assert_int_equal(sw_image_get(f->s, b->manifest_digest, &gone, &err), 0);
  rep = (sw_prune_report_t){0};
  ok(sw_store_prune(f->s, &(sw_prune_opts_t){0}, &rep, &err), &err);
  sw_strv_free(rep.leftovers);
  assert_false(sw_blob_exists(f->s, idx->digest));
  assert_false(sw_blob_exists(f->s, a->manifest_digest));
  assert_true(sw_blob_exists(f->s, c->manifest_digest));
}

/* prune -a drops an index without names, then its images */
static void
test_prune_dangling(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *a = commit_image(f, "a", "amd64", NULL, NULL);
  char *ms[] = {a->manifest_digest, NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  ok(sw_index_commit(f->s, ms, NULL, &idx, &err), &err);
  sw_index_t **v = NULL;
  size_t n = 0;
  ok(sw_index_list(f->s, &v, &n, &err), &err);
  assert_int_equal(n, 1);
  sw_index_list_free(v, n);
  sw_prune_opts_t o = {.all = true};
  sw_prune_report_t rep = {0};
  ok(sw_store_prune(f->s, &o, &rep, &err), &err);
  sw_strv_free(rep.leftovers);
  assert_int_equal(rep.images, 2);
  assert_int_equal(sw_index_get(f->s, idx->digest, NULL, &err), 0);
  assert_false(sw_blob_exists(f->s, idx->digest));
}

/* A name that looks like a digest prefix names its image, not an index with that prefix. */
static void
test_names_before_prefixes(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *a = commit_image(f, "a", "amd64", NULL, NULL);
  char *ms[] = {a->manifest_digest, NULL};
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  ok(sw_index_commit(f->s, ms, NULL, &idx, &err), &err);
  _cleanup_free_ char *prefix = xstrndup(idx->digest + 7, 6);
  assert_int_equal(sw_index_get(f->s, prefix, NULL, &err), 1); /* no such name: the prefix */
  _cleanup_(sw_image_freep) sw_image_t *b = commit_image(f, "b", "amd64", NULL, prefix);
  assert_int_equal(sw_index_get(f->s, prefix, NULL, &err), 0);
  _cleanup_(sw_image_freep) sw_image_t *got = NULL;
  assert_int_equal(sw_image_get_platform(f->s, prefix, "linux/amd64", &got, &err), 1);
  assert_string_equal(got->manifest_digest, b->manifest_digest);
  /* the full digest, with or without sha256: */
  assert_int_equal(sw_index_get(f->s, idx->digest + 7, NULL, &err), 1);
}

/* The image of the platform a name holds (manifest digest), through the index or the image. */
static char *
held(fx_t *f, const char *name, const char *platform)
{
  sw_error_t err = NULL;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  if (sw_image_get_platform(f->s, name, platform, &img, &err) != 1) {
    sw_error_release(&err);
    return NULL;
  }
  return xstrdup(img->manifest_digest);
}

static void
test_name_platform(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  const char *name = "docker.io/library/base:1";
  _cleanup_free_ char *other = xasprintf("linux/%s", other_arch());
  const char *host = sw_host_platform();
  _cleanup_(sw_image_freep) sw_image_t *h1 = commit_image(f, "h1", sw_host_arch(), NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *h2 = commit_image(f, "h2", sw_host_arch(), NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *o1 = commit_image(f, "o1", other_arch(), NULL, NULL);
  _cleanup_(sw_image_freep) sw_image_t *o2 = commit_image(f, "o2", other_arch(), NULL, NULL);

  /* A free name: the image takes it. */
  ok(sw_index_name_platform(f->s, name, h1->config_digest, host, &err), &err);
  assert_int_equal(sw_index_get(f->s, name, NULL, &err), 0);
  _cleanup_free_ char *a = held(f, name, host);
  assert_string_equal(a, h1->manifest_digest);
  /* The same platform again: replaced, still a plain image. */
  ok(sw_index_name_platform(f->s, name, h2->config_digest, host, &err), &err);
  assert_int_equal(sw_index_get(f->s, name, NULL, &err), 0);
  _cleanup_free_ char *b = held(f, name, host);
  assert_string_equal(b, h2->manifest_digest);
  /* Another platform: an index of both; each platform finds its own. */
  ok(sw_index_name_platform(f->s, name, o1->config_digest, other, &err), &err);
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  assert_int_equal(sw_index_get(f->s, name, &idx, &err), 1);
  assert_int_equal(idx->n_entries, 2);
  _cleanup_free_ char *c = held(f, name, host);
  _cleanup_free_ char *d = held(f, name, other);
  assert_string_equal(c, h2->manifest_digest);
  assert_string_equal(d, o1->manifest_digest);
  /* A platform of the index again: its entry replaced, the other kept. */
  ok(sw_index_name_platform(f->s, name, o2->config_digest, other, &err), &err);
  _cleanup_free_ char *e = held(f, name, other);
  _cleanup_free_ char *g = held(f, name, host);
  assert_string_equal(e, o2->manifest_digest);
  assert_string_equal(g, h2->manifest_digest);
  /* The replaced image is still stored, by its ID, under no name. */
  _cleanup_(sw_image_freep) sw_image_t *gone = NULL;
  assert_int_equal(sw_image_get(f->s, o1->config_digest, &gone, &err), 1);
  assert_true(gone->names == NULL || gone->names[0] == NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_commit_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_platform_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_blob, setup, teardown),
      cmocka_unit_test_setup_teardown(test_names_rmi_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prune_dangling, setup, teardown),
      cmocka_unit_test_setup_teardown(test_names_before_prefixes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_platform, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
