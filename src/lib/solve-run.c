/* slipway: RUN steps: argv (shell form through SHELL, exec form, heredocs as BuildKit runs
 * them), environment, --mount and --network, the cache key, and the run itself in the sandbox
 * over the stage's snapshots with a fresh upper dir that becomes the step's layer. */
#include "solve-private.h"

#include "ssh-forward.h"

#include "binfmt.h"
#include "copy.h"
#include "gotext.h"
#include "preflight.h"
#include "shellword.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

/* Everything a RUN's mounts need, kept alive until the process is done. */
typedef struct {
  sw_mount_t *m;
  size_t n;
  char **flags; /* key parts */
  char **hold;  /* strings the mounts point to */
  char ***lists;
  size_t nlists;
  int *locks;
  size_t nlocks;
  char **env;               /* secret env additions (process only) */
  char **tmpdirs;           /* removed when the step is over (context --mount views) */
  sw_ssh_proxy_t **proxies; /* ssh mounts' relays, running while the step does */
  size_t nproxies;
} mounts_t;

static void
mounts_free(mounts_t *ms)
{
  free(ms->m);
  sw_strv_free(ms->flags);
  sw_strv_free(ms->hold);
  for (size_t i = 0; i < ms->nlists; i++)
    sw_strv_free(ms->lists[i]);
  free(ms->lists);
  for (size_t i = 0; i < ms->nlocks; i++)
    close(ms->locks[i]);
  free(ms->locks);
  sw_strv_free(ms->env);
  for (size_t i = 0; i < ms->nproxies; i++) /* before their dirs go */
    sw_ssh_proxy_stop(ms->proxies[i]);
  free(ms->proxies);
  for (size_t i = 0; ms->tmpdirs && ms->tmpdirs[i]; i++) {
    sw_error_t e = NULL;
    if (sw_rm_rf(ms->tmpdirs[i], &e) < 0)
      sw_error_release(&e);
  }
  sw_strv_free(ms->tmpdirs);
}

static const char *
hold(mounts_t *ms, char *s)
{
  sw_strv_push_take(&ms->hold, s);
  return s;
}

static sw_mount_t *
add_mount(mounts_t *ms)
{
  ms->m = xrealloc(ms->m, (ms->n + 1) * sizeof(*ms->m));
  sw_mount_t *m = &ms->m[ms->n++];
  memset(m, 0, sizeof(*m));
  return m;
}

static char **
hold_list(mounts_t *ms, char **v)
{
  ms->lists = xrealloc(ms->lists, (ms->nlists + 1) * sizeof(char **));
  ms->lists[ms->nlists++] = v;
  return v;
}

static int
mount_cache(stage_run_t *r, mounts_t *ms, const sw_runmount_t *rm, const char *target,
            sw_error_t *err)
{
  sw_store_t *store = r->sv->o->store;
  /* As BuildKit, the cache's root owner and mode are part of what it is: the same id with
   * another uid, gid or mode is another cache. */
  _cleanup_free_ char *id =
      rm->uid < 0 && rm->gid < 0 && rm->mode == 0
          ? xstrdup(rm->id)
          : xasprintf("%s-u%ld-g%ld-m%o", rm->id, rm->uid, rm->gid, (unsigned)rm->mode);
  char *dir = sw_store_cache_mount_dir(store, id, err);
  if (dir == NULL)
    return sv_wrap(r, err);
  hold(ms, dir);
  if (rm->uid >= 0 || rm->gid >= 0) {
    struct stat st;
    if (stat(dir, &st) == 0)
      if (lchown(dir, rm->uid >= 0 ? (uid_t)rm->uid : st.st_uid,
                 rm->gid >= 0 ? (gid_t)rm->gid : st.st_gid) < 0)
        sw_debug("chown cache mount `%s`: %s", dir, strerror(errno));
  }
  if (rm->mode)
    chmod(dir, rm->mode);
  if (rm->sharing == 2) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      flock(fd, LOCK_EX); /* sharing=locked: one step at a time uses it */
      ms->locks = xrealloc(ms->locks, (ms->nlocks + 1) * sizeof(int));
      ms->locks[ms->nlocks++] = fd;
    }
  }
  sw_mount_t *m = add_mount(ms);
  m->kind = SW_MOUNT_BIND;
  m->source = dir;
  m->target = target;
  m->readonly = rm->readonly;
  /* The id and target shape the step; the cache's content never enters the key. */
  sw_strv_push_take(&ms->flags,
                    xasprintf("mount=cache,target=%s,id=%s,ro=%d", target, id, rm->readonly));
  return 0;
}

