/* slipway: shared helpers; see util.h. */
#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_*: see sw_sha256_new */
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

int sw_verbose;

/* ---- allocation ---- */

static void
oom(void)
{
  fputs("slipway: out of memory\n", stderr);
  abort();
}

void *
xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

void *
xcalloc(size_t nmemb, size_t n)
{
  void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

void *
xrealloc(void *p, size_t n)
{
  p = realloc(p, n ? n : 1);
  if (p == NULL)
    oom();
  return p;
}

char *
xstrdup(const char *s)
{
  char *p = strdup(s ? s : "");
  if (p == NULL)
    oom();
  return p;
}

char *
xstrndup(const char *s, size_t n)
{
  char *p = strndup(s, n);
  if (p == NULL)
    oom();
  return p;
}

char *
xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *p;

  va_start(ap, fmt);
  if (vasprintf(&p, fmt, ap) < 0)
    oom();
  va_end(ap);
  return p;
}

/* ---- buffers ---- */

void
sw_buf_reserve(sw_buf_t *b, size_t extra)
{
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void
sw_buf_append(sw_buf_t *b, const void *p, size_t n)
{
  sw_buf_reserve(b, n);
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void
sw_buf_puts(sw_buf_t *b, const char *s)
{
  sw_buf_append(b, s, strlen(s));
}

void
sw_buf_putc(sw_buf_t *b, char c)
{
  sw_buf_append(b, &c, 1);
}

void
sw_buf_printf(sw_buf_t *b, const char *fmt, ...)
{
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  sw_buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

char *
sw_buf_steal(sw_buf_t *b)
{
  char *r = b->data ? b->data : xstrdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return r;
}

void
sw_buf_free(sw_buf_t *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- string vectors ---- */

void
sw_strv_free(char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

size_t
sw_strv_len(char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void
sw_strv_push_take(char ***v, char *s)
{
  size_t n = sw_strv_len(*v);
  *v = xrealloc(*v, (n + 2) * sizeof(char *));
  (*v)[n] = s;
  (*v)[n + 1] = NULL;
}

void
sw_strv_push(char ***v, const char *s)
{
  sw_strv_push_take(v, xstrdup(s));
}

char **
sw_strv_dup(char *const *v)
{
  size_t n = sw_strv_len(v);
  char **r = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    r[i] = xstrdup(v[i]);
  return r;
}

bool
sw_strv_contains(char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

static ssize_t
env_find(char *const *v, const char *key)
{
  size_t klen = strlen(key);
  for (size_t i = 0; v && v[i]; i++)
    if (strncmp(v[i], key, klen) == 0 && v[i][klen] == '=')
      return (ssize_t)i;
  return -1;
}

void
sw_env_set(char ***v, const char *key, const char *value)
{
  ssize_t i = env_find(*v, key);
  char *kv = xasprintf("%s=%s", key, value);
  if (i >= 0) {
    free((*v)[i]);
    (*v)[i] = kv;
  } else {
    sw_strv_push_take(v, kv);
  }
}

const char *
sw_env_get(char *const *v, const char *key)
{
  ssize_t i = env_find(v, key);
  return i >= 0 ? v[i] + strlen(key) + 1 : NULL;
}

/* ---- hardlink tables ---- */

static size_t
inode_hash(dev_t dev, ino_t ino, uint64_t group, size_t cap)
{
  uint64_t h =
      (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev ^ group * 0xc2b2ae3d27d4eb4fULL;
  return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

const char *
sw_inomap_lookup_or_add(sw_inomap_t *m, dev_t dev, ino_t ino, uint64_t group, const char *path)
{
  if (m->n * 2 >= m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    sw_inode_slot_t *n = xcalloc(cap, sizeof(*n));
    for (size_t i = 0; i < m->cap; i++) {
      sw_inode_slot_t *o = &m->slots[i];
      if (o->path == NULL)
        continue;
      size_t j = inode_hash(o->dev, o->ino, o->group, cap);
      while (n[j].path)
        j = (j + 1) & (cap - 1);
      n[j] = *o;
    }
    free(m->slots);
    m->slots = n;
    m->cap = cap;
  }
  size_t j = inode_hash(dev, ino, group, m->cap);
  for (; m->slots[j].path; j = (j + 1) & (m->cap - 1))
    if (m->slots[j].dev == dev && m->slots[j].ino == ino && m->slots[j].group == group)
      return m->slots[j].path;
  m->slots[j] = (sw_inode_slot_t){dev, ino, group, xstrdup(path)};
  m->n++;
  return NULL;
}

void
sw_inomap_clear(sw_inomap_t *m)
{
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].path);
  free(m->slots);
  *m = (sw_inomap_t){0};
}

/* ---- strings ---- */

bool
sw_str_has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
sw_str_has_suffix(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int
sw_parse_size(const char *s, uint64_t *out, sw_error_t *err)
{
  char *end = NULL;
  double v;
  uint64_t mult = 1;

  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || v < 0)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "invalid size `%s`", s);
  while (*end == ' ')
    end++;
  struct {
    const char *suffix;
    uint64_t mult;
  } units[] = {{"", 1},
               {"b", 1},
               {"k", 1000},
               {"kb", 1000},
               {"kib", 1024},
               {"m", 1000000},
               {"mb", 1000000},
               {"mib", 1048576},
               {"g", 1000000000},
               {"gb", 1000000000},
               {"gib", 1073741824ULL},
               {"t", 1000000000000ULL},
               {"tb", 1000000000000ULL},
               {"tib", 1099511627776ULL}};
  size_t i;
  for (i = 0; i < SW_ARRAY_SIZE(units); i++)
    if (strcasecmp(end, units[i].suffix) == 0) {
      mult = units[i].mult;
      break;
    }
  if (i == SW_ARRAY_SIZE(units))
    return sw_error_code(err, SW_EXIT_USAGE, 0, "invalid size `%s`: unknown unit `%s`", s, end);
  *out = (uint64_t)(v * (double)mult);
  return 0;
}

void
sw_format_size(uint64_t n, char *out, size_t outlen)
{
  const char *units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = (double)n;
  size_t u = 0;
  while (v >= 1000 && u + 1 < SW_ARRAY_SIZE(units)) {
    v /= 1000;
    u++;
  }
  if (u == 0)
    snprintf(out, outlen, "%" PRIu64 "B", n);
  else
    snprintf(out, outlen, "%.3g%s", v, units[u]);
}

/* ---- paths ---- */

char *
sw_path_clean_abs(const char *path)
{
  _cleanup_strv_ char **v = NULL;
  _cleanup_free_ char *copy = xstrdup(path);
  char *save = NULL;
  for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    if (strcmp(t, ".") == 0)
      continue;
    if (strcmp(t, "..") == 0) {
      size_t n = sw_strv_len(v);
      if (n) {
        free(v[n - 1]);
        v[n - 1] = NULL;
      }
      continue;
    }
    sw_strv_push(&v, t);
  }
  sw_buf_t b = {0};
  for (size_t i = 0; v && v[i]; i++) {
    sw_buf_putc(&b, '/');
    sw_buf_puts(&b, v[i]);
  }
  if (b.len == 0)
    sw_buf_putc(&b, '/');
  return sw_buf_steal(&b);
}

/* ---- files ---- */

int
sw_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, sw_error_t *err)
{
  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  _cleanup_buf_ sw_buf_t b = {0};
  char chunk[65536];

  if (fd < 0)
    return sw_error(err, errno, "open `%s`", path);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return sw_error(err, errno, "read `%s`", path);
    }
    if (n == 0)
      break;
    if (max && b.len + (size_t)n > max)
      return sw_error(err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
    sw_buf_append(&b, chunk, (size_t)n);
  }
  if (len)
    *len = b.len;
  *out = sw_buf_steal(&b);
  return 0;
}

int
sw_read_file(const char *path, size_t max, char **out, size_t *len, sw_error_t *err)
{
  return sw_read_file_at(AT_FDCWD, path, max, out, len, err);
}

int
sw_write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int
sw_fsync_dir(const char *path)
{
  _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  return fsync(fd);
}

char *
sw_mount_point(const char *path)
{
  _cleanup_free_ char *cur = sw_path_clean_abs(path);
  struct stat st, up;
  if (stat(cur, &st) < 0)
    return steal_ptr(&cur);
  while (strcmp(cur, "/") != 0) {
    char *slash = strrchr(cur, '/');
    _cleanup_free_ char *parent =
        slash == cur ? xstrdup("/") : xstrndup(cur, (size_t)(slash - cur));
    if (stat(parent, &up) < 0 || up.st_dev != st.st_dev)
      break;
    free(cur);
    cur = steal_ptr(&parent);
  }
  return steal_ptr(&cur);
}

int64_t
sw_fs_free_bytes(const char *path)
{
  struct statvfs v;
  if (statvfs(path, &v) < 0)
    return -1;
  return (int64_t)(geteuid() == 0 ? v.f_bfree : v.f_bavail) * (int64_t)v.f_frsize;
}

int
sw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, sw_error_t *err)
{
  _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

  if (fd < 0)
    return sw_error(err, errno, "create `%s`", tmp);
  if (sw_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return sw_error(err, e, "write `%s`", tmp);
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return sw_error(err, e, "rename `%s` to `%s`", tmp, path);
  }
  return 0;
}

int
sw_mkdir_p(const char *path, mode_t mode, sw_error_t *err)
{
  _cleanup_free_ char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return sw_error(err, errno, "mkdir `%s`", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return sw_error(err, errno, "mkdir `%s`", p);
  return 0;
}

static int
rm_rf_children(int dfd, const char *what, const int *stop, sw_error_t *err)
{
  _cleanup_dir_ DIR *d = fdopendir(dfd);
  struct dirent *de;

  if (d == NULL) {
    close(dfd);
    return sw_error(err, errno, "opendir `%s`", what);
  }
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    int r = sw_rm_rf_at_until(dirfd(d), de->d_name, stop, err);
    if (r != 0)
      return r;
  }
  return 0;
}

/* Test hook: SLIPWAY_TEST_STOP_AFTER_UNLINKS=N stops the process (SIGSTOP) after its Nth file
 * removal, so that a test can SIGKILL it at a known point of a deletion (tests/e2e). */
static void
unlink_hook(void)
{
  static long limit = -1;
  static long count;
  if (limit < 0) {
    const char *v = getenv("SLIPWAY_TEST_STOP_AFTER_UNLINKS");
    limit = v && *v ? strtol(v, NULL, 10) : 0;
  }
  if (limit > 0 && __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED) == limit)
    raise(SIGSTOP);
}

int
sw_rm_rf_at_until(int dirfd, const char *name, const int *stop, sw_error_t *err)
{
  if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))
    return 1;
  if (unlinkat(dirfd, name, 0) == 0) {
    unlink_hook();
    return 0;
  }
  if (errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return sw_error(err, errno, "remove `%s`", name);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    return sw_error(err, errno, "open `%s`", name);
  }
  /* A directory we cannot list may still be removable once its mode allows it. */
  fchmod(fd, 0700);
  int r = rm_rf_children(fd, name, stop, err);
  if (r != 0)
    return r;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sw_error(err, errno, "rmdir `%s`", name);
  return 0;
}

