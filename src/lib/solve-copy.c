/* slipway: COPY, ADD and WORKDIR steps: sources (context, stage, image, heredoc), their
 * content hashes for the key (never mtimes), and the layer written by copy.c. */
#include "solve-private.h"

#include "copy.h"
#include "fetch-git.h"
#include "fetch-url.h"
#include "ssh-forward.h"
#include "userns.h"
#include "shellword.h"

#include <fnmatch.h>
#include <sys/stat.h>

typedef enum { ITEM_CTX, ITEM_LOWER, ITEM_DATA, ITEM_ARCHIVE, ITEM_URL, ITEM_GIT } item_kind_t;

typedef struct {
  item_kind_t kind;
  sw_ctx_node_t *node; /* CTX, ARCHIVE */
  char *canon;         /* LOWER: path in the source image */
  struct stat st;      /* LOWER */
  char *host;          /* LOWER: visible copy; ARCHIVE, URL: host path; GIT: the source */
  char *sub;           /* --parents: path kept under dest */
  char *name;          /* DATA, URL; GIT: the commit */
  int64_t mtime;       /* URL */
  bool keep_git_dir;   /* GIT */
  char *data;          /* DATA */
} item_t;

typedef struct {
  item_t *v;
  size_t n;
  bool wildcard;
  sw_keyhash_t *content;
  sw_lowerfs_t *srcfs;         /* --from source view */
  sw_context_t *ctx;           /* the build context, or the --build-context copied from */
  char src_chain[SW_KEY_SIZE]; /* identity of the --from source's layers */
  _Bool from;
} sources_t;

static void
sources_free(sources_t *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].canon);
    free(s->v[i].host);
    free(s->v[i].sub);
    free(s->v[i].name);
    free(s->v[i].data);
  }
  free(s->v);
  sw_lowerfs_free(s->srcfs);
  if (s->content) {
    char tmp[SW_KEY_SIZE];
    sw_keyhash_finish(s->content, tmp);
  }
}

static item_t *
push_item(sources_t *s, item_kind_t kind)
{
  s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
  item_t *it = &s->v[s->n++];
  memset(it, 0, sizeof(*it));
  it->kind = kind;
  return it;
}

/* ADD https://…: fetched (or revalidated) now; the key takes its name and content digest. */
static int
add_url_source(stage_run_t *r, sources_t *s, const char *src, const char *checksum, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  sw_url_opts_t uo = {
      .proxy_env = o->plan->build_args, .checksum = checksum, .no_cache = o->no_cache};
  sw_url_file_t file = {0};
  if (sw_url_fetch(o->store, src, &uo, &file, err) < 0)
    return sv_wrap(r, err);
  sw_debug("%s: %s, %u request(s)", src, file.digest, file.requests);
  sw_keyhash_str(s->content, "url");
  sw_keyhash_str(s->content, file.name);
  sw_keyhash_str(s->content, file.digest);
  item_t *it = push_item(s, ITEM_URL);
  it->name = steal_ptr(&file.name);
  it->host = sw_blob_path(o->store, file.digest);
  it->mtime = file.mtime >= 0 ? file.mtime : r->sv->now;
  sw_url_file_clear(&file);
  return 0;
}

static sw_git_opts_t
git_opts(stage_run_t *r)
{
  const sw_solve_opts_t *o = r->sv->o;
  return (sw_git_opts_t){.proxy_env = o->plan->build_args,
                         .ssh_auth_sock = sw_ssh_agents_get(o->ssh, "default")};
}

/* ADD <git repository>: keyed on the commit its ref names now (one `git ls-remote`); fetched
 * and checked out only when the step runs. */
static int
add_git_source(stage_run_t *r, sources_t *s, const char *src, bool keep, sw_error_t *err)
{
  sw_git_src_t g;
  char commit[41];
  sw_git_opts_t go = git_opts(r);
  if (sw_git_parse(src, &g, err) < 0)
    return sv_wrap(r, err);
  int rc = sw_git_resolve(&g, &go, commit, err);
  if (rc == 0) {
    sw_keyhash_str(s->content, "git");
    sw_keyhash_str(s->content, g.remote);
    sw_keyhash_str(s->content, commit);
    sw_keyhash_str(s->content, g.subdir ? g.subdir : "");
    sw_keyhash_u64(s->content, keep);
    item_t *it = push_item(s, ITEM_GIT);
    it->host = xstrdup(src);
    it->name = xstrdup(commit);
    it->keep_git_dir = keep;
  }
  sw_git_src_clear(&g);
  return rc < 0 ? sv_wrap(r, err) : 0;
}

