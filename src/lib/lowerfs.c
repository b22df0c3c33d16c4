/* slipway: user-space overlay lookups over a stack of snapshots; see lowerfs.h. */
#include "lowerfs.h"
#include "userns.h"

#include <fcntl.h>
#include <sys/xattr.h>

#define MAX_LINKS 40

struct sw_lowerfs {
  char **layers; /* top first */
  size_t n;
};

sw_lowerfs_t *
sw_lowerfs_new(char *const *layers)
{
  sw_lowerfs_t *fs = xcalloc(1, sizeof(*fs));
  fs->layers = sw_strv_dup(layers);
  fs->n = sw_strv_len(layers);
  return fs;
}

void
sw_lowerfs_free(sw_lowerfs_t *fs)
{
  if (fs == NULL)
    return;
  sw_strv_free(fs->layers);
  free(fs);
}

void
sw_lowerfs_dir_free(sw_lowerfs_dir_t *d)
{
  if (d == NULL)
    return;
  free(d->path);
  free(d->layers);
  free(d);
}

void
sw_lowerfs_ents_free(sw_lowerfs_ent_t *e, size_t n)
{
  for (size_t i = 0; e && i < n; i++) {
    free(e[i].name);
    free(e[i].host);
  }
  free(e);
}

static char *
join(const char *dir, const char *name)
{
  if (strcmp(dir, "/") == 0)
    return xasprintf("/%s", name);
  return xasprintf("%s/%s", dir, name);
}

static char *
host_path(sw_lowerfs_t *fs, int layer, const char *canon)
{
  return xasprintf("%s%s", fs->layers[layer], strcmp(canon, "/") == 0 ? "" : canon);
}

/* 1 if the directory is opaque, 0 if not; -errno when that cannot be read while the build
 * tries outside its user namespace (a directory of a subordinate id it may not read: inside,
 * it could), so that the try fails rather than see the layers below. */
static int
is_opaque(const char *host)
{
  char v[2] = {0};
  ssize_t n = lgetxattr(host, sw_overlay_opaque_xattr(), v, sizeof(v));
  if (n < 0 && errno != ENODATA && errno != ENOTSUP && sw_userns_speculating())
    return -errno;
  return n == 1 && v[0] == 'y';
}

static sw_lowerfs_dir_t *
root_dir(sw_lowerfs_t *fs)
{
  sw_lowerfs_dir_t *d = xcalloc(1, sizeof(*d));
  d->path = xstrdup("/");
  d->layers = xcalloc(fs->n + 1, sizeof(int));
  for (size_t i = 0; i < fs->n; i++)
    d->layers[d->nlayers++] = (int)i;
  return d;
}

int
sw_lowerfs_child(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, const char *name,
                 sw_lowerfs_dir_t **out, sw_error_t *err)
{
  sw_lowerfs_dir_t *c = xcalloc(1, sizeof(*c));
  c->path = join(d->path, name);
  c->layers = xcalloc(d->nlayers + 1, sizeof(int));
  for (size_t i = 0; i < d->nlayers; i++) {
    _cleanup_free_ char *h = host_path(fs, d->layers[i], c->path);
    struct stat st;
    if (lstat(h, &st) < 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        continue;
      int e = errno;
      sw_lowerfs_dir_free(c);
      return sw_error(err, e, "lstat `%s`", h);
    }
    if (!S_ISDIR(st.st_mode))
      break; /* a whiteout or a non-directory hides everything below */
    c->layers[c->nlayers++] = d->layers[i];
    int o = is_opaque(h);
    if (o < 0) {
      sw_lowerfs_dir_free(c);
      return sw_error(err, -o, "read whether `%s` is opaque", h);
    }
    if (o)
      break;
  }
  if (c->nlayers == 0) {
    sw_lowerfs_dir_free(c);
    return -ENOTDIR;
  }
  *out = c;
  return 0;
}

/* The topmost visible copy of `name` in d; -ENOENT if none or whited out. */
static int
find_entry(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, const char *name, struct stat *st,
           char **host, sw_error_t *err)
{
  _cleanup_free_ char *p = join(d->path, name);
  for (size_t i = 0; i < d->nlayers; i++) {
    char *h = host_path(fs, d->layers[i], p);
    if (lstat(h, st) == 0) {
      if (sw_is_whiteout(st)) {
        free(h);
        return -ENOENT;
      }
      sw_userns_stat_inside(st);
      *host = h;
      return 0;
    }
    int e = errno;
    free(h);
    if (e != ENOENT && e != ENOTDIR)
      return sw_error(err, e, "lstat `%s` in layer `%s`", p, fs->layers[d->layers[i]]);
  }
  return -ENOENT;
}

/* Canonical parent of a canonical path. */
static char *
parent_of(const char *canon)
{
  const char *slash = strrchr(canon, '/');
  if (slash == NULL || slash == canon)
    return xstrdup("/");
  return xstrndup(canon, (size_t)(slash - canon));
}

int
sw_lowerfs_opendir(sw_lowerfs_t *fs, const char *canon, sw_lowerfs_dir_t **out, sw_error_t *err)
{
  sw_lowerfs_dir_t *d = root_dir(fs);
  _cleanup_free_ char *copy = xstrdup(canon);
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    sw_lowerfs_dir_t *next = NULL;
    int r = sw_lowerfs_child(fs, d, c, &next, err);
    sw_lowerfs_dir_free(d);
    if (r < 0)
      return r;
    d = next;
  }
  *out = d;
  return 0;
}

