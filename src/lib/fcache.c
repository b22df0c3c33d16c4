/* slipway: persistent file digest cache; see fcache.h. */
#include "fcache.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>

#define IO_BUF (1 << 17)

struct ent {
  uint64_t dev, ino, size;
  int64_t mtime_ns, ctime_ns;
  char hex[SW_SHA256_HEX_LEN + 1];
  bool used;
};

struct sw_fcache {
  pthread_mutex_t lock;
  char *path;
  sw_fcache_kind_t kind;
  size_t keep_unused;
  bool loaded;
  struct ent *v; /* loaded, sorted by (dev, ino) */
  size_t n;
  struct ent *added;
  size_t nadded, capadded;
};

static int64_t
ts_ns(const struct timespec *t)
{
  return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int
cmp_ent(const void *a, const void *b)
{
  const struct ent *x = a, *y = b;
  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return 0;
}

sw_fcache_t *
sw_fcache_open(const char *path, sw_fcache_kind_t kind, size_t keep_unused)
{
  sw_fcache_t *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->lock, NULL);
  c->path = path ? xstrdup(path) : NULL;
  c->kind = kind;
  c->keep_unused = keep_unused;
  return c;
}

/* Text, one entry a line: "dev ino size mtime_ns ctime_ns hex", then "sum <sha256 of all the
 * lines before>". */
static void
load(sw_fcache_t *c)
{
  c->loaded = true;
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  sw_error_t e = NULL;
  if (c->path == NULL || sw_read_file(c->path, 0, &text, &len, &e) < 0) {
    sw_error_release(&e);
    return;
  }
  char *sum = len > 0 ? strstr(text, "sum ") : NULL;
  while (sum && sum != text && sum[-1] != '\n')
    sum = strstr(sum + 1, "sum ");
  if (sum == NULL)
    return;
  char hex[SW_SHA256_HEX_LEN + 1];
  sw_sha256_hex(text, (size_t)(sum - text), hex);
  if (strncmp(sum + 4, hex, SW_SHA256_HEX_LEN) != 0)
    return;
  size_t cap = 0;
  for (char *line = text; line < sum;) {
    char *nl = strchr(line, '\n');
    if (nl == NULL)
      break;
    *nl = '\0';
    struct ent s = {0};
    if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %64s", &s.dev,
               &s.ino, &s.size, &s.mtime_ns, &s.ctime_ns, s.hex) == 6 &&
        strlen(s.hex) == SW_SHA256_HEX_LEN) {
      if (c->n == cap) {
        cap = cap ? 2 * cap : 256;
        c->v = xrealloc(c->v, cap * sizeof(*c->v));
      }
      c->v[c->n++] = s;
    }
    line = nl + 1;
  }
  if (c->n)
    qsort(c->v, c->n, sizeof(*c->v), cmp_ent);
}

static void
put_line(sw_buf_t *b, const struct ent *s)
{
  sw_buf_printf(b, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s\n", s->dev,
                s->ino, s->size, s->mtime_ns, s->ctime_ns, s->hex);
}

static void
save(sw_fcache_t *c)
{
  if (c->nadded == 0 || c->path == NULL)
    return;
  _cleanup_buf_ sw_buf_t b = {0};
  size_t unused = 0;
  for (size_t i = 0; i < c->n; i++)
    if (c->v[i].used || unused++ < c->keep_unused)
      put_line(&b, &c->v[i]);
  for (size_t i = 0; i < c->nadded; i++)
    put_line(&b, &c->added[i]);
  char hex[SW_SHA256_HEX_LEN + 1];
  sw_sha256_hex(b.data ? b.data : "", b.len, hex);
  sw_buf_printf(&b, "sum %s\n", hex);
  _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", c->path, (int)getpid());
  _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (sw_write_all(fd, b.data, b.len) < 0 || rename(tmp, c->path) < 0)
    unlink(tmp);
}