/* The context as COPY sees it: .dockerignore'd entries hidden by a whiteout layer over the
 * host directory (sw_context_mask); it costs a few mknods, however big the context. */
static int
context_view(stage_run_t *r, mounts_t *ms, sw_ctx_node_t *node, const char *host, char ***layers,
             sw_error_t *err)
{
  char *mask = sw_store_mkdtemp(r->sv->o->store, "mount-view-", err);
  size_t hidden = 0;
  if (mask == NULL)
    return sv_wrap(r, err);
  sw_strv_push_take(&ms->tmpdirs, mask);
  if (sw_context_mask(r->sv->o->ctx, node, mask, &hidden, err) < 0)
    return sv_wrap(r, err);
  char **v = hold_list(ms, xcalloc(3, sizeof(char *)));
  if (hidden)
    v[0] = xstrdup(mask);
  v[hidden ? 1 : 0] = xstrdup(host);
  *layers = v;
  return 0;
}

static int
mount_bind_context(stage_run_t *r, mounts_t *ms, const sw_runmount_t *rm, const char *target,
                   sw_error_t *err)
{
  sw_context_t *ctx = r->sv->o->ctx;
  const char *src = rm->source ? rm->source : ".";
  sw_ctx_node_t **nodes = NULL;
  size_t n = 0;
  _cleanup_free_ char *what =
      xasprintf("%s:%d: RUN --mount", r->sv->o->plan->df->path, r->cur->insn->line);
  if (sw_context_match(ctx, src, what, &nodes, &n, err) < 0)
    return -1;
  if (n != 1) {
    free(nodes);
    return sv_fail(r, err, "--mount source `%s` must name exactly one path", src);
  }
  sw_ctx_node_t *node = nodes[0];
  free(nodes);
  char hash[SW_HASH_HEX_SIZE];
  /* The key covers the content the mount shows: what .dockerignore leaves, as for COPY. */
  if (sw_context_hash(ctx, node, hash, err) < 0)
    return -1;
  const char *host = hold(ms, sw_context_host_path(ctx, node));
  sw_mount_t *m = add_mount(ms);
  m->target = target;
  char **layers = NULL;
  if (S_ISDIR(node->st.st_mode) && context_view(r, ms, node, host, &layers, err) < 0)
    return -1;
  if (layers && (layers[1] || !rm->readonly)) {
    /* Hidden entries, or writes (thrown away: never into the context): an overlay. */
    m->kind = SW_MOUNT_LAYERS;
    m->layers = layers;
    m->source = "/";
    m->readonly = rm->readonly;
  } else {
    m->kind = SW_MOUNT_BIND;
    m->source = host;
    m->readonly = true;
  }
  sw_strv_push_take(&ms->flags,
                    xasprintf("mount=bind,target=%s,context=%s,ro=%d", target, hash, rm->readonly));
  return 0;
}

static int
mount_bind_layers(stage_run_t *r, mounts_t *ms, const sw_runmount_t *rm, const char *target,
                  int stage, const char *image, sw_error_t *err)
{
  char **layers;
  const char *id;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  if (stage >= 0) {
    if (sv_wait_stage(r, stage) < 0)
      return sw_error(err, ECANCELED, "canceled");
    stage_run_t *s = sv_stage(r, stage);
    layers = hold_list(ms, sw_strv_dup(s->lower));
    id = s->key;
  } else {
    if (sv_image(r, image, &img, err) < 0)
      return -1;
    layers = hold_list(ms, sw_image_lowerdirs(r->sv->o->store, img));
    id = img->config_digest;
  }
  sw_mount_t *m = add_mount(ms);
  m->kind = SW_MOUNT_LAYERS;
  m->layers = layers;
  m->source = rm->source ? hold(ms, xstrdup(rm->source)) : "/";
  m->target = target;
  m->readonly = rm->readonly;
  sw_strv_push_take(&ms->flags, xasprintf("mount=bind,target=%s,from=%s,source=%s,ro=%d", target,
                                          id, m->source, rm->readonly));
  return 0;
}