/* Check the item's commit out and copy it (the repository's root or subdir) into c. */
static int
write_git(stage_run_t *r, sw_copy_t *c, const item_t *it, sw_error_t *err)
{
  sw_git_src_t g;
  sw_git_opts_t go = git_opts(r);
  if (sw_git_parse(it->host, &g, err) < 0)
    return -1;
  _cleanup_free_ char *dir = sw_store_mkdtemp(r->sv->o->store, "git-", err);
  _cleanup_free_ char *root = NULL, *ignore = NULL;
  sw_context_t *ctx = NULL;
  int rc = dir ? 0 : -1;
  if (rc == 0)
    rc = sw_git_checkout(&g, &go, it->name, it->keep_git_dir, dir, &root, &ignore, err);
  if (rc == 0)
    rc = sw_context_open(root, ignore, NULL, &ctx, err);
  if (rc == 0)
    rc = sw_copy_add_context(c, ctx, sw_context_root(ctx), NULL, err);
  sw_context_free(ctx);
  sw_error_t e = NULL;
  if (dir)
    sw_rm_rf(dir, &e);
  sw_error_release(&e);
  sw_git_src_clear(&g);
  return rc;
}

/* --parents: "a/./b/c" keeps "b/c"; without a pivot the whole relative path is kept. */
static void
split_pivot(const char *src, char **path, size_t *keep_from)
{
  const char *piv = strstr(src, "/./");
  if (piv == NULL) {
    *path = xstrdup(src);
    *keep_from = 0;
    return;
  }
  *path = xasprintf("%.*s/%s", (int)(piv - src), src, piv + 3);
  /* the kept part starts after the pivot, relative to the context root */
  const char *p = src;
  while (*p == '/' || (p[0] == '.' && p[1] == '/'))
    p += *p == '/' ? 1 : 2;
  *keep_from = (size_t)(piv - p) + 1;
  if (piv < p)
    *keep_from = 0;
}

static int
add_context_source(stage_run_t *r, sources_t *s, const char *src, bool parents, bool is_add,
                   const sw_excludes_t *ex, char *const *excludes, sw_error_t *err)
{
  sw_context_t *ctx = s->ctx;
  _cleanup_free_ char *path = NULL;
  size_t keep_from = 0;
  if (parents)
    split_pivot(src, &path, &keep_from);
  else
    path = xstrdup(src);
  if (sw_has_wildcards(path))
    s->wildcard = true;
  _cleanup_free_ char *what = xasprintf("%s:%d: %s", r->sv->o->plan->df->path, r->cur->insn->line,
                                        sw_insn_kind_name(r->cur->insn->kind));
  sw_ctx_node_t **nodes = NULL;
  size_t n = 0;
  if (sw_context_match(ctx, path, what, &nodes, &n, err) < 0)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    sw_ctx_node_t *node = nodes[i];
    char hash[SW_HASH_HEX_SIZE];
    if (sw_context_hash_excluding(ctx, node, excludes, hash, err) < 0) {
      rc = -1;
      break;
    }
    sw_keyhash_str(s->content, src);
    sw_keyhash_str(s->content, node->rel);
    sw_keyhash_str(s->content, hash);
    item_t *it = push_item(s, ITEM_CTX);
    it->node = node;
    if (parents)
      it->sub = xstrdup(strlen(node->rel) > keep_from ? node->rel + keep_from : "");
    if (is_add && S_ISREG(node->st.st_mode)) {
      char *host = sw_context_host_path(ctx, node);
      if (sw_copy_is_archive(host)) {
        it->kind = ITEM_ARCHIVE;
        it->host = host;
      } else {
        free(host);
      }
    }
  }
  (void)ex;
  free(nodes);
  return rc;
}

/* The content hash of a path in the --from source, memoized by the source's layer chain: a
 * no-op rebuild never walks it, a rebuilt stage is walked once. */
static int
lower_hash(stage_run_t *r, sources_t *s, const char *canon, char *const *excludes,
           const sw_excludes_t *ex, char out[SW_HASH_HEX_SIZE], sw_error_t *err)
{
  sw_store_t *store = r->sv->o->store;
  char mkey[SW_KEY_SIZE];
  sw_keyhash_t *h = sw_keyhash_new("copy-from-content");
  sw_keyhash_str(h, s->src_chain);
  sw_keyhash_str(h, canon);
  sw_keyhash_strv(h, excludes);
  sw_keyhash_finish(h, mkey);
  _cleanup_free_ char *val = NULL;
  if (sw_cache_get(store, mkey, &val, err) < 0)
    return sv_wrap(r, err);
  if (val) {
    json_t *j = json_loads(val, 0, NULL);
    json_t *c = j ? json_object_get(j, "content") : NULL;
    bool ok = json_is_string(c) && strlen(json_string_value(c)) == SW_SHA256_HEX_LEN;
    if (ok)
      memcpy(out, json_string_value(c), SW_HASH_HEX_SIZE);
    json_decref(j);
    if (ok)
      return 0;
  }
  int rc = sw_copy_hash_lower(s->srcfs, canon, ex, r->sv->snapcache, out, err);
  if (rc < 0)
    return rc == -ENOENT ? rc : sv_wrap(r, err);
  /* A try outside the user namespace keeps what it hashed to itself (userns.h). */
  if (sw_userns_speculating())
    return 0;
  _cleanup_free_ char *rec = xasprintf("{\"content\":\"%s\",\"v\":1}", out);
  char *none[] = {NULL};
  if (sw_cache_put(store, mkey, rec, none, 0, err) < 0)
    return sv_wrap(r, err);
  return 0;
}

