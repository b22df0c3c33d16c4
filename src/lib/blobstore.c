/* slipway: content-addressed blobs in ROOT/blobs/sha256/<hex>. Every blob is written to a temp
 * file in ROOT/tmp, fsynced, then renamed into place; an existing blob is a hit. Readers never
 * see a partial blob. */
#include "store_internal.h"

#include <fcntl.h>
#include <sys/stat.h>

char *
sw_blob_path(sw_store_t *s, const char *digest)
{
  const char *hex = sw_digest_hex(digest);
  return xasprintf("%s/blobs/sha256/%s", s->root, hex ? hex : "invalid");
}

bool
sw_blob_exists(sw_store_t *s, const char *digest)
{
  if (sw_digest_hex(digest) == NULL)
    return false;
  _cleanup_free_ char *p = sw_blob_path(s, digest);
  return access(p, F_OK) == 0;
}

int
sw_blob_open(sw_store_t *s, const char *digest, int64_t *size_out, sw_error_t *err)
{
  if (sw_digest_hex(digest) == NULL)
    return sw_error(err, 0, "invalid digest `%s`", digest);
  _cleanup_free_ char *p = sw_blob_path(s, digest);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return sw_error(err, errno, "blob %s: open `%s`", digest, p);
  if (size_out) {
    if (fstat(fd, &st) < 0) {
      int e = errno;
      close(fd);
      return sw_error(err, e, "stat `%s`", p);
    }
    *size_out = st.st_size;
  }
  return fd;
}

int
sw_blob_read(sw_store_t *s, const char *digest, size_t max, char **out, size_t *len,
             sw_error_t *err)
{
  if (sw_digest_hex(digest) == NULL)
    return sw_error(err, 0, "invalid digest `%s`", digest);
  _cleanup_free_ char *p = sw_blob_path(s, digest);
  if (sw_read_file(p, max, out, len, err) < 0)
    return sw_error_wrap(err, "blob %s", digest);
  return 0;
}

/* Move tmp into place as digest's blob (fsync first). */
static int
commit_tmp(sw_store_t *s, const char *tmp, int fd, const char *digest, sw_error_t *err)
{
  _cleanup_free_ char *dst = sw_blob_path(s, digest);
  if (access(dst, F_OK) == 0) {
    unlink(tmp);
    return 0;
  }
  if (fd >= 0 ? fsync(fd) < 0 : false) {
    int e = errno;
    unlink(tmp);
    return sw_error(err, e, "fsync `%s`", tmp);
  }
  if (fchmod(fd, 0644) < 0 || rename(tmp, dst) < 0) {
    int e = errno;
    unlink(tmp);
    return sw_error(err, e, "rename `%s` to `%s`", tmp, dst);
  }
  return 0;
}

static int
check_expected(const char *expected, const char *got, const char *what, sw_error_t *err)
{
  if (expected && strcmp(expected, got) != 0)
    return sw_error(err, 0, "%s: digest mismatch: expected %s, got %s", what, expected, got);
  return 0;
}

int
sw_blob_put(sw_store_t *s, const void *data, size_t len, const char *expected, char **digest_out,
            sw_error_t *err)
{
  _cleanup_free_ char *digest = sw_sha256_digest(data, len);
  if (check_expected(expected, digest, "blob", err) < 0)
    return -1;
  if (!sw_blob_exists(s, digest)) {
    _cleanup_free_ char *tmp = NULL;
    _cleanup_close_ int fd = sw_store_mkstemp(s, "blob-", &tmp, err);
    if (fd < 0)
      return -1;
    if (sw_write_all(fd, data, len) < 0) {
      int e = errno;
      unlink(tmp);
      return sw_error(err, e, "write `%s`", tmp);
    }
    if (commit_tmp(s, tmp, fd, digest, err) < 0)
      return -1;
  }
  if (digest_out)
    *digest_out = steal_ptr(&digest);
  return 0;
}