static int
mount_secret(stage_run_t *r, mounts_t *ms, const sw_runmount_t *rm, const char *target,
             sw_error_t *err)
{
  const char *path = sw_env_get(r->sv->o->secrets, rm->id);
  if (path == NULL) {
    if (rm->required)
      return sv_fail(r, err, "secret `%s` is required: pass --secret id=%s,src=PATH", rm->id,
                     rm->id);
    return 0;
  }
  if (rm->env) {
    _cleanup_free_ char *val = NULL;
    sw_error_t e = NULL;
    if (sw_read_file(path, 1 << 20, &val, NULL, &e) < 0) {
      int rc = sv_fail(r, err, "secret `%s`: %s", rm->id, e->msg);
      sw_error_release(&e);
      return rc;
    }
    sw_env_set(&ms->env, rm->env, val);
  }
  if (target) {
    sw_mount_t *m = add_mount(ms);
    m->kind = SW_MOUNT_BIND;
    m->source = hold(ms, xstrdup(path));
    m->target = target;
    m->readonly = true;
  }
  /* Only that a secret is mounted there shapes the key; never its value. */
  sw_strv_push_take(&ms->flags, xasprintf("mount=secret,target=%s,id=%s,env=%s",
                                          target ? target : "", rm->id, rm->env ? rm->env : ""));
  return 0;
}

/* RUN --mount=type=ssh: a relay socket of the step's own (owner and mode as asked) bound at
 * the target, SSH_AUTH_SOCK pointing at the first one. Only the id and target shape the key. */
static int
mount_ssh(stage_run_t *r, mounts_t *ms, const sw_runmount_t *rm, const char *target,
          sw_error_t *err)
{
  const char *agent = sw_ssh_agents_get(r->sv->o->ssh, rm->id);
  if (agent == NULL) {
    if (rm->required)
      return sv_fail(r, err, "ssh agent `%s` is required: pass --ssh %s[=SOCKET|KEY]", rm->id,
                     rm->id);
    return 0;
  }
  if (target == NULL)
    target = hold(ms, xasprintf("/run/buildkit/ssh_agent.%zu", ms->nproxies));
  char *dir = sw_ssh_tmpdir(err);
  if (dir == NULL)
    return sv_wrap(r, err);
  sw_strv_push_take(&ms->tmpdirs, dir);
  sw_ssh_proxy_t *p = NULL;
  char *sock = NULL;
  if (sw_ssh_proxy_start(dir, agent, rm->uid >= 0 ? (uid_t)rm->uid : 0,
                         rm->gid >= 0 ? (gid_t)rm->gid : 0, rm->mode ? rm->mode : 0600, &p, &sock,
                         err) < 0)
    return sv_wrap(r, err);
  ms->proxies = xrealloc(ms->proxies, (ms->nproxies + 1) * sizeof(*ms->proxies));
  ms->proxies[ms->nproxies++] = p;
  sw_mount_t *m = add_mount(ms);
  m->kind = SW_MOUNT_BIND;
  m->source = hold(ms, sock);
  m->target = target;
  m->readonly = true;
  if (sw_env_get(ms->env, "SSH_AUTH_SOCK") == NULL)
    sw_env_set(&ms->env, "SSH_AUTH_SOCK", target);
  sw_strv_push_take(&ms->flags, xasprintf("mount=ssh,target=%s,id=%s", target, rm->id));
  return 0;
}

static int
one_mount(stage_run_t *r, mounts_t *ms, const sw_step_t *step, size_t i, const char *spec,
          sw_error_t *err)
{
  _cleanup_free_ char *expanded = NULL;
  if (sv_expand(r, spec, &expanded, err) < 0)
    return -1;
  sw_runmount_t rm;
  if (sw_runmount_parse(expanded, &rm, err) < 0)
    return sv_wrap(r, err);
  int rc = 0;
  const char *target = rm.target ? hold(ms, sv_abs_path(r, rm.target)) : NULL;
  switch (rm.type) {
  case SW_RUNMOUNT_CACHE:
    rc = mount_cache(r, ms, &rm, target, err);
    break;
  case SW_RUNMOUNT_BIND:
    if (step->mount_stages[i] >= 0 || step->mount_images[i])
      rc = mount_bind_layers(r, ms, &rm, target, step->mount_stages[i], step->mount_images[i], err);
    else
      rc = mount_bind_context(r, ms, &rm, target, err);
    break;
  case SW_RUNMOUNT_TMPFS: {
    sw_mount_t *m = add_mount(ms);
    m->kind = SW_MOUNT_TMPFS;
    m->target = target;
    m->size = rm.size;
    sw_strv_push_take(&ms->flags, xasprintf("mount=tmpfs,target=%s,size=%llu", target,
                                            (unsigned long long)rm.size));
    break;
  }
  case SW_RUNMOUNT_SECRET:
    rc = mount_secret(r, ms, &rm, target, err);
    break;
  case SW_RUNMOUNT_SSH:
    rc = mount_ssh(r, ms, &rm, target, err);
    break;
  }
  sw_runmount_clear(&rm);
  return rc;
}

