/* slipway: build context walk, source selection and content hashing; see context.h. */
#include "context.h"

#include "fcache.h"
#include "ignore.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/sysmacros.h>

#define MAX_LINKS 40
#define IO_BUF    (1 << 17)

struct sw_context {
  pthread_mutex_t lock; /* stages run in threads: the lazy tree and the caches are shared */
  char *dir;
  int dirfd;
  sw_ignore_t *ignore;
  sw_ctx_node_t *root;
  sw_fcache_t *fcache;     /* (dev, ino, size, mtime, ctime) -> sha256 of the bytes */
  sw_ctx_node_t **aliases; /* symlinks matched by a COPY source: the target under the link's name */
  size_t naliases;
};

/* ---- nodes ---- */

static void
node_free(sw_ctx_node_t *n)
{
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    node_free(n->kids[i]);
  free(n->kids);
  sw_strv_free(n->excluded);
  free(n->name);
  free(n->rel);
  free(n->link);
  free(n);
}

int
sw_context_open(const char *dir, const char *dockerfile, const char *cache_dir, sw_context_t **out,
                sw_error_t *err)
{
  _cleanup_free_ char *real = realpath(dir, NULL);
  if (real == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, errno, "build context `%s`", dir);
  int fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sw_error_code(err, SW_EXIT_USAGE, errno, "build context `%s`", dir);

  sw_context_t *c = xcalloc(1, sizeof(*c));
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&c->lock, &ma);
  pthread_mutexattr_destroy(&ma);
  c->dir = steal_ptr(&real);
  c->dirfd = fd;

  if (sw_ignore_load_for_build(c->dir, dockerfile, &c->ignore, err) < 0) {
    sw_context_free(c);
    return -1;
  }

  c->root = xcalloc(1, sizeof(*c->root));
  c->root->name = xstrdup("");
  c->root->rel = xstrdup("");
  if (fstat(fd, &c->root->st) < 0) {
    int e = errno;
    sw_context_free(c);
    return sw_error(err, e, "stat `%s`", dir);
  }

  _cleanup_free_ char *cache_path = NULL;
  if (cache_dir) {
    char hex[SW_HASH_HEX_SIZE];
    sw_sha256_hex(c->dir, strlen(c->dir), hex);
    sw_error_t e = NULL;
    if (sw_mkdir_p(cache_dir, 0700, &e) == 0)
      cache_path = xasprintf("%s/%.32s", cache_dir, hex);
    sw_error_release(&e);
  }
  /* User files: ctime too (an edit may keep the mtime); unused entries fall out. */
  c->fcache = sw_fcache_open(cache_path, SW_FCACHE_BY_INODE, 0);
  *out = c;
  return 0;
}

