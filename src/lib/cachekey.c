/* slipway: step cache keys and Merkle content hashes; see cachekey.h. */
#include "cachekey.h"

#include <sys/stat.h>

/* Bump when the encoding changes, so old records stop matching instead of lying. */
#define KEY_VERSION "slipway-cachekey-v2"

struct sw_keyhash {
  sw_sha256_t *h;
};

static void
put_u64(sw_sha256_t *h, uint64_t v)
{
  unsigned char b[8];
  for (int i = 7; i >= 0; i--) {
    b[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
  sw_sha256_update(h, b, sizeof(b));
}

/* Tag byte, then big-endian length, then the bytes: no two field lists encode alike. */
static void
put_str(sw_sha256_t *h, const char *s)
{
  if (s == NULL) {
    sw_sha256_update(h, "N", 1);
    return;
  }
  size_t n = strlen(s);
  sw_sha256_update(h, "S", 1);
  put_u64(h, n);
  sw_sha256_update(h, s, n);
}

static void
put_strv(sw_sha256_t *h, char *const *v)
{
  size_t n = sw_strv_len(v);
  sw_sha256_update(h, "V", 1);
  put_u64(h, n);
  for (size_t i = 0; i < n; i++)
    put_str(h, v[i]);
}

sw_keyhash_t *
sw_keyhash_new(const char *domain)
{
  sw_keyhash_t *k = xcalloc(1, sizeof(*k));
  k->h = sw_sha256_new();
  put_str(k->h, KEY_VERSION);
  put_str(k->h, domain);
  return k;
}

void
sw_keyhash_str(sw_keyhash_t *k, const char *s)
{
  put_str(k->h, s);
}

void
sw_keyhash_strv(sw_keyhash_t *k, char *const *v)
{
  put_strv(k->h, v);
}

void
sw_keyhash_u64(sw_keyhash_t *k, uint64_t v)
{
  sw_sha256_update(k->h, "U", 1);
  put_u64(k->h, v);
}

void
sw_keyhash_finish(sw_keyhash_t *k, char out[SW_KEY_SIZE])
{
  char hex[SW_SHA256_HEX_LEN + 1];
  sw_sha256_final_hex(k->h, hex);
  snprintf(out, SW_KEY_SIZE, "sha256:%s", hex);
  free(k);
}

static int
cmp_env_key(const void *a, const void *b)
{
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  size_t lx = strcspn(x, "="), ly = strcspn(y, "=");
  int c = strncmp(x, y, lx < ly ? lx : ly);
  if (c)
    return c;
  if (lx != ly)
    return lx < ly ? -1 : 1;
  return strcmp(x, y);
}

void
sw_cachekey_step(const sw_cachekey_input_t *in, char out[SW_KEY_SIZE])
{
  sw_keyhash_t *k = sw_keyhash_new("step");
  size_t n = sw_strv_len(in->env);
  char **env = xcalloc(n + 1, sizeof(char *));

  for (size_t i = 0; i < n; i++)
    env[i] = in->env[i];
  qsort(env, n, sizeof(char *), cmp_env_key);

  sw_keyhash_str(k, in->parent);
  sw_keyhash_str(k, in->instruction);
  sw_keyhash_strv(k, in->args);
  sw_keyhash_strv(k, env);
  sw_keyhash_str(k, in->user);
  sw_keyhash_str(k, in->workdir);
  sw_keyhash_strv(k, in->shell);
  sw_keyhash_strv(k, in->flags);
  sw_keyhash_str(k, in->content);
  sw_keyhash_str(k, in->platform);
  free(env);
  sw_keyhash_finish(k, out);
}

void
sw_cachekey_base(const char *image_id, const char *platform, char out[SW_KEY_SIZE])
{
  sw_keyhash_t *k = sw_keyhash_new(image_id ? "from-image" : "from-scratch");
  sw_keyhash_str(k, image_id);
  sw_keyhash_str(k, platform);
  sw_keyhash_finish(k, out);
}

/* ---- content nodes ---- */

void
sw_content_file(mode_t mode, uint64_t size, const char *bytes_hex, char out[SW_HASH_HEX_SIZE])
{
  sw_sha256_t *h = sw_sha256_new();
  sw_sha256_update(h, "file", 4);
  put_u64(h, (uint64_t)(mode & 07777));
  put_u64(h, size);
  put_str(h, bytes_hex);
  sw_sha256_final_hex(h, out);
}

void
sw_content_symlink(const char *target, char out[SW_HASH_HEX_SIZE])
{
  sw_sha256_t *h = sw_sha256_new();
  sw_sha256_update(h, "link", 4);
  put_str(h, target);
  sw_sha256_final_hex(h, out);
}

void
sw_content_special(mode_t mode, dev_t rdev, char out[SW_HASH_HEX_SIZE])
{
  sw_sha256_t *h = sw_sha256_new();
  sw_sha256_update(h, "spec", 4);
  put_u64(h, (uint64_t)(mode & (S_IFMT | 07777)));
  put_u64(h, S_ISCHR(mode) || S_ISBLK(mode) ? (uint64_t)rdev : 0);
  sw_sha256_final_hex(h, out);
}

void
sw_content_owned(const char *node_hex, uid_t uid, gid_t gid, char out[SW_HASH_HEX_SIZE])
{
  sw_sha256_t *h = sw_sha256_new();
  sw_sha256_update(h, "ownd", 4);
  put_u64(h, (uint64_t)uid);
  put_u64(h, (uint64_t)gid);
  put_str(h, node_hex);
  sw_sha256_final_hex(h, out);
}

struct sw_content_dir {
  sw_sha256_t *h;
};

sw_content_dir_t *
sw_content_dir_new(mode_t mode)
{
  sw_content_dir_t *d = xcalloc(1, sizeof(*d));
  d->h = sw_sha256_new();
  sw_sha256_update(d->h, "dir ", 4);
  put_u64(d->h, (uint64_t)(mode & 07777));
  return d;
}

void
sw_content_dir_add(sw_content_dir_t *d, const char *name, const char *child_hex)
{
  put_str(d->h, name);
  put_str(d->h, child_hex);
}

void
sw_content_dir_finish(sw_content_dir_t *d, char out[SW_HASH_HEX_SIZE])
{
  sw_sha256_update(d->h, "end", 3);
  sw_sha256_final_hex(d->h, out);
  free(d);
}