static int
build_mounts(stage_run_t *r, const sw_step_t *step, mounts_t *ms, sw_error_t *err)
{
  _cleanup_strv_ char **specs = sw_insn_flag_all(step->insn, "mount");
  for (size_t i = 0; specs[i]; i++)
    if (one_mount(r, ms, step, i, specs[i], err) < 0)
      return -1;
  return 0;
}

/* Is `word` nothing but a heredoc marker ("<<EOF", "<<-EOF", "<<'EOF'")? */
static bool
only_heredoc(const char *word, const sw_heredoc_t *h)
{
  const char *p = word;
  while (*p >= '0' && *p <= '9')
    p++;
  if (!sw_str_has_prefix(p, "<<"))
    return false;
  p += 2;
  if (*p == '-')
    p++;
  size_t n = strlen(p);
  if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0])
    return strlen(h->name) == n - 2 && strncmp(p + 1, h->name, n - 2) == 0;
  return strcmp(p, h->name) == 0;
}

/* The argv of a RUN, as BuildKit builds it. *script gets a heredoc script to be mounted at
 * /dev/pipes/<name> and run directly (one heredoc starting with "#!"). */
static char **
run_argv(stage_run_t *r, const sw_insn_t *in, char **script, char **script_name)
{
  *script = NULL;
  *script_name = NULL;
  if (in->json && in->n_heredocs == 0)
    return sw_strv_dup(in->args);
  const char *cmd = in->n_args ? in->args[0] : "";
  _cleanup_free_ char *built = NULL;
  if (in->n_heredocs == 1 && only_heredoc(cmd, &in->heredocs[0])) {
    char *data = sw_heredoc_content(&in->heredocs[0]);
    if (sw_str_has_prefix(data, "#!")) {
      *script = data;
      *script_name = xstrdup(in->heredocs[0].name);
      char **v = NULL;
      sw_strv_push_take(&v, xasprintf("/dev/pipes/%s", in->heredocs[0].name));
      return v;
    }
    built = data;
  } else if (in->n_heredocs > 0) {
    sw_buf_t b = {0};
    sw_buf_puts(&b, cmd);
    for (size_t i = 0; i < in->n_heredocs; i++) {
      sw_buf_putc(&b, '\n');
      sw_buf_puts(&b, in->heredocs[i].content);
      sw_buf_puts(&b, in->heredocs[i].name);
    }
    built = sw_buf_steal(&b);
  } else {
    built = xstrdup(cmd);
  }
  char **v = sv_shell(r);
  sw_strv_push(&v, built);
  return v;
}

/* "RUN |2 A=1 B= /bin/sh -c make # buildkit" */
static char *
run_history(stage_run_t *r, char *const *argv)
{
  _cleanup_strv_ char **env = sv_expand_env(r);
  sw_buf_t b = {0};
  sw_buf_puts(&b, "RUN ");
  size_t nk = sw_strv_len(r->scope.keys);
  if (nk) {
    sw_buf_printf(&b, "|%zu ", nk);
    for (size_t i = 0; i < nk; i++) {
      const char *v = sw_env_get(env, r->scope.keys[i]);
      sw_buf_printf(&b, "%s=%s ", r->scope.keys[i], v ? v : "");
    }
  }
  for (size_t i = 0; argv[i]; i++)
    sw_buf_printf(&b, "%s%s", i ? " " : "", argv[i]);
  sw_buf_puts(&b, " # buildkit");
  return sw_buf_steal(&b);
}

static int
step_network(stage_run_t *r, const sw_insn_t *in, sw_net_t *net, sw_error_t *err)
{
  const char *n = sw_insn_flag(in, "network");
  *net = r->sv->o->network;
  if (n == NULL || strcmp(n, "default") == 0)
    return 0;
  if (strcmp(n, "none") == 0)
    *net = SW_NET_NONE;
  else if (strcmp(n, "host") == 0)
    *net = SW_NET_HOST;
  else
    return sv_fail(r, err, "--network must be default, none or host (not `%s`)", n);
  return 0;
}

/* RUN --security=insecure: a privileged step (every capability, no seccomp, nothing masked),
 * only with `build --allow security.insecure`, as BuildKit's entitlement. */
static int
step_security(stage_run_t *r, const sw_insn_t *in, bool *insecure, sw_error_t *err)
{
  const char *sec = sw_insn_flag(in, "security");
  *insecure = sec && strcmp(sec, "insecure") == 0;
  if (sec && !*insecure && strcmp(sec, "sandbox") != 0)
    return sv_fail(r, err, "--security must be sandbox or insecure (not `%s`)", sec);
  if (*insecure && !r->sv->o->allow_insecure)
    return sv_fail(r, err,
                   "--security=insecure is not allowed: build with `--allow security.insecure`");
  return 0;
}