int
sw_lowerfs_lookup(sw_lowerfs_t *fs, const char *path, bool follow, char **canon, struct stat *st,
                  char **host, sw_error_t *err)
{
  sw_lowerfs_dir_t *d = root_dir(fs);
  _cleanup_free_ char *rest = xstrdup(path);
  int links = 0, r = 0;

  for (;;) {
    char *p = rest;
    while (*p == '/')
      p++;
    if (*p == '\0') {
      /* The path named a directory (or "/"): report it. */
      struct stat dst = {0};
      char *h = NULL;
      if (d->nlayers > 0) {
        h = host_path(fs, d->layers[0], d->path);
        if (lstat(h, &dst) < 0) {
          r = sw_error(err, errno, "lstat `%s`", h);
          free(h);
          break;
        }
        sw_userns_stat_inside(&dst);
      } else {
        dst.st_mode = S_IFDIR | 0755;
      }
      *canon = xstrdup(d->path);
      *st = dst;
      *host = h;
      break;
    }
    size_t clen = strcspn(p, "/");
    _cleanup_free_ char *comp = xstrndup(p, clen);
    char *after = p + clen;
    while (*after == '/')
      after++;
    bool last = *after == '\0';
    if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
      if (strcmp(comp, "..") == 0 && strcmp(d->path, "/") != 0) {
        _cleanup_free_ char *up = parent_of(d->path);
        sw_lowerfs_dir_t *nd = NULL;
        r = sw_lowerfs_opendir(fs, up, &nd, err);
        if (r < 0)
          break;
        sw_lowerfs_dir_free(d);
        d = nd;
      }
      char *nr = xstrdup(after);
      free(rest);
      rest = nr;
      continue;
    }
    struct stat est;
    char *h = NULL;
    r = find_entry(fs, d, comp, &est, &h, err);
    if (r < 0)
      break;
    if (S_ISLNK(est.st_mode) && (!last || follow)) {
      if (++links > MAX_LINKS) {
        free(h);
        r = sw_error(err, ELOOP, "resolve `%s`", path);
        break;
      }
      char target[4096];
      ssize_t n = readlink(h, target, sizeof(target) - 1);
      free(h);
      if (n < 0) {
        r = sw_error(err, errno, "readlink `%s`", path);
        break;
      }
      target[n] = '\0';
      if (target[0] == '/') {
        sw_lowerfs_dir_free(d);
        d = root_dir(fs);
      }
      char *nr = xasprintf("%s/%s", target, after);
      free(rest);
      rest = nr;
      continue;
    }
    if (last) {
      *canon = join(d->path, comp);
      *st = est;
      *host = h;
      break;
    }
    free(h);
    if (!S_ISDIR(est.st_mode)) {
      r = -ENOENT;
      break;
    }
    sw_lowerfs_dir_t *nd = NULL;
    r = sw_lowerfs_child(fs, d, comp, &nd, err);
    if (r < 0) {
      if (r == -ENOTDIR)
        r = -ENOENT;
      break;
    }
    sw_lowerfs_dir_free(d);
    d = nd;
    char *nr = xstrdup(after);
    free(rest);
    rest = nr;
  }
  sw_lowerfs_dir_free(d);
  return r;
}

struct raw_ent {
  char *name;
  size_t order; /* position of its layer in the dir's list: smaller is higher */
};

static int
cmp_raw(const void *a, const void *b)
{
  const struct raw_ent *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

int
sw_lowerfs_list(sw_lowerfs_t *fs, const sw_lowerfs_dir_t *d, sw_lowerfs_ent_t **out, size_t *n,
                sw_error_t *err)
{
  struct raw_ent *raw = NULL;
  size_t nraw = 0, cap = 0;
  int r = 0;

  for (size_t i = 0; i < d->nlayers && r == 0; i++) {
    _cleanup_free_ char *h = host_path(fs, d->layers[i], d->path);
    _cleanup_dir_ DIR *dir = opendir(h);
    if (dir == NULL) {
      r = sw_error(err, errno, "opendir `%s`", h);
      break;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      if (nraw == cap) {
        cap = cap ? 2 * cap : 64;
        raw = xrealloc(raw, cap * sizeof(*raw));
      }
      raw[nraw].name = xstrdup(de->d_name);
      raw[nraw].order = i;
      nraw++;
    }
  }
  if (nraw)
    qsort(raw, nraw, sizeof(*raw), cmp_raw);

  sw_lowerfs_ent_t *ents = xcalloc(nraw + 1, sizeof(*ents));
  size_t k = 0;
  for (size_t i = 0; i < nraw && r == 0; i++) {
    if (i > 0 && strcmp(raw[i].name, raw[i - 1].name) == 0)
      continue; /* a higher layer already decided this name */
    _cleanup_free_ char *p = join(d->path, raw[i].name);
    char *h = host_path(fs, d->layers[raw[i].order], p);
    struct stat st;
    if (lstat(h, &st) < 0) {
      r = sw_error(err, errno, "lstat `%s`", h);
      free(h);
      break;
    }
    if (sw_is_whiteout(&st)) {
      free(h);
      continue;
    }
    sw_userns_stat_inside(&st);
    ents[k].name = xstrdup(raw[i].name);
    ents[k].host = h;
    ents[k].st = st;
    k++;
  }
  for (size_t i = 0; i < nraw; i++)
    free(raw[i].name);
  free(raw);
  if (r < 0) {
    sw_lowerfs_ents_free(ents, k);
    return r;
  }
  *out = ents;
  *n = k;
  return 0;
}

int
sw_lowerfs_read(sw_lowerfs_t *fs, const char *path, size_t max, char **out, size_t *len,
                sw_error_t *err)
{
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  int r = sw_lowerfs_lookup(fs, path, true, &canon, &st, &host, err);
  if (r < 0)
    return r;
  if (!S_ISREG(st.st_mode))
    return -ENOENT;
  return sw_read_file(host, max, out, len, err);
}
