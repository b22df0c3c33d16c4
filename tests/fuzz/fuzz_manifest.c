/* libFuzzer target: everything a registry sends that the client parses: manifests and indexes
 * (with platform selection), image configs, WWW-Authenticate challenges and Retry-After values,
 * error bodies, and docker config.json entries. The first byte picks the parser. */
#include "registry-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  sw_error_t err = NULL;
  char *s = xstrndup((const char *)data + 1, size - 1);
  size_t len = strlen(s);

  switch (data[0] % 5) {
  case 0: {
    sw_rmanifest_t *m = NULL;
    if (sw_rmanifest_parse(s, len, "application/vnd.oci.image.manifest.v1+json", &m, &err) == 0) {
      sw_platform_t p;
      if (m->kind == SW_MANIFEST_INDEX && sw_platform_parse(NULL, &p, &err) == 0)
        sw_index_select(m, &p, &err);
      for (size_t i = 0; i < m->n_layers; i++)
        sw_layer_media_comp(m->layers[i].media_type);
      sw_rmanifest_free(m);
    }
    break;
  }
  case 1: { /* response headers */
    sw_auth_challenge_t c = {0};
    if (sw_auth_challenge_parse(s, &c, &err) == 0)
      sw_auth_challenge_clear(&c);
    if (sw_retry_after_ms(s, 784111777) > SW_RETRY_AFTER_MAX_MS)
      abort(); /* the cap is what keeps a hostile registry from parking a pull */
    break;
  }
  case 2: {
    char **ids = NULL;
    if (sw_config_diff_ids(s, len, &ids, &err) == 0)
      sw_strv_free(ids);
    free(sw_registry_error_body(s, len));
    break;
  }
  case 3: {
    char *u = NULL, *p = NULL;
    if (sw_docker_config_lookup(s, "localhost:5000", &u, &p, &err) == 1) {
      free(u);
      free(p);
    }
    break;
  }
  case 4: {
    sw_platform_t p;
    sw_platform_parse(s, &p, &err);
    sw_registry_is_insecure(s, NULL);
    break;
  }
  }
  sw_error_release(&err);
  free(s);
  return 0;
}