struct output_ctx {
  sw_progress_t *p;
  int id;
};

static void
on_output(void *arg, const char *data, size_t len)
{
  struct output_ctx *o = arg;
  sw_progress_output(o->p, o->id, data, len);
}

/* `build --add-host HOST:IP`: the host's /etc/hosts plus one line per entry, bound over the
 * step's /etc/hosts (as Docker's extra hosts; never in a layer). */
static int
add_hosts_file(mounts_t *ms, const char *tmp, char *const *hosts, sw_error_t *err)
{
  sw_buf_t b = {0};
  _cleanup_free_ char *base = NULL;
  size_t len = 0;
  sw_error_t e = NULL;
  if (sw_read_file("/etc/hosts", 1 << 20, &base, &len, &e) == 0 && len > 0) {
    sw_buf_append(&b, base, len);
    if (base[len - 1] != '\n')
      sw_buf_puts(&b, "\n");
  }
  sw_error_release(&e);
  for (size_t i = 0; hosts[i]; i++) {
    size_t n = strcspn(hosts[i], ":=");
    sw_buf_printf(&b, "%s\t%.*s\n", hosts[i] + n + 1, (int)n, hosts[i]);
  }
  _cleanup_free_ char *path = xasprintf("%s/hosts", tmp);
  int rc = sw_write_file_atomic(path, b.data, b.len, 0644, err);
  sw_buf_free(&b);
  if (rc < 0)
    return -1;
  sw_mount_t *m = add_mount(ms);
  m->kind = SW_MOUNT_BIND;
  m->source = hold(ms, steal_ptr(&path));
  m->target = "/etc/hosts";
  m->readonly = true;
  return 0;
}

/* --add-host, --shm-size, --ulimit in a RUN's key (only when given: keys stay as they were). */
static void
run_limits_flags(const sw_solve_opts_t *o, char ***flags)
{
  for (size_t i = 0; o->add_hosts && o->add_hosts[i]; i++)
    sw_strv_push_take(flags, xasprintf("add-host=%s", o->add_hosts[i]));
  if (o->shm_size)
    sw_strv_push_take(flags, xasprintf("shm-size=%llu", (unsigned long long)o->shm_size));
  for (size_t i = 0; i < o->n_ulimits; i++)
    sw_strv_push_take(flags, xasprintf("ulimit=%d:%llu:%llu", o->ulimits[i].resource,
                                       (unsigned long long)o->ulimits[i].soft,
                                       (unsigned long long)o->ulimits[i].hard));
}

typedef struct {
  char **argv;
  char **env;
  mounts_t ms;
  sw_net_t net;
  bool insecure;
  char *script, *script_name;
} run_spec_t;

/* ---- the RUN commit overlapped with the next step ----
 * A layer of a stage that is not in the final image is committed as a snapshot + diffID: the
 * tar of the upper dir is hashed (every byte read) before the dir is renamed into the store.
 * The next step does not need the diffID to start: its key is made from this step's key, and
 * the finished upper dir can be one of its overlay lowers as it is (nothing writes to it any
 * more). So the hash runs on a worker thread while the next step runs; the rename, the cache
 * record and the layer are done in order by the stage's thread when it joins (sv_pending_join):
 * a RUN after its own process is over, any other step before it starts, the stage at its end.
 * The rename waits for the join so that no sandbox is being mounted over the path it moves. */
struct pending_commit {
  pthread_t thread;
  bool started;
  const sw_step_t *step;
  char *tmp;   /* the run's temp dir (upper + work), removed at the join */
  char *upper; /* r->lower[0] until the join */
  char *hist;
  char key[SW_KEY_SIZE];
  int64_t created;
  char diff_id[SW_DIGEST_LEN + 1];
  int64_t tar_size;
  double t_start, t_hashed;
  int rc;
  sw_error_t err;
};

static void *
pending_main(void *arg)
{
  struct pending_commit *p = arg;
  p->rc = sw_layer_hash_dir(p->upper, p->diff_id, &p->tar_size, &p->err);
  p->t_hashed = sw_now();
  return NULL;
}