static int
add_lower_match(stage_run_t *r, sources_t *s, const char *src, const char *path, bool parents,
                char *const *excludes, const sw_excludes_t *ex, sw_error_t *err)
{
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  int f = sw_lowerfs_lookup(s->srcfs, path, true, &canon, &st, &host, err);
  if (f == -ENOENT)
    return -ENOENT;
  if (f < 0)
    return sv_wrap(r, err);
  char hash[SW_HASH_HEX_SIZE];
  f = lower_hash(r, s, canon, excludes, ex, hash, err);
  if (f < 0)
    return f;
  sw_keyhash_str(s->content, src);
  sw_keyhash_str(s->content, canon);
  sw_keyhash_str(s->content, hash);
  item_t *it = push_item(s, ITEM_LOWER);
  it->canon = steal_ptr(&canon);
  it->st = st;
  it->host = steal_ptr(&host);
  if (parents)
    it->sub = xstrdup(it->canon[1] ? it->canon + 1 : "");
  return 0;
}

static int
add_lower_source(stage_run_t *r, sources_t *s, const char *src, bool parents, char *const *excludes,
                 const sw_excludes_t *ex, sw_error_t *err)
{
  _cleanup_free_ char *path = src[0] == '/' ? xstrdup(src) : xasprintf("/%s", src);
  if (!sw_has_wildcards(path)) {
    int f = add_lower_match(r, s, src, path, parents, excludes, ex, err);
    if (f == -ENOENT)
      return sv_fail(r, err, "`%s` not found in the --from source", src);
    return f;
  }
  s->wildcard = true;
  const char *slash = strrchr(path, '/');
  _cleanup_free_ char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
  if (sw_has_wildcards(dir))
    return sv_fail(
        r, err, "`%s`: wildcards are supported only in the last component of a --from source", src);
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  int f = sw_lowerfs_lookup(s->srcfs, dir, true, &canon, &st, &host, err);
  if (f == -ENOENT || (f == 0 && !S_ISDIR(st.st_mode)))
    return 0;
  if (f < 0)
    return sv_wrap(r, err);
  _cleanup_(sw_lowerfs_dir_freep) sw_lowerfs_dir_t *d = NULL;
  if (sw_lowerfs_opendir(s->srcfs, canon, &d, err) < 0)
    return err && *err ? sv_wrap(r, err) : 0;
  sw_lowerfs_ent_t *ents = NULL;
  size_t n = 0;
  if (sw_lowerfs_list(s->srcfs, d, &ents, &n, err) < 0)
    return sv_wrap(r, err);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (fnmatch(slash + 1, ents[i].name, 0) != 0)
      continue;
    _cleanup_free_ char *p = xasprintf("%s/%s", strcmp(canon, "/") ? canon : "", ents[i].name);
    rc = add_lower_match(r, s, src, p, parents, excludes, ex, err);
    if (rc == -ENOENT)
      rc = 0;
  }
  sw_lowerfs_ents_free(ents, n);
  return rc;
}

/* The heredoc a "<<NAME" source argument refers to, or NULL. */
static const sw_heredoc_t *
heredoc_source(const sw_insn_t *in, const char *arg)
{
  if (!sw_str_has_prefix(arg, "<<"))
    return NULL;
  const char *p = arg + 2;
  if (*p == '-')
    p++;
  for (size_t i = 0; i < in->n_heredocs; i++) {
    const char *name = in->heredocs[i].name;
    size_t n = strlen(p);
    if (strcmp(p, name) == 0 || (n >= 2 && (p[0] == '"' || p[0] == '\'') && strlen(name) == n - 2 &&
                                 strncmp(p + 1, name, n - 2) == 0))
      return &in->heredocs[i];
  }
  return NULL;
}

static int
add_heredoc_source(stage_run_t *r, sources_t *s, const sw_heredoc_t *h, sw_error_t *err)
{
  _cleanup_free_ char *raw = sw_heredoc_content(h);
  char *data = NULL;
  if (h->expand) {
    _cleanup_strv_ char **env = sv_expand_env(r);
    sw_shlex_t lx = {.escape = r->sv->o->plan->df->escape, .flags = SW_SHLEX_SKIP_QUOTES};
    if (sw_shlex_expand(&lx, raw, env, &data, err) < 0)
      return sv_wrap(r, err);
  } else {
    data = steal_ptr(&raw);
  }
  char hex[SW_HASH_HEX_SIZE];
  sw_sha256_hex(data, strlen(data), hex);
  sw_keyhash_str(s->content, h->name);
  sw_keyhash_str(s->content, hex);
  item_t *it = push_item(s, ITEM_DATA);
  it->name = xstrdup(h->name);
  it->data = data;
  return 0;
}