int
sw_rm_rf_at(int dirfd, const char *name, sw_error_t *err)
{
  return sw_rm_rf_at_until(dirfd, name, NULL, err);
}

int
sw_rm_rf(const char *path, sw_error_t *err)
{
  return sw_rm_rf_at(AT_FDCWD, path, err);
}

/* ---- time ---- */

double
sw_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
sw_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(cond, lock, &ts);
}

char *
sw_time_rfc3339(int64_t t)
{
  time_t tt = (time_t)t;
  struct tm tm;
  char buf[64];
  gmtime_r(&tt, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup(buf);
}

int64_t
sw_build_time(void)
{
  const char *s = getenv("SOURCE_DATE_EPOCH");
  if (s && *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == 0 && *end == '\0' && v >= 0)
      return v;
  }
  return (int64_t)time(NULL);
}

/* ---- hashing (OpenSSL's EVP picks SHA-NI when the CPU has it) ---- */

/* OpenSSL's SHA256_* calls run the same assembly (SHA-NI when the CPU has it) as EVP, without
 * OpenSSL 3's provider initialisation and per-context fetch, which cost more than hashing a
 * small build context: a no-op rebuild must start and finish in milliseconds. */
struct sw_sha256_s {
  SHA256_CTX ctx;
};

sw_sha256_t *
sw_sha256_new(void)
{
  sw_sha256_t *h = xmalloc(sizeof(*h));
  SHA256_Init(&h->ctx);
  return h;
}