/* Start hashing the finished upper dir (consumes tmp) and make it the stage's top layer. */
static void
pending_start(stage_run_t *r, const sw_step_t *step, char *tmp, const char *key, int64_t created,
              const char *hist)
{
  struct pending_commit *p = xcalloc(1, sizeof(*p));
  p->step = step;
  p->tmp = tmp;
  p->upper = xasprintf("%s/upper", tmp);
  p->hist = xstrdup(hist);
  memcpy(p->key, key, SW_KEY_SIZE);
  p->created = created;
  p->t_start = sw_now();
  if (pthread_create(&p->thread, NULL, pending_main, p) == 0)
    p->started = true;
  else
    pending_main(p); /* no thread: hash now */
  size_t n = sw_strv_len(r->lower);
  char **v = xcalloc(n + 2, sizeof(char *));
  v[0] = xstrdup(p->upper);
  memcpy(v + 1, r->lower, n * sizeof(char *));
  free(r->lower);
  r->lower = v;
  r->pending = p;
}

static void
pending_free(struct pending_commit *p)
{
  sw_error_t e = NULL;
  sw_rm_rf(p->tmp, &e);
  sw_error_release(&e);
  sw_error_release(&p->err);
  free(p->tmp);
  free(p->upper);
  free(p->hist);
  free(p);
}

/* Commit the hashed upper dir and record the step, in the order the steps ran. */
static int
pending_commit(stage_run_t *r, struct pending_commit *p, sw_error_t *err)
{
  if (p->rc < 0) {
    *err = steal_ptr(&p->err);
    return sv_wrap(r, err);
  }
  sw_layer_desc_t layer;
  if (sw_layer_commit_hashed(r->sv->o->store, p->upper, p->diff_id, p->tar_size, &layer, err) < 0)
    return sv_wrap(r, err);
  if (sv_cache_record(r, p->key, &layer, p->created, err) < 0)
    return -1;
  sv_apply_layer(r, &layer, p->created, p->hist);
  return 0;
}

int
sv_pending_join(stage_run_t *r, sw_error_t *err)
{
  struct pending_commit *p = r->pending;
  if (p == NULL)
    return 0;
  r->pending = NULL;
  double t0 = sw_now();
  if (p->started)
    pthread_join(p->thread, NULL);
  /* The upper dir leaves the stage's layers; its snapshot takes its place (sv_apply_layer). */
  free(r->lower[0]);
  memmove(r->lower, r->lower + 1, sw_strv_len(r->lower + 1) * sizeof(char *) + sizeof(char *));
  const sw_step_t *cur = r->cur;
  r->cur = p->step;
  int rc = pending_commit(r, p, err);
  r->cur = cur;
  sw_debug("%s:%d: RUN: layer hashed in %.3fs beside the next step, join waited %.3fs (%s)",
           r->sv->o->plan->df->path, p->step->insn->line, p->t_hashed - p->t_start,
           p->t_hashed > t0 ? p->t_hashed - t0 : 0.0, p->rc == 0 ? p->diff_id : "failed");
  pending_free(p);
  return rc;
}

/* A cwd missing from the image (e.g. removed after WORKDIR): runc creates it, root-owned 0755,
 * so Docker's layer has it; the sandbox would only supply it from its stub layer. */
static int
make_cwd(stage_run_t *r, const char *upper, sw_error_t *err)
{
  const char *cwd = sv_workdir(r);
  if (cwd[0] == '\0' || strcmp(cwd, "/") == 0)
    return 0;
  _cleanup_(sw_lowerfs_freep) sw_lowerfs_t *fs = sv_lowerfs(r);
  _cleanup_free_ char *canon = NULL, *host = NULL;
  struct stat st;
  sw_error_t e = NULL;
  int rc = sw_lowerfs_lookup(fs, cwd, true, &canon, &st, &host, &e);
  sw_error_release(&e);
  if (rc != -ENOENT)
    return 0; /* exists (or unreadable: the sandbox reports it) */
  if (sw_copy_mkdir_layer(upper, fs, cwd, 0, 0, r->sv->now, err) < 0)
    return sv_wrap(r, err);
  return 0;
}

/* Run the step's process. Its upper dir is then committed (*has_layer, *layer), or, in a stage
 * outside the final image, handed to a pending commit (*deferred: the caller records nothing). */