static int
hash_fd(int fd, char *digest, sw_error_t *err)
{
  sw_sha256_t *h = sw_sha256_new();
  char buf[1 << 16], hex[SW_SHA256_HEX_LEN + 1];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      sw_sha256_free(h);
      return sw_error(err, errno, "read");
    }
    sw_sha256_update(h, buf, (size_t)n);
  }
  sw_sha256_final_hex(h, hex);
  snprintf(digest, SW_DIGEST_LEN + 1, "sha256:%s", hex);
  return 0;
}

int
sw_blob_verify(sw_store_t *s, const char *digest, sw_error_t *err)
{
  char got[SW_DIGEST_LEN + 1];
  _cleanup_close_ int fd = sw_blob_open(s, digest, NULL, err);
  if (fd < 0)
    return -1;
  if (hash_fd(fd, got, err) < 0)
    return sw_error_wrap(err, "blob %s", digest);
  if (strcmp(got, digest) != 0)
    return sw_error(err, 0, "blob %s holds data of digest %s", digest, got), 0;
  return 1;
}

int
sw_blob_put_file(sw_store_t *s, const char *tmp_path, const char *expected, char **digest_out,
                 sw_error_t *err)
{
  char digest[SW_DIGEST_LEN + 1];
  _cleanup_close_ int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", tmp_path);
  if (hash_fd(fd, digest, err) < 0 || check_expected(expected, digest, tmp_path, err) < 0) {
    unlink(tmp_path);
    return sw_error_wrap(err, "storing `%s`", tmp_path);
  }
  if (commit_tmp(s, tmp_path, fd, digest, err) < 0)
    return -1;
  if (digest_out)
    *digest_out = xstrdup(digest);
  return 0;
}

int
sw_blob_adopt(sw_store_t *s, const char *tmp_path, const char *digest, sw_error_t *err)
{
  if (sw_digest_hex(digest) == NULL) {
    unlink(tmp_path);
    return sw_error(err, 0, "invalid digest `%s`", digest);
  }
  _cleanup_close_ int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", tmp_path);
  return commit_tmp(s, tmp_path, fd, digest, err);
}

/* ---- streaming writer ---- */

struct sw_blob_writer_s {
  sw_store_t *s;
  char *tmp;
  int fd;
  sw_sha256_t *h;
};

sw_blob_writer_t *
sw_blob_writer_new(sw_store_t *s, sw_error_t *err)
{
  sw_blob_writer_t *w = xcalloc(1, sizeof(*w));
  w->s = s;
  w->fd = sw_store_mkstemp(s, "blob-", &w->tmp, err);
  if (w->fd < 0) {
    free(w);
    return NULL;
  }
  w->h = sw_sha256_new();
  return w;
}

int
sw_blob_writer_write(sw_blob_writer_t *w, const void *data, size_t len, sw_error_t *err)
{
  if (sw_write_all(w->fd, data, len) < 0)
    return sw_error(err, errno, "write `%s`", w->tmp);
  sw_sha256_update(w->h, data, len);
  return 0;
}

int
sw_blob_writer_commit(sw_blob_writer_t *w, const char *expected, char **digest_out, sw_error_t *err)
{
  char hex[SW_SHA256_HEX_LEN + 1], digest[SW_DIGEST_LEN + 1];
  sw_sha256_final_hex(w->h, hex);
  w->h = NULL;
  snprintf(digest, sizeof(digest), "sha256:%s", hex);
  int r = check_expected(expected, digest, "blob", err);
  if (r == 0)
    r = commit_tmp(w->s, w->tmp, w->fd, digest, err);
  else
    unlink(w->tmp);
  if (r == 0 && digest_out)
    *digest_out = xstrdup(digest);
  free(w->tmp);
  w->tmp = NULL;
  sw_blob_writer_free(w);
  return r;
}

void
sw_blob_writer_free(sw_blob_writer_t *w)
{
  if (w == NULL)
    return;
  if (w->tmp)
    unlink(w->tmp);
  if (w->fd >= 0)
    close(w->fd);
  sw_sha256_free(w->h);
  free(w->tmp);
  free(w);
}
