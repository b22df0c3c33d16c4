/* libFuzzer target: image.c on untrusted input (loaded archives, pulled images): manifest
 * parsing, config diff_ids, reference parsing and the deterministic JSON writer. The first byte
 * picks the parser. */
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  sw_error_t err = NULL;
  char *s = xstrndup((const char *)data + 1, size - 1);
  size_t len = strlen(s);
  json_error_t je;

  switch (data[0] % 3) {
  case 0: {
    sw_image_t *img = xcalloc(1, sizeof(*img));
    if (sw_manifest_parse(s, len, img, &err) == 0) {
      json_t *cfg = sw_config_new("amd64");
      for (size_t i = 0; i < img->n_layers && i < 4; i++)
        sw_config_add_diff_id(cfg, img->layers[i].digest);
      if (sw_image_set_config(img, cfg, &err) == 0)
        free(sw_manifest_build(img, true));
    }
    sw_error_release(&err);
    sw_image_free(img);
    break;
  }
  case 1: {
    sw_ref_t *r = NULL;
    if (sw_ref_parse(s, &r, &err) == 0) {
      char *full = sw_ref_string(r), *repo = NULL, *tag = NULL;
      char *again = sw_ref_normalize(full, &err);
      if (again == NULL || strcmp(again, full) != 0)
        __builtin_trap(); /* normalising is idempotent */
      sw_ref_display(full, &repo, &tag);
      free(repo);
      free(tag);
      free(again);
      free(full);
      free(sw_ref_familiar_repository(r));
    }
    sw_error_release(&err);
    sw_ref_free(r);
    break;
  }
  default: {
    json_t *j = json_loadb(s, len, 0, &je);
    if (j) {
      char *a = sw_json_dump(j);
      json_t *k = json_loads(a, 0, &je);
      char *b = k ? sw_json_dump(k) : NULL;
      if (b == NULL || strcmp(a, b) != 0)
        __builtin_trap(); /* dumping is a fixed point */
      (void)sw_config_created(j);
      (void)sw_config_env_get(j, "PATH");
      free(a);
      free(b);
      json_decref(k);
      json_decref(j);
    }
    break;
  }
  }
  free(s);
  return 0;
}
