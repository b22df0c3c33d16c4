/* libFuzzer target: the registry build cache's config JSON (cacheconfig.h), untrusted input
 * read by `build --cache-from`. A parsed config is encoded again, which must succeed (every
 * record it accepts has a layer with a blob digest). */
#include "cacheconfig.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sw_error_t err = NULL;
  sw_cache_entry_t *e = NULL;
  size_t n = 0;
  if (sw_cacheconfig_parse((const char *)data, size, &e, &n, &err) < 0) {
    sw_error_release(&err);
    return 0;
  }
  char *config = NULL, *manifest = NULL;
  if (sw_cacheconfig_encode(e, n, &config, &manifest, &err) < 0)
    __builtin_trap();
  free(config);
  free(manifest);
  free(e);
  return 0;
}