static int
execute(stage_run_t *r, run_spec_t *rs, int id, const char *key, const char *hist,
        sw_layer_desc_t *layer, bool *has_layer, bool *deferred, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  _cleanup_free_ char *tmp = sw_store_mkdtemp(o->store, "run-", err);
  if (tmp == NULL)
    return sv_wrap(r, err);
  _cleanup_free_ char *upper = xasprintf("%s/upper", tmp);
  _cleanup_free_ char *work = xasprintf("%s/work", tmp);
  int rc = -1;
  if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
    sw_error(err, errno, "mkdir in `%s`", tmp);
    goto out;
  }
  if (rs->script) {
    _cleanup_free_ char *pipes = xasprintf("%s/pipes", tmp);
    _cleanup_free_ char *file = xasprintf("%s/%s", pipes, rs->script_name);
    if (mkdir(pipes, 0755) < 0 ||
        sw_write_file_atomic(file, rs->script, strlen(rs->script), 0755, err) < 0) {
      if (err && !*err)
        sw_error(err, errno, "mkdir `%s`", pipes);
      goto out;
    }
    sw_mount_t *m = add_mount(&rs->ms);
    m->kind = SW_MOUNT_BIND;
    m->source = hold(&rs->ms, xstrdup(pipes));
    m->target = "/dev/pipes";
    m->readonly = true;
  }
  if (o->add_hosts && add_hosts_file(&rs->ms, tmp, o->add_hosts, err) < 0)
    goto out;
  if (make_cwd(r, upper, err) < 0)
    goto out;
  for (size_t i = 0; rs->ms.env && rs->ms.env[i]; i++) {
    _cleanup_free_ char *k = xstrndup(rs->ms.env[i], strcspn(rs->ms.env[i], "="));
    sw_env_set(&rs->env, k, strchr(rs->ms.env[i], '=') + 1);
  }

  struct output_ctx octx = {.p = o->progress, .id = id};
  sw_sandbox_opts_t so;
  sw_sandbox_opts_init(&so);
  so.lowerdirs = r->lower;
  so.upperdir = upper;
  so.workdir = work;
  so.argv = rs->argv;
  so.env = rs->env;
  so.cwd = sv_workdir(r)[0] ? sv_workdir(r) : "/";
  so.user = sv_user(r);
  so.network = rs->net;
  if (rs->insecure) {
    so.privileged = true;
    so.seccomp_unconfined = true;
    so.caps = SW_CAPS_ALL;
  }
  so.mounts = rs->ms.m;
  so.n_mounts = rs->ms.n;
  so.shm_size = o->shm_size;
  so.rlimits = o->ulimits;
  so.n_rlimits = o->n_ulimits;
  so.stdin_fd = SW_STDIO_NULL;
  so.on_output = on_output;
  so.output_ctx = &octx;
  sw_sandbox_status_t st = {0};
  if (sw_solve_interrupted()) { /* Ctrl-C came after the step started: do not start it */
    sv_fail(r, err, "interrupted");
    goto out;
  }
  double t0 = sw_now();
  if (sw_sandbox_run(&so, &st, err) < 0) {
    sv_wrap(r, err);
    goto out;
  }
  /* The previous RUN's layer was hashed while this process ran: its record and layer come
   * before this step's. */
  if (sv_pending_join(r, err) < 0)
    goto out;
  if (st.exit_code != 0 || st.signal != 0) {
    _cleanup_free_ char *cmd = NULL;
    sw_buf_t b = {0};
    for (size_t i = 0; rs->argv[i]; i++)
      sw_buf_printf(&b, "%s%s", i ? " " : "", rs->argv[i]);
    cmd = sw_buf_steal(&b);
    if (sw_solve_interrupted())
      sv_fail(r, err, "interrupted");
    else if (st.signal)
      sv_fail(r, err, "process \"%s\" did not complete successfully: killed by signal %d", cmd,
              st.signal);
    else
      sv_fail(r, err, "process \"%s\" did not complete successfully: exit code: %d", cmd,
              st.exit_code);
    goto out;
  }
  /* The upper dir is the step's diff: commit it as is (no walk of the image). */
  double t1 = sw_now();
  if (!sv_in_final_image(r) && !sv_dir_empty(upper)) {
    int64_t created = o->epoch != SW_EPOCH_NONE ? o->epoch : (int64_t)time(NULL);
    sw_debug("%s:%d: RUN: process %.3fs, layer hashed beside the next step", o->plan->df->path,
             r->cur->insn->line, t1 - t0);
    pending_start(r, r->cur, steal_ptr(&tmp), key, created, hist);
    *deferred = true;
    return 0;
  }
  if (sv_commit_dir(r, upper, layer, has_layer, err) < 0)
    goto out;
  sw_debug("%s:%d: RUN: process %.3fs, layer commit %.3fs (%s)", o->plan->df->path,
           r->cur->insn->line, t1 - t0, sw_now() - t1, *has_layer ? layer->diff_id : "no change");
  rc = 0;
out:;
  sw_error_t e = NULL;
  sw_rm_rf(tmp, &e);
  sw_error_release(&e);
  return rc;
}