/* The --from source's view and identity. */
static int
open_from(stage_run_t *r, const sw_step_t *step, sources_t *s, sw_error_t *err)
{
  sw_keyhash_t *h = sw_keyhash_new("layer-chain");
  if (step->from_stage >= 0) {
    if (sv_wait_stage(r, step->from_stage) < 0) {
      sw_keyhash_finish(h, s->src_chain);
      return sw_error(err, ECANCELED, "canceled");
    }
    stage_run_t *src = sv_stage(r, step->from_stage);
    s->srcfs = sw_lowerfs_new(src->lower);
    for (size_t i = 0; i < src->img->n_layers; i++)
      sw_keyhash_str(h, src->img->layers[i].diff_id);
  } else {
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    if (sv_image(r, step->from_image, &img, err) < 0) {
      sw_keyhash_finish(h, s->src_chain);
      return -1;
    }
    _cleanup_strv_ char **lower = sw_image_lowerdirs(r->sv->o->store, img);
    s->srcfs = sw_lowerfs_new(lower);
    for (size_t i = 0; i < img->n_layers; i++)
      sw_keyhash_str(h, img->layers[i].diff_id);
  }
  sw_keyhash_finish(h, s->src_chain);
  s->from = true;
  return 0;
}

static int
parse_chmod(stage_run_t *r, const char *v, int *out, sw_error_t *err)
{
  char *end = NULL;
  errno = 0;
  long m = strtol(v, &end, 8);
  if (errno || *end || m < 0 || m > 07777)
    return sv_fail(r, err,
                   "invalid chmod parameter: `%s`: it should be an octal string between 0 and "
                   "07777",
                   v);
  *out = (int)m;
  return 0;
}

typedef struct {
  char *chown, *chmod, *checksum;
  bool link, parents, keep_git_dir;
  char **excludes;
} copy_flags_t;

static int
copy_flags(stage_run_t *r, const sw_insn_t *in, copy_flags_t *f, sw_error_t *err)
{
  const char *v;
  memset(f, 0, sizeof(*f));
  if ((v = sw_insn_flag(in, "chown")) && sv_expand(r, v, &f->chown, err) < 0)
    return -1;
  if ((v = sw_insn_flag(in, "chmod")) && sv_expand(r, v, &f->chmod, err) < 0)
    return -1;
  v = sw_insn_flag(in, "link");
  f->link = v && strcmp(v, "false") != 0;
  v = sw_insn_flag(in, "parents");
  f->parents = v && strcmp(v, "false") != 0;
  _cleanup_strv_ char **ex = sw_insn_flag_all(in, "exclude");
  f->excludes = xcalloc(1, sizeof(char *));
  for (size_t i = 0; ex[i]; i++) {
    char *e = NULL;
    if (sv_expand(r, ex[i], &e, err) < 0)
      return -1;
    sw_strv_push_take(&f->excludes, e);
  }
  if ((v = sw_insn_flag(in, "checksum")) && sv_expand(r, v, &f->checksum, err) < 0)
    return -1;
  v = sw_insn_flag(in, "keep-git-dir");
  f->keep_git_dir = v && strcmp(v, "false") != 0;
  return 0;
}

static void
copy_flags_clear(copy_flags_t *f)
{
  free(f->chown);
  free(f->chmod);
  free(f->checksum);
  sw_strv_free(f->excludes);
}

static char *
copy_history(const sw_insn_t *in, const copy_flags_t *f, char *const *srcs, const char *dest)
{
  sw_buf_t b = {0};
  sw_buf_puts(&b, in->kind == SW_INSN_ADD ? "ADD" : "COPY");
  if (f->parents)
    sw_buf_puts(&b, " --parents");
  if (f->chown)
    sw_buf_printf(&b, " --chown=%s", f->chown);
  if (f->chmod)
    sw_buf_printf(&b, " --chmod=%s", f->chmod);
  for (size_t i = 0; srcs[i]; i++)
    sw_buf_printf(&b, " %s", srcs[i]);
  sw_buf_printf(&b, " %s # buildkit", dest);
  return sw_buf_steal(&b);
}