void
sw_fcache_free(sw_fcache_t *c)
{
  if (c == NULL)
    return;
  save(c);
  pthread_mutex_destroy(&c->lock);
  free(c->path);
  free(c->v);
  free(c->added);
  free(c);
}

static bool
matches(const sw_fcache_t *c, const struct ent *s, const struct stat *st)
{
  return s->size == (uint64_t)st->st_size && s->mtime_ns == ts_ns(&st->st_mtim) &&
         (c->kind == SW_FCACHE_BY_PATH || s->ctime_ns == ts_ns(&st->st_ctim));
}

/* The identity of a file: (dev, ino), or 128 bits of sha256(path) in the same two fields. */
static void
key_of(const sw_fcache_t *c, const char *path, const struct stat *st, uint64_t *dev, uint64_t *ino)
{
  if (c->kind == SW_FCACHE_BY_INODE) {
    *dev = st->st_dev;
    *ino = st->st_ino;
    return;
  }
  char hex[SW_SHA256_HEX_LEN + 1];
  sw_sha256_hex(path, strlen(path), hex);
  char a[17], b[17];
  memcpy(a, hex, 16);
  memcpy(b, hex + 16, 16);
  a[16] = b[16] = '\0';
  *dev = strtoull(a, NULL, 16);
  *ino = strtoull(b, NULL, 16);
}

static bool
lookup(sw_fcache_t *c, uint64_t dev, uint64_t ino, const struct stat *st, char *hex)
{
  if (!c->loaded)
    load(c);
  struct ent key = {.dev = dev, .ino = ino};
  struct ent *s = c->n ? bsearch(&key, c->v, c->n, sizeof(*c->v), cmp_ent) : NULL;
  if (s && matches(c, s, st)) {
    s->used = true;
    memcpy(hex, s->hex, sizeof(s->hex));
    return true;
  }
  return false;
}

static void
add(sw_fcache_t *c, uint64_t dev, uint64_t ino, const struct stat *st, const char *hex)
{
  if (c->nadded == c->capadded) {
    c->capadded = c->capadded ? 2 * c->capadded : 64;
    c->added = xrealloc(c->added, c->capadded * sizeof(*c->added));
  }
  struct ent *a = &c->added[c->nadded++];
  a->dev = dev;
  a->ino = ino;
  a->size = (uint64_t)st->st_size;
  a->mtime_ns = ts_ns(&st->st_mtim);
  a->ctime_ns = ts_ns(&st->st_ctim);
  a->used = true;
  memcpy(a->hex, hex, sizeof(a->hex));
}

int
sw_fcache_file(sw_fcache_t *c, int dirfd, const char *path, const struct stat *st,
               char hex[SW_SHA256_HEX_LEN + 1], sw_error_t *err)
{
  uint64_t dev, ino;
  key_of(c, path, st, &dev, &ino);
  pthread_mutex_lock(&c->lock);
  bool hit = lookup(c, dev, ino, st, hex);
  pthread_mutex_unlock(&c->lock);
  if (hit)
    return 0;

  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", path);
  _cleanup_free_ char *buf = xmalloc(IO_BUF); /* heap, not TLS: each thread would zero it */
  sw_sha256_t *h = sw_sha256_new();
  for (;;) {
    ssize_t r = read(fd, buf, IO_BUF);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      sw_sha256_free(h);
      return sw_error(err, e, "read `%s`", path);
    }
    if (r == 0)
      break;
    sw_sha256_update(h, buf, (size_t)r);
  }
  sw_sha256_final_hex(h, hex);
  /* A file changed while it was read must not be cached under its old stat. */
  struct stat st2;
  if (fstat(fd, &st2) == 0 && st2.st_size == st->st_size &&
      ts_ns(&st2.st_mtim) == ts_ns(&st->st_mtim) && st2.st_ino == st->st_ino) {
    pthread_mutex_lock(&c->lock);
    add(c, dev, ino, &st2, hex);
    pthread_mutex_unlock(&c->lock);
  }
  return 0;
}