int
sv_step_run(stage_run_t *r, const sw_step_t *step, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  const sw_insn_t *in = step->insn;
  run_spec_t rs = {0};
  for (size_t i = 0; i < step->n_mounts; i++)
    if (step->mount_stages[i] >= 0 && sv_wait_stage(r, step->mount_stages[i]) < 0)
      return sw_error(err, ECANCELED, "canceled");
  _cleanup_free_ char *name = sv_step_name(r, step);
  int id = sw_progress_begin(o->progress, name);
  int rc = -1;
  _cleanup_strv_ char **kenv = NULL;
  _cleanup_free_ char *hist = NULL;

  rs.argv = run_argv(r, in, &rs.script, &rs.script_name);
  {
    _cleanup_strv_ char **cenv = sv_config_env(r);
    rs.env = sw_scope_run_env(&r->scope, o->plan, cenv);
  }
  if (step_network(r, in, &rs.net, err) < 0 || step_security(r, in, &rs.insecure, err) < 0 ||
      build_mounts(r, step, &rs.ms, err) < 0)
    goto out;
  if (rs.net == SW_NET_NONE)
    sw_strv_push(&rs.ms.flags, "network=none");
  if (rs.insecure)
    sw_strv_push(&rs.ms.flags, "security=insecure");
  if (o->epoch != SW_EPOCH_NONE)
    sw_strv_push_take(&rs.ms.flags, xasprintf("epoch=%lld", (long long)o->epoch));
  run_limits_flags(o, &rs.ms.flags);
  kenv = sv_expand_env(r); /* proxy args reach the process, never the key (BuildKit) */

  char key[SW_KEY_SIZE];
  char script_hash[SW_HASH_HEX_SIZE];
  if (rs.script)
    sw_sha256_hex(rs.script, strlen(rs.script), script_hash);
  sw_cachekey_input_t ki = {
      .parent = r->key,
      .instruction = "RUN",
      .args = rs.argv,
      .env = kenv,
      .user = sv_user(r),
      .workdir = sv_workdir(r),
      .flags = rs.ms.flags,
      .content = rs.script ? script_hash : NULL,
      .platform = r->st->platform,
  };
  sw_cachekey_step(&ki, key);
  hist = run_history(r, rs.argv);

  sw_layer_desc_t layer;
  bool has_layer = false;
  int64_t created = r->sv->now;
  int hit = sv_cache_lookup(r, key, &layer, &has_layer, &created, err);
  if (hit < 0)
    goto out;
  if (hit) {
    if (sv_pending_join(r, err) < 0)
      goto out;
    sv_apply_layer(r, has_layer ? &layer : NULL, created, hist);
    memcpy(r->key, key, sizeof(key));
    sw_progress_cached(o->progress, id);
    rc = 0;
    goto out;
  }
  bool deferred = false;
  /* A package index this step's environment names refuses connections: say so, do not run. */
  if (o->index_down && o->index_down->arg && sw_env_get(rs.env, o->index_down->arg)) {
    sw_error(err, 0, "%s", o->index_down->msg);
    goto out;
  }
  /* A foreign stage's programs run through binfmt_misc: say what is missing before running. */
  if (sw_binfmt_ensure(r->st->platform, err) < 0) {
    sv_wrap(r, err);
    goto out;
  }
  if (execute(r, &rs, id, key, hist, &layer, &has_layer, &deferred, err) < 0)
    goto out;
  if (!deferred) {
    created = o->epoch != SW_EPOCH_NONE ? o->epoch : (int64_t)time(NULL);
    if (sv_cache_record(r, key, has_layer ? &layer : NULL, created, err) < 0)
      goto out;
    sv_apply_layer(r, has_layer ? &layer : NULL, created, hist);
  }
  memcpy(r->key, key, sizeof(key));
  sw_progress_done(o->progress, id);
  rc = 0;
out:
  if (rc < 0 && err && *err) {
    _cleanup_free_ char *tail = sw_progress_tail(o->progress, id, 10);
    sw_progress_error(o->progress, id, (*err)->msg);
    if (tail[0] && !sw_solve_interrupted()) {
      size_t n = strlen(tail);
      if (tail[n - 1] == '\n')
        tail[n - 1] = '\0';
      sw_error_t e = *err;
      char *msg = xasprintf("%s\n--- last lines of its output ---\n%s", e->msg, tail);
      free(e->msg);
      e->msg = msg;
    }
  }
  sw_strv_free(rs.argv);
  sw_strv_free(rs.env);
  mounts_free(&rs.ms);
  free(rs.script);
  free(rs.script_name);
  return rc;
}
