/* libFuzzer target: apply arbitrary bytes (plain, gzip or zstd tar) as a layer into a fresh temp
 * directory, in both target modes. It may fail, never crash, and never write outside: the temp
 * dir's parent holds only the target and an empty decoy, checked after every input. */
#include "layer_apply.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static char *base;

static void
check_contained(void)
{
  DIR *d = opendir(base);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    abort();
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      if (strcmp(de->d_name, "root") && strcmp(de->d_name, "decoy"))
        abort(); /* something escaped the target */
      n++;
    }
  closedir(d);
  _cleanup_free_ char *decoy = xasprintf("%s/decoy", base);
  d = opendir(decoy);
  if (d == NULL)
    abort();
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      abort();
  closedir(d);
  if (n != 2 || access("/tmp/evil", F_OK) == 0)
    abort();
}

static void
cleanup(void)
{
  sw_error_t err = NULL;
  if (base && sw_rm_rf(base, &err) < 0)
    sw_error_release(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (base == NULL) {
    base = xstrdup("/tmp/sw-fuzz-layer-XXXXXX");
    if (mkdtemp(base) == NULL)
      abort();
    _cleanup_free_ char *decoy = xasprintf("%s/decoy", base);
    mkdir(decoy, 0755);
    atexit(cleanup);
  }
  _cleanup_free_ char *root = xasprintf("%s/root", base);
  int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0 || sw_write_all(fd, data, size) < 0)
    abort();
  for (int mode = 0; mode < 2; mode++) {
    sw_error_t err = NULL;
    if (mkdir(root, 0755) < 0)
      abort();
    lseek(fd, 0, SEEK_SET);
    sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
    o.mode = mode ? SW_APPLY_FLAT : SW_APPLY_SNAPSHOT;
    if (sw_layer_apply(fd, root, &o, NULL, &err) < 0)
      sw_error_release(&err);
    check_contained();
    if (sw_rm_rf(root, &err) < 0)
      abort();
  }
  close(fd);
  return 0;
}