void
sw_sha256_update(sw_sha256_t *h, const void *data, size_t len)
{
  SHA256_Update(&h->ctx, data, len);
}

void
sw_sha256_final_hex(sw_sha256_t *h, char *hex)
{
  unsigned char md[32];
  static const char digits[] = "0123456789abcdef";
  SHA256_Final(md, &h->ctx);
  for (unsigned i = 0; i < 32; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = '\0';
  sw_sha256_free(h);
}

void
sw_sha256_free(sw_sha256_t *h)
{
  free(h);
}

void
sw_sha256_hex(const void *data, size_t len, char *hex)
{
  sw_sha256_t *h = sw_sha256_new();
  sw_sha256_update(h, data, len);
  sw_sha256_final_hex(h, hex);
}

char *
sw_sha256_digest(const void *data, size_t len)
{
  char hex[SW_SHA256_HEX_LEN + 1];
  sw_sha256_hex(data, len, hex);
  return xasprintf("sha256:%s", hex);
}

bool
sw_digest_valid(const char *s)
{
  if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != SW_DIGEST_LEN)
    return false;
  for (const char *p = s + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

/* ---- logging ---- */

void
sw_debug(const char *fmt, ...)
{
  va_list ap;
  if (!sw_verbose)
    return;
  va_start(ap, fmt);
  fputs("slipway: debug: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void
sw_warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("slipway: warning: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

bool
sw_url_is_loopback(const char *url)
{
  if (url == NULL)
    return false;
  const char *h = strstr(url, "://");
  h = h ? h + 3 : url;
  const char *at = strpbrk(h, "@/");
  if (at && *at == '@')
    h = at + 1;
  size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
  _cleanup_free_ char *host = xstrndup(h, n);
  return strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
         (strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == n);
}