void
sw_context_free(sw_context_t *c)
{
  if (c == NULL)
    return;
  sw_fcache_free(c->fcache);
  node_free(c->root);
  for (size_t i = 0; i < c->naliases; i++) {
    free(c->aliases[i]->name);
    free(c->aliases[i]->rel);
    free(c->aliases[i]);
  }
  free(c->aliases);
  sw_ignore_free(c->ignore);
  if (c->dirfd >= 0)
    close(c->dirfd);
  free(c->dir);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

const char *
sw_context_dir(const sw_context_t *c)
{
  return c->dir;
}

int
sw_context_dirfd(const sw_context_t *c)
{
  return c->dirfd;
}

sw_ctx_node_t *
sw_context_root(sw_context_t *c)
{
  return c->root;
}

bool
sw_context_ignored(sw_context_t *c, const char *rel)
{
  return c->ignore && sw_ignore_match(c->ignore, rel);
}

char *
sw_context_host_path(const sw_context_t *c, const sw_ctx_node_t *node)
{
  if (node->rel[0] == '\0')
    return xstrdup(c->dir);
  return xasprintf("%s/%s", c->dir, node->rel);
}

static int
cmp_node(const void *a, const void *b)
{
  return strcmp((*(sw_ctx_node_t *const *)a)->name, (*(sw_ctx_node_t *const *)b)->name);
}

static char *
rel_join(const char *dir, const char *name)
{
  return dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

/* A node for an entry of an opened directory. */
static int
make_node(int dfd, const char *parent_rel, const char *name, sw_ctx_node_t **out, sw_error_t *err)
{
  sw_ctx_node_t *n = xcalloc(1, sizeof(*n));
  n->name = xstrdup(name);
  n->rel = rel_join(parent_rel, name);
  if (fstatat(dfd, name, &n->st, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = errno;
    node_free(n);
    if (e == ENOENT)
      return -ENOENT; /* raced with a deletion: as if it never was there */
    return sw_error(err, e, "stat `%s` in the build context", parent_rel[0] ? parent_rel : ".");
  }
  if (S_ISLNK(n->st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t l = readlinkat(dfd, name, buf, sizeof(buf) - 1);
    if (l < 0) {
      int e = errno;
      node_free(n);
      return sw_error(err, e, "readlink `%s` in the build context", name);
    }
    buf[l] = '\0';
    n->link = xstrdup(buf);
  }
  *out = n;
  return 0;
}

/* Would anything under excluded directory `rel` be re-included by an exception? */
static bool
may_reinclude(sw_context_t *c, const char *rel)
{
  return c->ignore && sw_ignore_may_include_below(c->ignore, rel);
}

/* Does an excluded directory end up holding anything included? (an exception below it) */
static int list_dir(sw_context_t *c, sw_ctx_node_t *dir, sw_error_t *err);

static int
list_impl(sw_context_t *c, sw_ctx_node_t *dir, sw_error_t *err)
{
  return list_dir(c, dir, err);
}

static int
list_dir(sw_context_t *c, sw_ctx_node_t *dir, sw_error_t *err)
{
  if (dir->listed)
    return 0;
  if (!S_ISDIR(dir->st.st_mode))
    return sw_error(err, ENOTDIR, "`%s` in the build context", dir->rel);
  int fd = dir->rel[0] ? openat(c->dirfd, dir->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                       : dup(c->dirfd);
  if (fd < 0)
    return sw_error(err, errno, "open `%s` in the build context", dir->rel);
  _cleanup_dir_ DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return sw_error(err, errno, "open `%s` in the build context", dir->rel);
  }
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *rel = rel_join(dir->rel, de->d_name);
    bool excluded = sw_context_ignored(c, rel);
    bool is_dir = de->d_type == DT_DIR || de->d_type == DT_UNKNOWN;
    if (excluded && !(is_dir && may_reinclude(c, rel))) {
      sw_strv_push(&dir->excluded, de->d_name); /* pruned: never stat'ed, never read */
      continue;
    }
    sw_ctx_node_t *n = NULL;
    int r = make_node(dirfd(d), dir->rel, de->d_name, &n, err);
    if (r == -ENOENT)
      continue;
    if (r < 0)
      return -1;
    if (excluded) {
      /* Kept only for the exceptions under it: include it iff one matched. */
      if (!S_ISDIR(n->st.st_mode) || list_dir(c, n, err) < 0 || n->nkids == 0) {
        node_free(n);
        if (err && *err)
          return -1;
        sw_strv_push(&dir->excluded, de->d_name);
        continue;
      }
    }
    if (dir->nkids == cap) {
      cap = cap ? 2 * cap : 16;
      dir->kids = xrealloc(dir->kids, cap * sizeof(*dir->kids));
    }
    dir->kids[dir->nkids++] = n;
  }
  if (dir->nkids)
    qsort(dir->kids, dir->nkids, sizeof(*dir->kids), cmp_node);
  dir->listed = true;
  return 0;
}

static sw_ctx_node_t *
find_kid(sw_ctx_node_t *dir, const char *name)
{
  sw_ctx_node_t key = {.name = (char *)name}, *kp = &key;
  sw_ctx_node_t **r =
      dir->nkids ? bsearch(&kp, dir->kids, dir->nkids, sizeof(*dir->kids), cmp_node) : NULL;
  return r ? *r : NULL;
}

bool
sw_has_wildcards(const char *s)
{
  for (; *s; s++) {
    if (*s == '\\' && s[1]) {
      s++;
      continue;
    }
    if (*s == '*' || *s == '?' || *s == '[')
      return true;
  }
  return false;
}

/* ---- source matching ---- */

struct matcher {
  sw_context_t *c;
  const char *src, *what;
  sw_ctx_node_t **out;
  size_t n, cap;
  int links;
};

static int
outside(struct matcher *m, sw_error_t *err)
{
  return sw_error(err, 0,
                  "%s: `%s` points outside the build context `%s`: only files inside it can be "
                  "copied",
                  m->what, m->src, m->c->dir);
}

static void
push_match(struct matcher *m, sw_ctx_node_t *n)
{
  for (size_t i = 0; i < m->n; i++)
    if (m->out[i] == n)
      return;
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 8;
    m->out = xrealloc(m->out, m->cap * sizeof(*m->out));
  }
  m->out[m->n++] = n;
}

/* A source that is a symlink is copied as its target's content under the link's own name
 * (Docker follows the link: `COPY link.txt /d/` makes /d/link.txt). The alias shares the
 * target's bytes, stat and (listed) children; only its name differs. */
static int
alias_of(struct matcher *m, sw_ctx_node_t *target, const char *name, sw_ctx_node_t **out,
         sw_error_t *err)
{
  if (strcmp(target->name, name) == 0) {
    *out = target;
    return 0;
  }
  if (S_ISDIR(target->st.st_mode) && list_dir(m->c, target, err) < 0)
    return -1;
  sw_ctx_node_t *a = xmalloc(sizeof(*a));
  *a = *target;
  a->name = xstrdup(name);
  a->rel = xstrdup(target->rel);
  a->link = NULL;
  sw_context_t *c = m->c;
  c->aliases = xrealloc(c->aliases, (c->naliases + 1) * sizeof(*c->aliases));
  c->aliases[c->naliases++] = a;
  *out = a;
  return 0;
}

/* Split a path into cleaned components; `..` that would leave the root is an error. */
static int
split_clean(struct matcher *m, const char *path, char ***comps, sw_error_t *err)
{
  _cleanup_strv_ char **v = NULL;
  _cleanup_free_ char *copy = xstrdup(path);
  char *save = NULL;
  for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    if (strcmp(t, ".") == 0)
      continue;
    if (strcmp(t, "..") == 0) {
      size_t n = sw_strv_len(v);
      if (n == 0)
        return outside(m, err);
      free(v[n - 1]);
      v[n - 1] = NULL;
      continue;
    }
    sw_strv_push(&v, t);
  }
  if (v == NULL)
    v = xcalloc(1, sizeof(char *));
  *comps = steal_ptr(&v);
  return 0;
}

/* The node of a cleaned, wildcard-free relative path, following symlinks (inside only). */
static int resolve(struct matcher *m, char *const *comps, bool follow_last, sw_ctx_node_t **out,
                   sw_error_t *err);

static int
follow_link(struct matcher *m, sw_ctx_node_t *dir, sw_ctx_node_t *link, char *const *rest,
            bool follow_last, sw_ctx_node_t **out, sw_error_t *err)
{
  if (++m->links > MAX_LINKS)
    return sw_error(err, ELOOP, "%s: resolve `%s` in the build context", m->what, m->src);
  if (link->link[0] == '/')
    return outside(m, err);
  _cleanup_free_ char *joined = NULL;
  _cleanup_buf_ sw_buf_t b = {0};
  sw_buf_puts(&b, dir->rel);
  sw_buf_putc(&b, '/');
  sw_buf_puts(&b, link->link);
  for (size_t i = 0; rest && rest[i]; i++) {
    sw_buf_putc(&b, '/');
    sw_buf_puts(&b, rest[i]);
  }
  joined = sw_buf_steal(&b);
  _cleanup_strv_ char **comps = NULL;
  if (split_clean(m, joined, &comps, err) < 0)
    return -1;
  return resolve(m, comps, follow_last, out, err);
}

static int
resolve(struct matcher *m, char *const *comps, bool follow_last, sw_ctx_node_t **out,
        sw_error_t *err)
{
  sw_ctx_node_t *cur = m->c->root;
  for (size_t i = 0; comps[i]; i++) {
    if (list_dir(m->c, cur, err) < 0)
      return -1;
    sw_ctx_node_t *k = find_kid(cur, comps[i]);
    if (k == NULL)
      return -ENOENT;
    bool last = comps[i + 1] == NULL;
    if (k->link && (!last || follow_last))
      return follow_link(m, cur, k, comps + i + 1, follow_last, out, err);
    if (!last && !S_ISDIR(k->st.st_mode))
      return -ENOENT;
    cur = k;
  }
  *out = cur;
  return 0;
}

/* Glob: walk components, matching wildcard ones against directory entries. */
static int
glob_walk(struct matcher *m, sw_ctx_node_t *dir, char *const *comps, sw_error_t *err)
{
  if (comps[0] == NULL) {
    sw_ctx_node_t *n = dir;
    if (n->link) {
      /* A matched symlink: resolve it (inside the context only). */
      _cleanup_strv_ char **c = NULL;
      if (split_clean(m, n->rel, &c, err) < 0)
        return -1;
      int r = resolve(m, c, true, &n, err);
      if (r == -ENOENT)
        return 0; /* dangling: BuildKit skips it */
      if (r < 0 || alias_of(m, n, dir->name, &n, err) < 0)
        return -1;
    }
    push_match(m, n);
    return 0;
  }
  if (dir->link) {
    _cleanup_strv_ char **c = NULL;
    sw_ctx_node_t *t = NULL;
    if (split_clean(m, dir->rel, &c, err) < 0)
      return -1;
    int r = resolve(m, c, true, &t, err);
    if (r == -ENOENT)
      return 0;
    if (r < 0)
      return -1;
    dir = t;
  }
  if (!S_ISDIR(dir->st.st_mode))
    return 0;
  if (list_dir(m->c, dir, err) < 0)
    return -1;
  if (!sw_has_wildcards(comps[0])) {
    sw_ctx_node_t *k = find_kid(dir, comps[0]);
    return k ? glob_walk(m, k, comps + 1, err) : 0;
  }
  for (size_t i = 0; i < dir->nkids; i++)
    if (fnmatch(comps[0], dir->kids[i]->name, 0) == 0)
      if (glob_walk(m, dir->kids[i], comps + 1, err) < 0)
        return -1;
  return 0;
}

static int
match_impl(sw_context_t *c, const char *src, const char *what, sw_ctx_node_t ***out, size_t *n,
           sw_error_t *err)
{
  struct matcher m = {.c = c, .src = src, .what = what};
  _cleanup_strv_ char **comps = NULL;
  if (split_clean(&m, src, &comps, err) < 0)
    return -1;
  if (sw_has_wildcards(src)) {
    if (glob_walk(&m, c->root, comps, err) < 0) {
      free(m.out);
      return -1;
    }
  } else {
    sw_ctx_node_t *node = NULL;
    int r = resolve(&m, comps, true, &node, err);
    if (r == -ENOENT)
      return sw_error(err, ENOENT, "%s: `%s` not found in the build context `%s`%s", what, src,
                      c->dir,
                      sw_context_ignored(c, src) ? " (it is excluded by .dockerignore)" : "");
    size_t nc = 0;
    while (comps[nc])
      nc++;
    if (r < 0 || (nc && alias_of(&m, node, comps[nc - 1], &node, err) < 0))
      return -1;
    push_match(&m, node);
  }
  *out = m.out ? m.out : xcalloc(1, sizeof(sw_ctx_node_t *));
  *n = m.n;
  return 0;
}

/* ---- hashing ---- */

static int
file_bytes_impl(sw_context_t *c, sw_ctx_node_t *node, sw_error_t *err)
{
  if (node->bytes[0])
    return 0;
  if (sw_fcache_file(c->fcache, c->dirfd, node->rel, &node->st, node->bytes, err) < 0)
    return sw_error_wrap(err, "build context `%s`", c->dir);
  return 0;
}

static int hash_node(sw_context_t *c, sw_ctx_node_t *node, const sw_excludes_t *ex,
                     const char *exrel, char out[SW_HASH_HEX_SIZE], sw_error_t *err);

static int
hash_dir(sw_context_t *c, sw_ctx_node_t *node, const sw_excludes_t *ex, const char *exrel,
         char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  if (list_dir(c, node, err) < 0)
    return -1;
  sw_content_dir_t *d = sw_content_dir_new(node->st.st_mode);
  for (size_t i = 0; i < node->nkids; i++) {
    sw_ctx_node_t *k = node->kids[i];
    _cleanup_free_ char *krel = ex ? rel_join(exrel, k->name) : NULL;
    if (ex && sw_excludes_match(ex, krel))
      continue;
    char kh[SW_HASH_HEX_SIZE];
    if (hash_node(c, k, ex, krel, kh, err) < 0) {
      char tmp[SW_HASH_HEX_SIZE];
      sw_content_dir_finish(d, tmp);
      return -1;
    }
    sw_content_dir_add(d, k->name, kh);
  }
  sw_content_dir_finish(d, out);
  return 0;
}

static int
hash_node(sw_context_t *c, sw_ctx_node_t *node, const sw_excludes_t *ex, const char *exrel,
          char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  if (ex == NULL && node->hashed) {
    memcpy(out, node->hash, SW_HASH_HEX_SIZE);
    return 0;
  }
  mode_t mode = node->st.st_mode;
  if (S_ISREG(mode)) {
    if (file_bytes_impl(c, node, err) < 0)
      return -1;
    sw_content_file(mode, (uint64_t)node->st.st_size, node->bytes, out);
  } else if (S_ISLNK(mode)) {
    sw_content_symlink(node->link, out);
  } else if (S_ISDIR(mode)) {
    if (hash_dir(c, node, ex, exrel, out, err) < 0)
      return -1;
  } else {
    sw_content_special(mode, node->st.st_rdev, out);
  }
  if (ex == NULL) {
    memcpy(node->hash, out, SW_HASH_HEX_SIZE);
    node->hashed = true;
  }
  return 0;
}

static int
hash_impl(sw_context_t *c, sw_ctx_node_t *node, char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  return hash_node(c, node, NULL, NULL, out, err);
}

static int
hash_excluding_impl(sw_context_t *c, sw_ctx_node_t *node, char *const *excludes,
                    char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  if (excludes == NULL || excludes[0] == NULL)
    return hash_impl(c, node, out, err);
  sw_excludes_t *ex = NULL;
  if (sw_excludes_new(excludes, &ex, err) < 0)
    return -1;
  int r = hash_node(c, node, ex, "", out, err);
  sw_excludes_free(ex);
  return r;
}

/* ---- COPY --exclude ---- */

struct sw_excludes {
  sw_ignore_t *ig;
};

int
sw_excludes_new(char *const *patterns, sw_excludes_t **out, sw_error_t *err)
{
  _cleanup_buf_ sw_buf_t b = {0};
  for (size_t i = 0; patterns && patterns[i]; i++) {
    sw_buf_puts(&b, patterns[i]);
    sw_buf_putc(&b, '\n');
  }
  sw_excludes_t *e = xcalloc(1, sizeof(*e));
  if (sw_ignore_parse("--exclude", b.data ? b.data : "", b.len, &e->ig, err) < 0) {
    free(e);
    return -1;
  }
  *out = e;
  return 0;
}

void
sw_excludes_free(sw_excludes_t *e)
{
  if (e == NULL)
    return;
  sw_ignore_free(e->ig);
  free(e);
}

bool
sw_excludes_match(const sw_excludes_t *e, const char *rel)
{
  return e && sw_ignore_match(e->ig, rel);
}

/* ---- the filtered view for RUN --mount=type=bind ---- */

/* A directory of the mask, made only when something below it is hidden. */
struct lazy_dir {
  struct lazy_dir *up;
  const char *name;
  const struct stat *st; /* of the context directory it stands for */
  int fd;
};

static int
lazy_fd(struct lazy_dir *z, sw_error_t *err)
{
  if (z->fd >= 0)
    return z->fd;
  int pfd = lazy_fd(z->up, err);
  if (pfd < 0)
    return -1;
  if (mkdirat(pfd, z->name, 0700) < 0 && errno != EEXIST)
    return sw_error(err, errno, "mkdir `%s` in the --mount view", z->name);
  z->fd = openat(pfd, z->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (z->fd < 0)
    return sw_error(err, errno, "open `%s` in the --mount view", z->name);
  return z->fd;
}

/* The context directory's metadata on its copy, after its children were made (mtime). */
static int
lazy_finish(struct lazy_dir *z, sw_error_t *err)
{
  if (z->fd < 0)
    return 0;
  struct timespec ts[2] = {z->st->st_atim, z->st->st_mtim};
  int r = fchown(z->fd, z->st->st_uid, z->st->st_gid) < 0 ||
                  fchmod(z->fd, z->st->st_mode & 07777) < 0 || futimens(z->fd, ts) < 0
              ? sw_error(err, errno, "set metadata of `%s` in the --mount view", z->name)
              : 0;
  close(z->fd);
  z->fd = -1;
  return r;
}

static int
mask_walk(sw_context_t *c, sw_ctx_node_t *node, struct lazy_dir *z, size_t *n, sw_error_t *err)
{
  if (list_dir(c, node, err) < 0)
    return -1;
  for (size_t i = 0; node->excluded && node->excluded[i]; i++) {
    int fd = lazy_fd(z, err);
    if (fd < 0)
      return -1;
    if (mknodat(fd, node->excluded[i], S_IFCHR | 0, makedev(0, 0)) < 0)
      return sw_error(err, errno, "hide `%s` in the --mount view", node->excluded[i]);
    (*n)++;
  }
  for (size_t i = 0; i < node->nkids; i++) {
    sw_ctx_node_t *k = node->kids[i];
    if (!S_ISDIR(k->st.st_mode))
      continue;
    struct lazy_dir kz = {.up = z, .name = k->name, .st = &k->st, .fd = -1};
    int r = mask_walk(c, k, &kz, n, err);
    if (r == 0)
      r = lazy_finish(&kz, err);
    if (kz.fd >= 0)
      close(kz.fd);
    if (r < 0)
      return -1;
  }
  return 0;
}

static int
mask_impl(sw_context_t *c, sw_ctx_node_t *node, const char *dir, size_t *n, sw_error_t *err)
{
  struct lazy_dir root = {.name = dir, .st = &node->st};
  *n = 0;
  root.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root.fd < 0)
    return sw_error(err, errno, "open `%s`", dir);
  int r = mask_walk(c, node, &root, n, err);
  if (r == 0)
    r = lazy_finish(&root, err);
  if (root.fd >= 0)
    close(root.fd);
  return r;
}

/* ---- the public entry points: one lock, since stages run in threads ---- */

#define LOCKED(c, call)                                                                            \
  do {                                                                                             \
    pthread_mutex_lock(&(c)->lock);                                                                \
    int r_ = (call);                                                                               \
    pthread_mutex_unlock(&(c)->lock);                                                              \
    return r_;                                                                                     \
  } while (0)

int
sw_context_list(sw_context_t *c, sw_ctx_node_t *dir, sw_error_t *err)
{
  LOCKED(c, list_impl(c, dir, err));
}

int
sw_context_match(sw_context_t *c, const char *src, const char *what, sw_ctx_node_t ***out,
                 size_t *n, sw_error_t *err)
{
  LOCKED(c, match_impl(c, src, what, out, n, err));
}

int
sw_context_file_bytes(sw_context_t *c, sw_ctx_node_t *node, sw_error_t *err)
{
  LOCKED(c, file_bytes_impl(c, node, err));
}

int
sw_context_mask(sw_context_t *c, sw_ctx_node_t *node, const char *dir, size_t *n, sw_error_t *err)
{
  LOCKED(c, mask_impl(c, node, dir, n, err));
}

int
sw_context_hash(sw_context_t *c, sw_ctx_node_t *node, char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  LOCKED(c, hash_impl(c, node, out, err));
}

int
sw_context_hash_excluding(sw_context_t *c, sw_ctx_node_t *node, char *const *excludes,
                          char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  LOCKED(c, hash_excluding_impl(c, node, excludes, out, err));
}
