/* libFuzzer target: the checks an image index passes before any of its entries is fetched or
 * read: a pulled or pushed index (sw_index_check, after the registry manifest parser) and an
 * index blob of a loaded archive (sw_archive_index_check). The first byte picks the door. */
#include "image_archive.h"
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

  if (data[0] % 2 == 0) {
    sw_rmanifest_t *m = NULL;
    if (sw_rmanifest_parse(s, len, SW_MT_OCI_INDEX, &m, &err) == 0) {
      if (m->kind == SW_MANIFEST_INDEX && sw_index_check(m, &err) == 0) {
        size_t images = 0;
        for (size_t i = 0; i < m->n_manifests; i++)
          images += !sw_desc_is_attestation(&m->manifests[i]);
        /* what the check lets through is what pull and push walk: bounded, flat */
        if (m->n_manifests > SW_INDEX_MAX_ENTRIES || images == 0)
          abort();
      }
      sw_rmanifest_free(m);
    }
  } else {
    sw_archive_index_check(s, len, &err);
  }
  sw_error_release(&err);
  free(s);
  return 0;
}