static int
gather(stage_run_t *r, const sw_step_t *step, const copy_flags_t *f, const sw_excludes_t *ex,
       sources_t *s, char ***srcs_out, char **dest_out, sw_error_t *err)
{
  const sw_insn_t *in = step->insn;
  bool is_add = in->kind == SW_INSN_ADD;
  size_t n = in->n_args;
  if (n < 2 && !(n == 1 && in->n_heredocs > 0))
    return sv_fail(r, err, "requires at least two arguments: SOURCE... DEST");
  if (sv_expand(r, in->args[n - 1], dest_out, err) < 0)
    return -1;
  char **srcs = xcalloc(1, sizeof(char *));
  *srcs_out = srcs;
  s->content = sw_keyhash_new("copy-sources");
  if ((step->from_stage >= 0 || step->from_image) && open_from(r, step, s, err) < 0)
    return -1;
  s->ctx = r->sv->o->ctx;
  if (step->from_context) {
    const sw_solve_opts_t *o = r->sv->o;
    s->ctx = NULL;
    for (size_t i = 0; o->named_paths && o->named_paths[i] && !s->ctx; i++)
      if (strcmp(o->named_paths[i], step->from_context) == 0)
        s->ctx = o->named_ctxs[i];
    if (s->ctx == NULL)
      return sv_fail(r, err, "--from: the --build-context `%s` is not open", step->from_context);
    sw_keyhash_str(s->content, "build-context");
  }
  for (size_t i = 0; i + 1 < n; i++) {
    const sw_heredoc_t *h = heredoc_source(in, in->args[i]);
    if (h) {
      sw_strv_push(srcs_out, in->args[i]);
      if (add_heredoc_source(r, s, h, err) < 0)
        return -1;
      continue;
    }
    _cleanup_free_ char *src = NULL;
    if (sv_expand(r, in->args[i], &src, err) < 0)
      return -1;
    sw_strv_push(srcs_out, src);
    if (sw_url_is_git(src) && (!is_add || s->from))
      return sv_fail(r, err, "%s: a git repository is a source of ADD only", src);
    if (f->keep_git_dir && !sw_url_is_git(src))
      return sv_fail(r, err, "--keep-git-dir applies to git sources only, not to `%s`", src);
    if (f->checksum && !sw_url_is_http(src))
      return sv_fail(r, err, "--checksum applies to http(s) URL sources only, not to `%s`", src);
    if (sw_url_is_git(src)) {
      if (add_git_source(r, s, src, f->keep_git_dir, err) < 0)
        return -1;
      continue;
    }
    if (sw_url_is_http(src) && (!is_add || s->from))
      return sv_fail(r, err, "%s: a URL is a source of ADD only (COPY takes no URL)", src);
    if (sw_url_is_http(src)) {
      if (add_url_source(r, s, src, f->checksum, err) < 0)
        return -1;
      continue;
    }
    int rc = s->from ? add_lower_source(r, s, src, f->parents, f->excludes, ex, err)
                     : add_context_source(r, s, src, f->parents, is_add, ex, f->excludes, err);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int
write_layer(stage_run_t *r, sources_t *s, const copy_flags_t *f, const sw_copy_opts_t *co,
            const char *dest, sw_layer_desc_t *layer, bool *has, sw_error_t *err)
{
  (void)f;
  sw_store_t *store = r->sv->o->store;
  char *dir = sw_store_mkdtemp(store, "copy-", err);
  if (dir == NULL)
    return sv_wrap(r, err);
  _cleanup_(sw_copy_freep) sw_copy_t *c = NULL;
  int rc = sw_copy_new(dir, co, &c, err);
  if (rc == 0)
    rc = sw_copy_set_dest(c, dest, err);
  for (size_t i = 0; i < s->n && rc == 0; i++) {
    item_t *it = &s->v[i];
    switch (it->kind) {
    case ITEM_CTX:
      rc = sw_copy_add_context(c, s->ctx, it->node, it->sub, err);
      break;
    case ITEM_LOWER:
      rc = sw_copy_add_lower(c, s->srcfs, it->canon, &it->st, it->host, it->sub, err);
      break;
    case ITEM_DATA:
      rc = sw_copy_add_data(c, it->name, it->data, strlen(it->data), err);
      break;
    case ITEM_ARCHIVE:
      rc = sw_copy_add_archive(c, it->host, err);
      break;
    case ITEM_URL: /* BuildKit's http source writes 0600; never unpacked */
      rc = sw_copy_add_file(c, it->name, it->host, 0600, it->mtime, err);
      break;
    case ITEM_GIT:
      rc = write_git(r, c, it, err);
      break;
    }
  }
  if (rc == 0)
    rc = sw_copy_finish(c, err);
  sw_copy_free(steal_ptr(&c));
  double t0 = sw_now();
  if (rc == 0) {
    rc = sv_commit_dir(r, dir, layer, has, err);
    sw_debug("layer commit %.3fs", sw_now() - t0);
  } else {
    sv_wrap(r, err);
    sw_error_t e = NULL;
    sw_rm_rf(dir, &e);
    sw_error_release(&e);
  }
  free(dir);
  return rc;
}

/* The flags that are part of a COPY's cache key. */
static char **
key_flags(stage_run_t *r, const copy_flags_t *f, const sw_copy_opts_t *co)
{
  char **flags = xcalloc(1, sizeof(char *));
  if (co->chown)
    sw_strv_push_take(&flags, xasprintf("chown=%u:%u", (unsigned)co->uid, (unsigned)co->gid));
  if (co->chmod >= 0)
    sw_strv_push_take(&flags, xasprintf("chmod=%o", (unsigned)co->chmod));
  if (f->link)
    sw_strv_push(&flags, "link");
  if (f->parents)
    sw_strv_push(&flags, "parents");
  for (size_t i = 0; f->excludes[i]; i++)
    sw_strv_push_take(&flags, xasprintf("exclude=%s", f->excludes[i]));
  if (r->sv->o->epoch != SW_EPOCH_NONE)
    sw_strv_push_take(&flags, xasprintf("epoch=%lld", (long long)r->sv->o->epoch));
  return flags;
}

/* --chown (resolved in the stage's /etc/passwd and /etc/group) and --chmod into co. */
static int
owner_and_mode(stage_run_t *r, sw_lowerfs_t *fs, const copy_flags_t *f, sw_copy_opts_t *co,
               sw_error_t *err)
{
  if (f->chown) {
    co->chown = true;
    if (sv_resolve_owner(fs, f->chown, &co->uid, &co->gid, err) < 0)
      return sv_wrap(r, err);
  }
  return f->chmod ? parse_chmod(r, f->chmod, &co->chmod, err) : 0;
}

/* The cache key of a COPY/ADD step. */
static void
copy_key(stage_run_t *r, const sw_insn_t *in, bool link, char *dest_abs, char *const *flags,
         const char *content, char key[SW_KEY_SIZE])
{
  char *args[] = {dest_abs, NULL};
  sw_cachekey_input_t ki = {
      /* --link: the layer does not depend on what is below it */
      .parent = link ? NULL : r->key,
      .instruction = in->kind == SW_INSN_ADD ? "ADD" : "COPY",
      .args = args,
      .flags = flags,
      .content = content,
      .platform = r->st->platform,
  };
  sw_cachekey_step(&ki, key);
}

/* A COPY --from's key without its content: the state it copies onto, from which stage, which
 * sources (as written, expanded), where and how. Its prediction is recorded under it. */
static void
predict_stem(stage_run_t *r, const sw_step_t *step, const copy_flags_t *f, char *const *srcs,
             const char *dest_abs, char *const *flags, char out[SW_KEY_SIZE])
{
  sw_keyhash_t *h = sw_keyhash_new("copy-from-stem");
  sw_keyhash_str(h, f->link ? "" : r->key);
  sw_keyhash_str(h, step->insn->kind == SW_INSN_ADD ? "ADD" : "COPY");
  sw_keyhash_u64(h, (uint64_t)step->from_stage);
  sw_keyhash_str(h, r->st->platform);
  sw_keyhash_str(h, dest_abs);
  sw_keyhash_strv(h, srcs);
  sw_keyhash_strv(h, flags);
  sw_keyhash_finish(h, out);
}

/* The stage's key after a COPY whose own key is `key`. */
static void
chain_key(stage_run_t *r, bool link, const char *key)
{
  if (link) {
    sw_keyhash_t *h = sw_keyhash_new("link-chain");
    sw_keyhash_str(h, r->key);
    sw_keyhash_str(h, key);
    sw_keyhash_finish(h, r->key);
  } else {
    memcpy(r->key, key, SW_KEY_SIZE);
  }
}

/* Speculation. `COPY --from=STAGE` normally waits for STAGE to end, then hashes what it copies.
 * In the article's Dockerfile that puts `setup.py egg_info` (the dependencies stage) in front
 * of everything the builder stage does after a version bump, though the requirements it
 * extracts rarely change. So while STAGE still works, the step takes the content its sources
 * had the last time it ran (the prediction, recorded under the step's stem), and if the cache
 * holds the step for that content, applies that layer and lets the stage go on at once. The
 * stage is built again once it is over (build_stage_verified in solve.c): a wrong prediction
 * costs the steps that ran on it, never a wrong image. 1: applied; 0: not possible (the step
 * runs the ordinary way, which also reports any error). */
static int
speculate(stage_run_t *r, const sw_step_t *step)
{
  const sw_solve_opts_t *o = r->sv->o;
  const sw_insn_t *in = step->insn;
  if (o->no_cache || o->cache_from || o->cache_log || r->verifying || in->n_heredocs > 0 ||
      in->n_args < 2 || sv_stage_over(r, step->from_stage))
    return 0;
  /* Only worth it when work follows that need not wait itself: a RUN later in the stage. */
  const sw_stage_t *st = r->st;
  bool seen = false, run_follows = false; /* (an ONBUILD trigger step is not in st->steps) */
  for (size_t i = 0; i < st->n_steps; i++) {
    run_follows = run_follows || (seen && st->steps[i].insn->kind == SW_INSN_RUN);
    seen = seen || &st->steps[i] == step;
  }
  if (!run_follows)
    return 0;
  sw_error_t e = NULL;
  copy_flags_t f = {0};
  _cleanup_(sw_lowerfs_freep) sw_lowerfs_t *fs = sv_lowerfs(r);
  _cleanup_strv_ char **srcs = xcalloc(1, sizeof(char *));
  _cleanup_strv_ char **flags = NULL;
  _cleanup_free_ char *dest = NULL, *dest_abs = NULL, *content = NULL, *hist = NULL;
  _cleanup_free_ char *name = NULL;
  sw_copy_opts_t co = {.chmod = -1};
  int rc = 0;
  if (copy_flags(r, in, &f, &e) < 0 || sv_expand(r, in->args[in->n_args - 1], &dest, &e) < 0 ||
      owner_and_mode(r, fs, &f, &co, &e) < 0)
    goto out;
  for (size_t i = 0; i + 1 < in->n_args; i++) {
    char *src = NULL;
    if (sv_expand(r, in->args[i], &src, &e) < 0)
      goto out;
    sw_strv_push_take(&srcs, src);
  }
  dest_abs = sv_abs_path(r, dest);
  flags = key_flags(r, &f, &co);
  char stem[SW_KEY_SIZE], key[SW_KEY_SIZE];
  predict_stem(r, step, &f, srcs, dest_abs, flags, stem);
  bool confirmed = false;
  if (sw_prediction_get(o->store, stem, &content, &confirmed, &e) <= 0 || !confirmed)
    goto out;
  copy_key(r, in, f.link, dest_abs, flags, content, key);
  sw_layer_desc_t layer;
  bool has = false;
  int64_t created = r->sv->now;
  if (sv_cache_peek(r, key, &layer, &has, &created, &e) != 1)
    goto out;
  name = sv_step_name(r, step);
  if (r->n_guesses == 0) /* from here on, what the stage shows may be canceled */
    sw_progress_track(&r->spec_ids, &r->n_spec_ids);
  int id = sw_progress_begin(o->progress, name);
  r->guesses = xrealloc(r->guesses, (r->n_guesses + 1) * sizeof(*r->guesses));
  r->guesses[r->n_guesses++] = (struct sv_guess){.step = step, .id = id, .at = r->n_spec_ids - 1};
  hist = copy_history(in, &f, srcs, dest);
  sv_apply_layer(r, has ? &layer : NULL, created, hist);
  chain_key(r, f.link, key);
  r->speculated = true;
  sw_progress_log(o->progress, id,
                  "--from=%s is still being built: going on with what it gave in the last "
                  "build (checked when it is done)",
                  sw_insn_flag(in, "from"));
  rc = 1;
out:
  sw_error_release(&e);
  copy_flags_clear(&f);
  return rc;
}

int
sv_step_copy(stage_run_t *r, const sw_step_t *step, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  const sw_insn_t *in = step->insn;
  if (step->from_stage >= 0 && speculate(r, step) == 1)
    return 0;
  /* Wait for the source stage before the step shows as started. */
  if (step->from_stage >= 0 && sv_wait_stage(r, step->from_stage) < 0)
    return sw_error(err, ECANCELED, "canceled");
  _cleanup_free_ char *name = sv_step_name(r, step);
  int id = sw_progress_begin(o->progress, name);
  copy_flags_t f;
  sources_t s = {0};
  _cleanup_strv_ char **srcs = NULL;
  _cleanup_free_ char *dest = NULL, *dest_abs = NULL, *hist = NULL;
  _cleanup_strv_ char **flags = NULL; /* declared before any goto: its cleanup runs at out */
  _cleanup_(sw_lowerfs_freep) sw_lowerfs_t *fs = sv_lowerfs(r);
  sw_excludes_t *ex = NULL;
  int rc = -1;

  if (copy_flags(r, in, &f, err) < 0)
    goto out;
  if (sw_excludes_new(f.excludes, &ex, err) < 0) {
    sv_wrap(r, err);
    goto out;
  }
  sw_copy_opts_t co = {.link_lower = true,
                       .chmod = -1,
                       .excludes = ex,
                       .now = r->sv->now,
                       .dest_fs = f.link ? NULL : fs};
  if (owner_and_mode(r, fs, &f, &co, err) < 0)
    goto out;
  double tg = sw_now();
  if (gather(r, step, &f, ex, &s, &srcs, &dest, err) < 0)
    goto out;
  sw_debug("%s:%d: %s: sources resolved and hashed in %.3fs", o->plan->df->path, in->line,
           sw_insn_kind_name(in->kind), sw_now() - tg);
  dest_abs = sv_abs_path(r, dest);
  bool many = s.n > 1 || s.wildcard || sw_strv_len(srcs) > 1;

  flags = key_flags(r, &f, &co);
  char content[SW_KEY_SIZE], key[SW_KEY_SIZE];
  sw_keyhash_u64(s.content, many);
  sw_keyhash_finish(s.content, content);
  s.content = NULL;
  bool guessed_wrong = false;
  if (step->from_stage >= 0 && !o->no_cache) {
    /* What the next build predicts while this source stage still works (speculate()). */
    char stem[SW_KEY_SIZE];
    _cleanup_free_ char *had = NULL;
    bool confirmed = false;
    predict_stem(r, step, &f, srcs, dest_abs, flags, stem);
    if (sw_prediction_get(o->store, stem, &had, &confirmed, err) < 0) {
      sv_wrap(r, err);
      goto out;
    }
    /* Confirmed when this build found what the last one did. */
    bool same = had && strcmp(had, content) == 0;
    if (!(same && confirmed) && !sw_userns_speculating() &&
        sw_prediction_put(o->store, stem, content, same, err) < 0) {
      sv_wrap(r, err);
      goto out;
    }
    guessed_wrong = r->verifying && sv_guess_settle(r, step, same);
  }
  copy_key(r, in, f.link, dest_abs, flags, content, key);
  hist = copy_history(in, &f, srcs, dest);

  sw_layer_desc_t layer;
  bool has = false;
  int64_t created = r->sv->now;
  int hit = sv_cache_lookup(r, key, &layer, &has, &created, err);
  if (hit < 0)
    goto out;
  if (guessed_wrong)
    sw_progress_log(o->progress, id,
                    "--from=%s gave other content than in the last build: the steps from here "
                    "on are built again",
                    sw_insn_flag(in, "from"));
  if (!hit) {
    double t0 = sw_now();
    if (write_layer(r, &s, &f, &co, dest_abs, &layer, &has, err) < 0)
      goto out;
    sw_debug("%s:%d: %s: layer written and committed in %.3fs", o->plan->df->path, in->line,
             sw_insn_kind_name(in->kind), sw_now() - t0);
    created = o->epoch != SW_EPOCH_NONE ? o->epoch : (int64_t)time(NULL);
    if (sv_cache_record(r, key, has ? &layer : NULL, created, err) < 0)
      goto out;
  }
  sv_apply_layer(r, has ? &layer : NULL, created, hist);
  chain_key(r, f.link, key);
  if (hit)
    sw_progress_cached(o->progress, id);
  else
    sw_progress_done(o->progress, id);
  rc = 0;
out:
  if (rc < 0 && err && *err)
    sw_progress_error(o->progress, id, (*err)->msg);
  copy_flags_clear(&f);
  sources_free(&s);
  sw_excludes_free(ex);
  return rc;
}

/* ---- WORKDIR ---- */

/* BuildKit's NormalizeWorkdir: a relative path is joined to the current one and cleaned; an
 * absolute one keeps its trailing slash ("/tmp/" stays so in WorkingDir and history; BuildKit
 * keeps it entirely as written, slipway cleans the rest: README, deliberate differences). */
static char *
normalize_workdir(const char *cur, const char *p)
{
  _cleanup_free_ char *joined =
      p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", cur[0] ? cur : "/", p);
  char *wd = sw_path_clean_abs(joined);
  if (p[0] == '/' && sw_str_has_suffix(p, "/") && strcmp(wd, "/") != 0) {
    char *slashed = xasprintf("%s/", wd);
    free(wd);
    wd = slashed;
  }
  return wd;
}

int
sv_step_workdir(stage_run_t *r, const sw_step_t *step, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  const sw_insn_t *in = step->insn;
  if (in->n_args < 1)
    return sv_fail(r, err, "WORKDIR requires exactly one argument");
  _cleanup_free_ char *p = NULL;
  if (sv_expand(r, in->args[0], &p, err) < 0)
    return -1;
  _cleanup_free_ char *wd = normalize_workdir(sv_workdir(r), p);
  json_object_set_new(sw_config_container(r->img->config), "WorkingDir", json_string(wd));
  _cleanup_free_ char *hist = xasprintf("WORKDIR %s", wd);
  _cleanup_free_ char *name = sv_step_name(r, step);
  if (strcmp(wd, "/") == 0) {
    sv_apply_layer(r, NULL, r->last_created, hist);
    return 0;
  }
  int id = sw_progress_begin(o->progress, name);
  char key[SW_KEY_SIZE];
  char *args[] = {wd, NULL};
  sw_cachekey_input_t ki = {.parent = r->key,
                            .instruction = "WORKDIR",
                            .args = args,
                            .user = sv_user(r),
                            .platform = r->st->platform};
  sw_cachekey_step(&ki, key);
  sw_layer_desc_t layer;
  bool has = false;
  int64_t created = r->sv->now;
  int hit = sv_cache_lookup(r, key, &layer, &has, &created, err);
  if (hit < 0)
    goto fail;
  if (!hit) {
    _cleanup_(sw_lowerfs_freep) sw_lowerfs_t *fs = sv_lowerfs(r);
    _cleanup_free_ char *canon = NULL, *host = NULL;
    struct stat st;
    sw_error_t e = NULL;
    bool exists = sw_lowerfs_lookup(fs, wd, true, &canon, &st, &host, &e) == 0;
    sw_error_release(&e);
    if (!exists) {
      uid_t uid = 0;
      gid_t gid = 0;
      if (sv_user(r)[0] && sv_resolve_owner(fs, sv_user(r), &uid, &gid, err) < 0) {
        sv_wrap(r, err);
        goto fail;
      }
      char *dir = sw_store_mkdtemp(o->store, "workdir-", err);
      if (dir == NULL) {
        sv_wrap(r, err);
        goto fail;
      }
      int rc = sw_copy_mkdir_layer(dir, fs, wd, uid, gid, r->sv->now, err);
      if (rc == 0)
        rc = sv_commit_dir(r, dir, &layer, &has, err);
      else {
        sw_rm_rf(dir, &e);
        sw_error_release(&e);
      }
      free(dir);
      if (rc < 0)
        goto fail;
    }
    created = o->epoch != SW_EPOCH_NONE ? o->epoch : (int64_t)time(NULL);
    if (sv_cache_record(r, key, has ? &layer : NULL, created, err) < 0)
      goto fail;
  }
  sv_apply_layer(r, has ? &layer : NULL, has ? created : r->last_created, hist);
  memcpy(r->key, key, sizeof(key));
  if (hit)
    sw_progress_cached(o->progress, id);
  else
    sw_progress_done(o->progress, id);
  return 0;
fail:
  sw_progress_error(o->progress, id, (*err)->msg);
  return -1;
}
