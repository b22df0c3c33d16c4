/* slipway: the solver: scheduling of stages, base images, config-only instructions and the
 * helpers the step implementations share; see solve.h. */
#include "solve-private.h"

#include "gotext.h"
#include "userns.h"
#include "platform.h"
#include "registry.h"
#include "shellword.h"

#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static volatile sig_atomic_t interrupted;

void
sw_solve_interrupt(void)
{
  interrupted = 1;
  sw_sandbox_kill_all();
}

bool
sw_solve_interrupted(void)
{
  return interrupted != 0;
}

/* ---- small helpers ---- */

static const sw_dockerfile_t *
df_of(stage_run_t *r)
{
  return r->sv->o->plan->df;
}

int
sv_fail(stage_run_t *r, sw_error_t *err, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  const sw_insn_t *in = r->cur ? r->cur->insn : r->st->from;
  return sw_error(err, 0, "%s:%d: %s%s: %s", df_of(r)->path, in->line,
                  r->cur && r->cur->onbuild ? "ONBUILD " : "", sw_insn_kind_name(in->kind), msg);
}

int
sv_wrap(stage_run_t *r, sw_error_t *err)
{
  const sw_insn_t *in = r->cur ? r->cur->insn : r->st->from;
  return sw_error_wrap(err, "%s:%d: %s", df_of(r)->path, in->line, sw_insn_kind_name(in->kind));
}

static json_t *
container(stage_run_t *r)
{
  return sw_config_container(r->img->config);
}

static const char *
config_str(stage_run_t *r, const char *key)
{
  json_t *v = json_object_get(container(r), key);
  return json_is_string(v) ? json_string_value(v) : "";
}

const char *
sv_user(stage_run_t *r)
{
  return config_str(r, "User");
}

const char *
sv_workdir(stage_run_t *r)
{
  return config_str(r, "WorkingDir");
}

static char **
json_strv(json_t *a)
{
  char **v = xcalloc(1, sizeof(char *));
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e)
  {
    if (json_is_string(e))
      sw_strv_push(&v, json_string_value(e));
  }
  return v;
}

char **
sv_shell(stage_run_t *r)
{
  json_t *s = json_object_get(container(r), "Shell");
  if (json_is_array(s) && json_array_size(s) > 0)
    return json_strv(s);
  char **v = NULL;
  sw_strv_push(&v, "/bin/sh");
  sw_strv_push(&v, "-c");
  return v;
}

char **
sv_config_env(stage_run_t *r)
{
  return json_strv(json_object_get(container(r), "Env"));
}

char **
sv_expand_env(stage_run_t *r)
{
  _cleanup_strv_ char **cenv = sv_config_env(r);
  return sw_scope_env(&r->scope, cenv);
}

int
sv_expand(stage_run_t *r, const char *word, char **out, sw_error_t *err)
{
  _cleanup_strv_ char **env = sv_expand_env(r);
  if (sw_word_expand(word, env, df_of(r)->escape, out, err) < 0)
    return sv_wrap(r, err);
  return 0;
}

char *
sv_abs_path(stage_run_t *r, const char *p)
{
  if (p[0] == '/')
    return xstrdup(p);
  const char *wd = sv_workdir(r);
  if (wd[0] == '\0')
    wd = "/";
  if (strcmp(p, ".") == 0 || p[0] == '\0')
    return xasprintf("%s%s", wd, sw_str_has_suffix(wd, "/") ? "" : "/");
  return xasprintf("%s%s%s", wd, sw_str_has_suffix(wd, "/") ? "" : "/", p);
}

sw_lowerfs_t *
sv_lowerfs(stage_run_t *r)
{
  return sw_lowerfs_new(r->lower);
}

stage_run_t *
sv_stage(stage_run_t *r, int index)
{
  return &r->sv->runs[index];
}

int
sv_wait_stage(stage_run_t *r, int index)
{
  solver_t *sv = r->sv;
  stage_run_t *s = &sv->runs[index];
  pthread_mutex_lock(&sv->sh->lock);
  sv->sh->waiting++;
  while (!s->done && !sv->sh->failed)
    pthread_cond_wait(&sv->sh->cond, &sv->sh->lock);
  sv->sh->waiting--;
  bool ok = s->done && !s->failed;
  pthread_mutex_unlock(&sv->sh->lock);
  return ok ? 0 : -1;
}

/* A stage's base (or COPY --from / RUN --mount image) for the stage's platform. A name of an
 * index gives its entry for the platform; a name of an image of that platform, the image. When
 * the store has no image of the platform under the name, it is pulled for it, as docker does.
 * If the name held images of other platforms already (the other targets of a build of
 * several, or an earlier pull), the pulled one does not take the name from them: an index of
 * them all, made here, does, so that every platform finds its own next time, without the
 * registry and from the same pull. Failing the pull (offline, an imported image), a name of
 * one image of another platform gives that image, with InvalidBaseImagePlatform
 * (stage_platform_config), as BuildKit. */
static int
stage_image_locked(stage_run_t *r, const char *ref, sw_image_t **out, sw_error_t *err)
{
  sw_store_t *s = r->sv->o->store;
  const char *want = r->st->platform;
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  _cleanup_free_ char *lacks = NULL; /* what the index in the store says it has */

  int f = sw_index_get(s, ref, &idx, err);
  if (f < 0)
    return -1;
  if (f == 1) {
    sw_error_t e = NULL;
    if (sw_index_entry_for(idx, want, &e) != NULL)
      return sw_image_get_platform(s, ref, want, out, err);
    lacks = xstrdup(e->msg);
    sw_error_release(&e);
  } else {
    f = sw_image_get(s, ref, out, err);
    if (f < 0)
      return -1;
    if (f == 1) {
      _cleanup_free_ char *has = sw_platform_of_config((*out)->config);
      if (strcmp(has, want) == 0)
        return 1;
    }
  }

  /* A pull unpacks as it downloads, which a try outside the user namespace may not: go inside
   * before downloading anything. */
  _cleanup_free_ char *why = xasprintf("pulling `%s` for %s", ref, want);
  if (sw_userns_need(why, err) < 0)
    return -1;
  sw_registry_opts_t ro = {.quiet = true, .platform = want, .keep_names = true};
  sw_image_t *mine = NULL;
  sw_error_t perr = NULL;
  _cleanup_free_ char *got = NULL;
  if (sw_registry_pull(s, ref, &ro, &mine, &perr) < 0 || mine == NULL) {
    if (perr == NULL)
      sw_error(&perr, 0, "pull %s: no image for %s", ref, want);
    if (*out) { /* one image of another platform: used, with the warning */
      sw_debug("%s: %s", why, perr->msg);
      sw_error_release(&perr);
      return 1;
    }
    *err = perr;
    if (lacks)
      return sw_error_wrap(err, "%s; and from its registry", lacks);
    return sw_error_wrap(err,
                         "`%s` is not in the store and could not be pulled (or load it: "
                         "`slipway import`, `slipway load`)",
                         ref);
  }
  /* A registry's image of one platform, not an index: used whatever its platform, with the
   * warning, as BuildKit. */
  got = sw_platform_of_config(mine->config);
  sw_error_t ierr = NULL;
  if (sw_index_name_platform(s, ref, mine->config_digest, got, &ierr) < 0) {
    sw_warn("%s: %s", ref, ierr->msg);
    sw_error_release(&ierr);
  }
  sw_image_free(*out);
  *out = mine;
  return 1;
}

static int
stage_image(stage_run_t *r, const char *ref, sw_image_t **out, sw_error_t *err)
{
  /* The targets of one build take turns: each reads the name, then may grow it into an index. */
  pthread_mutex_t *m = r->sv->label ? &r->sv->sh->base_lock : NULL;
  if (m)
    pthread_mutex_lock(m);
  int f = stage_image_locked(r, ref, out, err);
  if (m)
    pthread_mutex_unlock(m);
  return f;
}

int
sv_image(stage_run_t *r, const char *ref, sw_image_t **out, sw_error_t *err)
{
  int f = stage_image(r, ref, out, err);
  if (f < 0)
    return sv_wrap(r, err);
  if (f == 0)
    return sv_fail(r, err,
                   "image `%s` is not in the store: load it first (`slipway import`, `slipway "
                   "load` or `slipway pull`)",
                   ref);
  return 0;
}

/* BuildKit's label of a stage in a build of several platforms: the platform it runs on, and
 * "->ARCH" of the target when that differs and the stage declared a TARGET* arg
 * ("linux/amd64->arm64": cross-compiling). */
static char *
platform_label(stage_run_t *r)
{
  const char *target = r->sv->o->plan->platform, *on = r->st->platform;
  bool targets = false;
  for (size_t i = 0; r->scope.keys && r->scope.keys[i]; i++)
    targets = targets || sw_str_has_prefix(r->scope.keys[i], "TARGET");
  if (!targets || strcmp(on, target) == 0)
    return xasprintf("%s ", on);
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL, *tos = NULL, *a = NULL, *v = NULL;
  sw_platform_split(target, &tos, &arch, &variant);
  sw_platform_split(on, &os, &a, &v);
  if (strcmp(os, tos) != 0)
    return xasprintf("%s->%s ", on, target);
  return xasprintf("%s->%s%s%s ", on, arch, variant[0] ? "/" : "", variant);
}

/* "[linux/arm64 build 2/5] " as BuildKit names a step: the platform when the build has several
 * targets, the stage's name, the step's number. */
static char *
step_prefix(stage_run_t *r)
{
  const sw_stage_t *st = r->st;
  int width = st->total >= 100 ? 3 : st->total >= 10 ? 2 : 1;
  _cleanup_free_ char *label = r->sv->label ? platform_label(r) : xstrdup("");
  return xasprintf("[%s%s%s%*d/%d] ", label, st->display, st->display[0] ? " " : "", width,
                   r->step_no, st->total);
}

char *
sv_step_name(stage_run_t *r, const sw_step_t *step)
{
  const sw_insn_t *in = step->insn;
  const char *text = in->original ? in->original : in->name;
  if (step->numbered)
    r->step_no++;
  _cleanup_free_ char *prefix = step_prefix(r);
  /* One line: continuation newlines and heredoc bodies are not part of the name. */
  size_t n = strcspn(text, "\n");
  return xasprintf("%s%s%.*s%s", prefix, step->onbuild ? "ONBUILD " : "", (int)n, text,
                   text[n] ? " ..." : "");
}

int
sv_resolve_owner(sw_lowerfs_t *fs, const char *spec, uid_t *uid, gid_t *gid, sw_error_t *err)
{
  _cleanup_free_ char *passwd = NULL, *group = NULL;
  sw_error_t e = NULL;
  if (sw_lowerfs_read(fs, "/etc/passwd", 1 << 22, &passwd, NULL, &e) < 0 && e) {
    sw_error_release(&e);
  }
  if (sw_lowerfs_read(fs, "/etc/group", 1 << 22, &group, NULL, &e) < 0 && e) {
    sw_error_release(&e);
  }
  const char *colon = strchr(spec, ':');
  _cleanup_free_ char *user = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
  sw_user_t u = {0};
  if (sw_user_resolve(user, passwd, group, &u, err) < 0)
    return -1;
  *uid = u.uid;
  bool numeric = user[0] && strspn(user, "0123456789") == strlen(user);
  *gid = numeric ? (gid_t)u.uid : u.gid;
  sw_user_clear(&u);
  if (colon) {
    _cleanup_free_ char *g = xasprintf("0:%s", colon + 1);
    if (sw_user_resolve(g, passwd, group, &u, err) < 0)
      return -1;
    *gid = u.gid;
    sw_user_clear(&u);
  }
  return 0;
}

/* ---- cache records ---- */

/* A record of a layer committed without a blob (no "blob" member): its snapshot, if it is
 * still there; the blob is made when an image needs it (sw_image_make_blobs). */
static bool
record_snapshot(sw_store_t *store, json_t *j, sw_layer_desc_t *layer)
{
  const char *diff = json_string_value(json_object_get(j, "layer"));
  if (!diff || !sw_digest_valid(diff))
    return false;
  _cleanup_free_ char *snap = sw_snapshot_path(store, diff);
  if (access(snap, F_OK) < 0)
    return false;
  snprintf(layer->diff_id, sizeof(layer->diff_id), "%s", diff);
  return true;
}

/* The blob a record names, if it and the snapshot are still there. (The record keeps its layer
 * alive in the store, so this is a sanity check against a store edited by hand.) */
static bool
record_blob(sw_store_t *store, json_t *j, sw_layer_desc_t *layer)
{
  json_t *b = json_object_get(j, "blob");
  if (b == NULL)
    return record_snapshot(store, j, layer);
  const char *diff = json_string_value(json_object_get(j, "layer"));
  const char *digest = json_string_value(json_object_get(b, "digest"));
  const char *mt = json_string_value(json_object_get(b, "mediaType"));
  json_t *size = json_object_get(b, "size");
  if (!diff || !digest || !mt || !json_is_integer(size) || !sw_digest_valid(diff) ||
      !sw_digest_valid(digest) || strlen(mt) >= sizeof(layer->media_type))
    return false;
  _cleanup_free_ char *snap = sw_snapshot_path(store, diff);
  if (access(snap, F_OK) < 0 || !sw_blob_exists(store, digest))
    return false;
  snprintf(layer->diff_id, sizeof(layer->diff_id), "%s", diff);
  snprintf(layer->digest, sizeof(layer->digest), "%s", digest);
  snprintf(layer->media_type, sizeof(layer->media_type), "%s", mt);
  layer->size = json_integer_value(size);
  return true;
}

/* For --cache-to: the step's record, with the layer below it and the step before it in the
 * stage (the chain BuildKit's cache config keeps). Call with r->img the state before the step. */
static void
cache_log(stage_run_t *r, const char *key, const sw_layer_desc_t *layer, int64_t created)
{
  sw_cache_log_t *l = r->sv->o->cache_log;
  if (l == NULL)
    return;
  sw_cache_entry_t e = {.has_layer = layer != NULL, .created = created};
  snprintf(e.key, sizeof(e.key), "%s", key);
  if (layer)
    e.layer = *layer;
  if (r->img->n_layers)
    snprintf(e.parent, sizeof(e.parent), "%s", r->img->layers[r->img->n_layers - 1].diff_id);
  /* The step before: the stage's previous record, else the last one of the stage it is FROM
   * (finished before this stage started). */
  pthread_mutex_lock(&l->lock);
  for (int st = r->st->index; st >= 0 && !e.parent_key[0];
       st = r->sv->o->plan->stages[st].base_stage)
    for (size_t i = l->n; i-- > 0;)
      if (l->v[i].stage == st) {
        snprintf(e.parent_key, sizeof(e.parent_key), "%s", l->v[i].e.key);
        break;
      }
  pthread_mutex_unlock(&l->lock);
  sw_cache_log_add(l, r->st->index, &e);
}

/* A local miss: the --cache-from records may have the key. Its layer is fetched now and the
 * record is written to the local store too, so the next build hits locally. A download that
 * fails is a warning and a miss: the step runs. A layer refused at the door (it would leave its
 * root, or is not what the record says) fails the build: the cache is hostile or broken. */
static int
remote_lookup(stage_run_t *r, const char *key, sw_layer_desc_t *layer, bool *has_layer,
              int64_t *created, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  const sw_cache_entry_t *e = sw_rcache_find(o->cache_from, key);
  if (e == NULL)
    return 0;
  if (sv_pending_join(r, err) < 0)
    return -1;
  memset(layer, 0, sizeof(*layer));
  *has_layer = e->has_layer;
  *created = e->created;
  if (e->has_layer) {
    sw_error_t ferr = NULL;
    int f = sw_rcache_fetch(o->cache_from, o->store, e, layer, &ferr);
    if (f == -2) {
      *err = ferr;
      return sw_error_wrap(err, "%s:%d: --cache-from record %s", o->plan->df->path,
                           r->cur ? r->cur->insn->line : 0, key);
    }
    if (f < 0) {
      sw_warn("%s:%d: cache record %s: %s; running the step", o->plan->df->path,
              r->cur ? r->cur->insn->line : 0, key, ferr->msg);
      sw_error_release(&ferr);
      return 0;
    }
  }
  if (sv_cache_record(r, key, e->has_layer ? layer : NULL, *created, err) < 0)
    return -1;
  return 1;
}

int
sv_cache_peek(stage_run_t *r, const char *key, sw_layer_desc_t *layer, bool *has_layer,
              int64_t *created, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  _cleanup_free_ char *val = NULL;
  int f = sw_cache_get(o->store, key, &val, err);
  if (f < 0)
    return f;
  if (f == 0)
    return o->cache_from ? remote_lookup(r, key, layer, has_layer, created, err) : 0;
  json_error_t je;
  json_t *j = json_loads(val, 0, &je);
  if (j == NULL)
    return 0; /* unreadable record: run the step again */
  json_t *l = json_object_get(j, "layer");
  json_t *c = json_object_get(j, "created");
  int found = 1;
  memset(layer, 0, sizeof(*layer));
  *has_layer = json_is_string(l);
  *created = json_is_integer(c) ? json_integer_value(c) : r->sv->now;
  if (*has_layer && record_blob(o->store, j, layer)) {
    found = 1; /* the record names the blob: two stats instead of a query */
  } else if (*has_layer) {
    const char *media = o->comp.codec ? o->comp.codec->oci_media_type : NULL;
    found = sw_layer_get(o->store, json_string_value(l), media, layer, err);
    if (found == 0)
      sw_debug("cache record %s: layer %s is gone, running the step", key, json_string_value(l));
  }
  json_decref(j);
  if (found == 0 && o->cache_from)
    return remote_lookup(r, key, layer, has_layer, created, err);
  if (found == 1 && o->cache_log) {
    if (sv_pending_join(r, err) < 0)
      return -1;
    cache_log(r, key, *has_layer ? layer : NULL, *created);
  }
  return found;
}

static void
strv_remove(char **v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp(v[i], s) == 0) {
      free(v[i]);
      memmove(v + i, v + i + 1, sw_strv_len(v + i + 1) * sizeof(char *) + sizeof(char *));
      return;
    }
}

/* Give up a claimed key (recorded, or its stage is over) and wake the stages waiting for it.
 * recorded: its record was written by this build (a --no-cache build then takes it). */
static void
release_claim_recorded(stage_run_t *r, const char *key, bool recorded)
{
  solver_t *sv = r->sv;
  pthread_mutex_lock(&sv->sh->lock);
  if (recorded && !sw_strv_contains(sv->sh->built, key))
    sw_strv_push(&sv->sh->built, key);
  strv_remove(sv->sh->inflight, key);
  strv_remove(r->claims, key);
  pthread_cond_broadcast(&sv->sh->cond);
  pthread_mutex_unlock(&sv->sh->lock);
}

static void
release_claim(stage_run_t *r, const char *key)
{
  release_claim_recorded(r, key, false);
}

/* With --no-cache, only the records this build wrote are hits. */
static bool
may_hit(solver_t *sv, const char *key)
{
  if (!sv->o->no_cache)
    return true;
  pthread_mutex_lock(&sv->sh->lock);
  bool built = sw_strv_contains(sv->sh->built, key);
  pthread_mutex_unlock(&sv->sh->lock);
  return built;
}

static void
release_claims(stage_run_t *r)
{
  while (r->claims && r->claims[0]) {
    _cleanup_free_ char *k = xstrdup(r->claims[0]);
    release_claim(r, k);
  }
}

/* Without this, two stages that start with the same steps (FROM one base, the same RUN) would
 * both run them at once and record two different layers under one key: the image would use
 * one, the cache keep the other, and a no-op rebuild would give another image. BuildKit merges
 * such vertices; here the first stage to miss runs the step and the others wait for it. Also
 * with --no-cache (BuildKit merges them there too): a record this build wrote is a hit. */
int
sv_cache_lookup(stage_run_t *r, const char *key, sw_layer_desc_t *layer, bool *has_layer,
                int64_t *created, sw_error_t *err)
{
  solver_t *sv = r->sv;
  for (;;) {
    int f = may_hit(sv, key) ? sv_cache_peek(r, key, layer, has_layer, created, err) : 0;
    if (f != 0)
      return f;
    if (sw_userns_speculating()) {
      _cleanup_free_ char *what = xasprintf("%s:%d: a step that is not cached",
                                            sv->o->plan->df->path, r->cur ? r->cur->insn->line : 0);
      return sw_userns_need(what, err);
    }
    pthread_mutex_lock(&sv->sh->lock);
    if (!sw_strv_contains(sv->sh->inflight, key)) {
      sw_strv_push(&sv->sh->inflight, key);
      sw_strv_push(&r->claims, key);
      pthread_mutex_unlock(&sv->sh->lock);
      return 0;
    }
    pthread_mutex_unlock(&sv->sh->lock);
    /* Our own layer still being hashed is recorded first: nobody waits on us while we wait. */
    if (sv_pending_join(r, err) < 0)
      return -1;
    sw_debug("%s:%d: the same step is running in another stage: waiting for it",
             sv->o->plan->df->path, r->cur ? r->cur->insn->line : 0);
    pthread_mutex_lock(&sv->sh->lock);
    while (sw_strv_contains(sv->sh->inflight, key) && !sv->sh->failed)
      pthread_cond_wait(&sv->sh->cond, &sv->sh->lock);
    bool failed = sv->sh->failed;
    pthread_mutex_unlock(&sv->sh->lock);
    if (failed)
      return sw_error(err, EINTR, "build interrupted: another stage failed");
  }
}

bool
sv_guess_settle(stage_run_t *r, const sw_step_t *step, bool held)
{
  sw_progress_t *p = r->sv->o->progress;
  bool wrong = false;
  for (size_t i = 0; i < r->n_guesses; i++) {
    struct sv_guess *g = &r->guesses[i];
    if (g->step != step || g->settled)
      continue;
    g->settled = true;
    if (held) {
      sw_progress_cached(p, g->id);
    } else {
      for (size_t k = g->at; k < r->n_spec_ids; k++)
        sw_progress_canceled(p, r->spec_ids[k]);
      wrong = true;
    }
  }
  return wrong;
}

static void
guesses_clear(stage_run_t *r)
{
  /* Guesses a failed stage never checked: their entries are left open otherwise. */
  for (size_t i = 0; i < r->n_guesses; i++)
    if (!r->guesses[i].settled)
      sw_progress_canceled(r->sv->o->progress, r->guesses[i].id);
  free(steal_ptr(&r->guesses));
  free(steal_ptr(&r->spec_ids));
  r->n_guesses = r->n_spec_ids = 0;
}

bool
sv_stage_over(stage_run_t *r, int index)
{
  pthread_mutex_lock(&r->sv->sh->lock);
  bool over = r->sv->runs[index].done;
  pthread_mutex_unlock(&r->sv->sh->lock);
  return over;
}

int
sv_cache_record(stage_run_t *r, const char *key, const sw_layer_desc_t *layer, int64_t created,
                sw_error_t *err)
{
  json_t *j = json_object();
  json_object_set_new(j, "v", json_integer(1));
  json_object_set_new(j, "layer", layer ? json_string(layer->diff_id) : json_null());
  if (layer && layer->digest[0])
    json_object_set_new(j, "blob",
                        json_pack("{s:s,s:I,s:s}", "digest", layer->digest, "size",
                                  (json_int_t)layer->size, "mediaType", layer->media_type));
  json_object_set_new(j, "created", json_integer(created));
  _cleanup_free_ char *val = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  /* The record keeps the whole chain alive: every layer of the image so far. */
  _cleanup_strv_ char **ids = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < r->img->n_layers; i++)
    sw_strv_push(&ids, r->img->layers[i].diff_id);
  if (layer)
    sw_strv_push(&ids, layer->diff_id);
  int64_t size = layer ? (layer->digest[0] ? layer->size : layer->tar_size) : 0;
  if (sw_cache_put(r->sv->o->store, key, val, ids, size, err) < 0)
    return sv_wrap(r, err);
  release_claim_recorded(r, key, true);
  cache_log(r, key, layer, created);
  return 0;
}

/* Give the history entries that wait for a time (SV_CREATED_PENDING) created, the last
 * n_pending entries before the `after` newest ones. */
static void
backfill_created(stage_run_t *r, int64_t created, size_t after)
{
  if (r->n_pending == 0)
    return;
  json_t *h = json_object_get(r->img->config, "history");
  size_t n = json_array_size(h);
  _cleanup_free_ char *ts = sw_time_rfc3339(created);
  for (size_t i = 0; i < r->n_pending && i + after < n; i++)
    json_object_set_new(json_array_get(h, n - 1 - after - i), "created", json_string(ts));
  r->n_pending = 0;
}

void
sv_apply_layer(stage_run_t *r, const sw_layer_desc_t *layer, int64_t created,
               const char *created_by)
{
  if (r->sv->o->epoch != SW_EPOCH_NONE)
    created = r->sv->o->epoch;
  if (layer) {
    sw_image_add_layer(r->img, layer);
    size_t n = sw_strv_len(r->lower);
    char **v = xcalloc(n + 2, sizeof(char *));
    v[0] = sw_snapshot_path(r->sv->o->store, layer->diff_id);
    memcpy(v + 1, r->lower, n * sizeof(char *));
    free(r->lower);
    r->lower = v;
  }
  if (created == SV_CREATED_PENDING) {
    sw_config_add_history(r->img->config, 0, created_by, SW_HISTORY_COMMENT, true);
    r->n_pending++;
    return;
  }
  backfill_created(r, created, 0);
  r->last_created = created;
  sw_config_add_history(r->img->config, created, created_by, SW_HISTORY_COMMENT, layer == NULL);
}

bool
sv_dir_empty(const char *dir)
{
  _cleanup_dir_ DIR *d = opendir(dir);
  struct dirent *de;
  if (d == NULL)
    return false;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      return false;
  return true;
}

/* Threads for compressing a layer: the CPUs shared among the stages working now, so that a
 * final-image layer compressed beside another stage's RUN (the django example's
 * `COPY --from=builder /install/local` beside static-builder's `cp -r`) leaves that RUN its
 * core. The bytes are the same for any count. 0 = all CPUs. */
static int
comp_threads(stage_run_t *r)
{
  struct sv_shared *sh = r->sv->sh;
  int active = 0;
  pthread_mutex_lock(&sh->lock);
  for (size_t k = 0; k < sh->n_all; k++)
    for (size_t i = 0; i < sh->all[k]->o->plan->n_stages; i++)
      active += sh->all[k]->runs[i].st->needed && !sh->all[k]->runs[i].done;
  active -= sh->waiting;
  pthread_mutex_unlock(&sh->lock);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return active > 1 && cpus > 0 ? (int)(cpus / active > 1 ? cpus / active : 1) : 0;
}

int
sv_commit_dir(stage_run_t *r, const char *dir, sw_layer_desc_t *out, bool *has, sw_error_t *err)
{
  if (sv_dir_empty(dir)) {
    *has = false;
    return sw_rm_rf(dir, err);
  }
  *has = true;
  /* A layer of the final image needs its blob: tar, compress and hash in one pass. Any other
   * layer only needs its diffID (no compression, no blob file, no fsync). */
  int rc;
  if (sv_in_final_image(r)) {
    sw_compression_t comp = r->sv->o->comp;
    if (comp.threads == 0)
      comp.threads = comp_threads(r);
    rc = sw_layer_commit_dir(r->sv->o->store, dir, &comp, out, err);
  } else {
    rc = sw_layer_commit_snapshot(r->sv->o->store, dir, out, err);
  }
  return rc < 0 ? sv_wrap(r, err) : 0;
}

/* Whether the stage's layers end up in the image the build produces: the target stage and
 * the stages it is built FROM. */
bool
sv_in_final_image(stage_run_t *r)
{
  const sw_plan_t *p = r->sv->o->plan;
  for (int i = p->target; i >= 0; i = p->stages[i].base_stage)
    if (&p->stages[i] == r->st)
      return true;
  return false;
}

/* ---- config-only instructions ---- */

static void
history(stage_run_t *r, const char *created_by)
{
  sv_apply_layer(r, NULL, r->last_created, created_by);
}

/* Go's fmt of a []string with %q: ["a" "b"] */
static char *
go_quoted_list(char *const *v)
{
  sw_buf_t b = {0};
  sw_buf_putc(&b, '[');
  for (size_t i = 0; v && v[i]; i++) {
    if (i)
      sw_buf_putc(&b, ' ');
    sw_go_quote_buf(&b, v[i], strlen(v[i]));
  }
  sw_buf_putc(&b, ']');
  return sw_buf_steal(&b);
}

/* Go's strconv.QuoteRune (fmt %q of an int): 'A', '\x04', '\n', '\''. */
static void
go_quote_rune(sw_buf_t *b, long n)
{
  char u[8] = {0};
  unsigned long c =
      n < 0 || n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF) ? 0xFFFD : (unsigned long)n;
  if (c < 0x80) {
    u[0] = (char)c;
  } else if (c < 0x800) {
    u[0] = (char)(0xC0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    u[0] = (char)(0xE0 | c >> 12), u[1] = (char)(0x80 | (c >> 6 & 0x3F));
    u[2] = (char)(0x80 | (c & 0x3F));
  } else {
    u[0] = (char)(0xF0 | c >> 18), u[1] = (char)(0x80 | (c >> 12 & 0x3F));
    u[2] = (char)(0x80 | (c >> 6 & 0x3F)), u[3] = (char)(0x80 | (c & 0x3F));
  }
  /* strconv.Quote of the one rune, then the rune's quoting: ' escaped, " not. */
  _cleanup_buf_ sw_buf_t q = {0};
  sw_go_quote_buf(&q, u, c ? strlen(u) : 1);
  sw_buf_putc(b, '\'');
  for (size_t i = 1; i + 1 < q.len; i++) {
    if (q.data[i] == '\\' && q.data[i + 1] == '"')
      continue;
    if (q.data[i] == '\'')
      sw_buf_putc(b, '\\');
    sw_buf_putc(b, q.data[i]);
    if (q.data[i] == '\\')
      sw_buf_putc(b, q.data[++i]);
  }
  sw_buf_putc(b, '\'');
}

/* Go's fmt of a []string with %v: [a b] */
static char *
go_list(char *const *v)
{
  sw_buf_t b = {0};
  sw_buf_putc(&b, '[');
  for (size_t i = 0; v && v[i]; i++) {
    if (i)
      sw_buf_putc(&b, ' ');
    sw_buf_puts(&b, v[i]);
  }
  sw_buf_putc(&b, ']');
  return sw_buf_steal(&b);
}

/* The command of CMD / ENTRYPOINT / HEALTHCHECK: exec form as is, shell form through SHELL. */
static char **
command_argv(stage_run_t *r, const sw_insn_t *in, size_t first)
{
  if (in->json) {
    char **v = xcalloc(1, sizeof(char *));
    for (size_t i = first; i < in->n_args; i++)
      sw_strv_push(&v, in->args[i]);
    return v;
  }
  char **v = sv_shell(r);
  sw_strv_push(&v, in->n_args > first ? in->args[first] : "");
  return v;
}

static int
do_env(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_strv_ char **env = sv_expand_env(r);
  _cleanup_buf_ sw_buf_t msg = {0};
  sw_buf_puts(&msg, "ENV");
  /* All pairs expand against the environment before the instruction (Docker's rule). */
  char **keys = xcalloc(in->n_kvs + 1, sizeof(char *));
  char **vals = xcalloc(in->n_kvs + 1, sizeof(char *));
  int rc = 0;
  for (size_t i = 0; i < in->n_kvs && rc == 0; i++) {
    if (sw_word_expand(in->kvs[i].key, env, df_of(r)->escape, &keys[i], err) < 0 ||
        sw_word_expand(in->kvs[i].value, env, df_of(r)->escape, &vals[i], err) < 0)
      rc = sv_wrap(r, err);
  }
  for (size_t i = 0; i < in->n_kvs && rc == 0; i++) {
    sw_config_env_set(r->img->config, keys[i], vals[i]);
    sw_scope_env_set(&r->scope, keys[i]);
    sw_buf_printf(&msg, " %s=%s", keys[i], vals[i]);
  }
  sw_strv_free(keys);
  sw_strv_free(vals);
  if (rc == 0)
    history(r, msg.data);
  return rc;
}

static int
do_label(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_buf_ sw_buf_t msg = {0};
  sw_buf_puts(&msg, "LABEL");
  for (size_t i = 0; i < in->n_kvs; i++) {
    _cleanup_free_ char *k = NULL, *v = NULL;
    if (sv_expand(r, in->kvs[i].key, &k, err) < 0 || sv_expand(r, in->kvs[i].value, &v, err) < 0)
      return -1;
    sw_config_label_set(r->img->config, k, v);
    sw_buf_printf(&msg, " %s=%s", k, v);
  }
  history(r, msg.data);
  return 0;
}

static int
do_arg(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_buf_ sw_buf_t msg = {0};
  sw_buf_puts(&msg, "ARG");
  for (size_t i = 0; i < in->n_args; i++) {
    const char *a = in->args[i];
    const char *eq = strchr(a, '=');
    _cleanup_free_ char *key = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
    _cleanup_free_ char *def = NULL;
    if (eq && sv_expand(r, eq + 1, &def, err) < 0)
      return -1;
    pthread_mutex_lock(
        &r->sv->sh->lock); /* declaring marks the build arg used in the shared plan */
    const char *v = sw_scope_declare(&r->scope, r->sv->o->plan, key, def);
    pthread_mutex_unlock(&r->sv->sh->lock);
    if (v)
      sw_buf_printf(&msg, " %s=%s", key, v);
    else
      sw_buf_printf(&msg, " %s", key);
  }
  history(r, msg.data);
  return 0;
}

static int
do_cmd_entrypoint(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_strv_ char **argv = command_argv(r, in, 0);
  bool is_cmd = in->kind == SW_INSN_CMD;
  sw_config_set_strv(r->img->config, is_cmd ? "Cmd" : "Entrypoint", argv);
  if (is_cmd) {
    /* BuildKit's dispatchCmd sets ArgsEscaped on every CMD (not on ENTRYPOINT). */
    json_object_set_new(container(r), "ArgsEscaped", json_true());
    r->cmd_set = true;
  } else if (!r->cmd_set)
    sw_config_set_strv(r->img->config, "Cmd", NULL);
  _cleanup_free_ char *q = go_quoted_list(argv);
  _cleanup_free_ char *msg = xasprintf("%s %s", is_cmd ? "CMD" : "ENTRYPOINT", q);
  history(r, msg);
  return 0;
}

static int
do_shell(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  if (!in->json)
    return sv_fail(r, err,
                   "SHELL requires the arguments to be in JSON form, e.g. SHELL "
                   "[\"/bin/bash\", \"-c\"]");
  _cleanup_strv_ char **argv = command_argv(r, in, 0);
  sw_config_set_strv(r->img->config, "Shell", argv);
  _cleanup_free_ char *l = go_list(argv);
  _cleanup_free_ char *msg = xasprintf("SHELL %s", l);
  history(r, msg);
  return 0;
}

static int
do_simple(stage_run_t *r, const sw_insn_t *in, const char *key, const char *what, sw_error_t *err)
{
  if (in->n_args < 1)
    return sv_fail(r, err, "%s requires an argument", what);
  _cleanup_free_ char *v = NULL;
  if (sv_expand(r, in->args[0], &v, err) < 0)
    return -1;
  if (key[0] == '.') /* top-level config key (MAINTAINER: "author") */
    json_object_set_new(r->img->config, key + 1, json_string(v));
  else
    json_object_set_new(container(r), key, json_string(v));
  _cleanup_free_ char *msg = xasprintf("%s %s", what, v);
  history(r, msg);
  return 0;
}

static int
port_list(stage_run_t *r, const char *spec, char ***ports, sw_error_t *err)
{
  _cleanup_free_ char *num = xstrndup(spec, strcspn(spec, "/"));
  const char *proto = strchr(spec, '/') ? strchr(spec, '/') + 1 : "tcp";
  char *end = NULL;
  unsigned long a = strtoul(num, &end, 10), b = a;
  if (end == num)
    return sv_fail(r, err, "invalid port `%s`", spec);
  if (*end == '-') {
    const char *s2 = end + 1;
    b = strtoul(s2, &end, 10);
    if (end == s2)
      return sv_fail(r, err, "invalid port range `%s`", spec);
  }
  if (*end || a == 0 || a > 65535 || b < a || b > 65535)
    return sv_fail(r, err, "invalid port `%s`", spec);
  for (unsigned long p = a; p <= b; p++) {
    char *s = xasprintf("%lu/%s", p, proto);
    for (char *c = s; *c; c++)
      *c = (char)tolower((unsigned char)*c);
    if (!sw_strv_contains(*ports, s))
      sw_strv_push(ports, s);
    free(s);
  }
  return 0;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
do_expose(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_strv_ char **ports = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < in->n_args; i++) {
    _cleanup_strv_ char **words = NULL;
    _cleanup_strv_ char **env = sv_expand_env(r);
    if (sw_word_expand_words(in->args[i], env, df_of(r)->escape, &words, err) < 0)
      return sv_wrap(r, err);
    for (size_t j = 0; words[j]; j++)
      if (port_list(r, words[j], &ports, err) < 0)
        return -1;
  }
  qsort(ports, sw_strv_len(ports), sizeof(char *), cmp_str);
  _cleanup_buf_ sw_buf_t msg = {0};
  sw_buf_puts(&msg, "EXPOSE map[");
  for (size_t i = 0; ports[i]; i++) {
    sw_config_expose(r->img->config, ports[i]);
    sw_buf_printf(&msg, "%s%s:{}", i ? " " : "", ports[i]);
  }
  sw_buf_putc(&msg, ']');
  history(r, msg.data);
  return 0;
}

static int
do_volume(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  _cleanup_strv_ char **vols = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < in->n_args; i++) {
    _cleanup_free_ char *v = NULL;
    if (sv_expand(r, in->args[i], &v, err) < 0)
      return -1;
    if (v[0] == '\0')
      return sv_fail(r, err, "VOLUME specified can not be an empty string");
    sw_config_volume(r->img->config, v);
    sw_strv_push(&vols, v);
  }
  _cleanup_free_ char *l = go_list(vols);
  _cleanup_free_ char *msg = xasprintf("VOLUME %s", l);
  history(r, msg);
  return 0;
}

/* Go duration ("1m30s", "500ms") to nanoseconds. */
static int
parse_duration(const char *s, int64_t *out)
{
  double total = 0;
  const char *p = s;
  if (*p == '\0')
    return -1;
  if (strcmp(p, "0") == 0) {
    *out = 0;
    return 0;
  }
  while (*p) {
    char *end;
    double v = strtod(p, &end);
    if (end == p)
      return -1;
    p = end;
    double mult;
    if (sw_str_has_prefix(p, "ns"))
      mult = 1, p += 2;
    else if (sw_str_has_prefix(p, "us") || sw_str_has_prefix(p, "µs"))
      mult = 1e3, p += sw_str_has_prefix(p, "us") ? 2 : strlen("µs");
    else if (sw_str_has_prefix(p, "ms"))
      mult = 1e6, p += 2;
    else if (*p == 's')
      mult = 1e9, p += 1;
    else if (*p == 'm')
      mult = 60e9, p += 1;
    else if (*p == 'h')
      mult = 3600e9, p += 1;
    else
      return -1;
    total += v * mult;
  }
  *out = (int64_t)total;
  return 0;
}

static char *
go_duration(int64_t ns)
{
  if (ns == 0)
    return xstrdup("0s");
  int64_t s = ns / 1000000000, rest = ns % 1000000000;
  _cleanup_buf_ sw_buf_t b = {0};
  if (s >= 3600)
    sw_buf_printf(&b, "%" PRId64 "h", s / 3600);
  if (s >= 60)
    sw_buf_printf(&b, "%" PRId64 "m", (s % 3600) / 60);
  if (rest)
    sw_buf_printf(&b, "%" PRId64 ".%09" PRId64 "s", s % 60, rest);
  else
    sw_buf_printf(&b, "%" PRId64 "s", s % 60);
  return sw_buf_steal(&b);
}

static int
do_healthcheck(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  if (in->n_args < 1)
    return sv_fail(r, err, "HEALTHCHECK requires NONE or CMD");
  json_t *hc = json_object();
  _cleanup_strv_ char **test = NULL;
  if (strcasecmp(in->args[0], "NONE") == 0) {
    if (in->n_args > 1)
      return json_decref(hc), sv_fail(r, err, "HEALTHCHECK NONE takes no arguments");
    sw_strv_push(&test, "NONE");
  } else if (strcasecmp(in->args[0], "CMD") == 0) {
    if (in->n_args < 2)
      return json_decref(hc), sv_fail(r, err, "HEALTHCHECK CMD requires a command");
    if (in->json) {
      sw_strv_push(&test, "CMD");
      for (size_t i = 1; i < in->n_args; i++)
        sw_strv_push(&test, in->args[i]);
    } else {
      sw_strv_push(&test, "CMD-SHELL");
      sw_strv_push(&test, in->args[1]);
    }
  } else {
    return json_decref(hc), sv_fail(r, err, "unknown HEALTHCHECK type `%s`", in->args[0]);
  }
  json_t *t = json_array();
  for (size_t i = 0; test[i]; i++)
    json_array_append_new(t, json_string(test[i]));
  json_object_set_new(hc, "Test", t);
  static const struct {
    const char *flag, *key;
  } durs[] = {{"interval", "Interval"},
              {"timeout", "Timeout"},
              {"start-period", "StartPeriod"},
              {"start-interval", "StartInterval"}};
  int64_t vals[4] = {0};
  for (size_t i = 0; i < SW_ARRAY_SIZE(durs); i++) {
    const char *f = sw_insn_flag(in, durs[i].flag);
    if (f == NULL)
      continue;
    if (parse_duration(f, &vals[i]) < 0 || vals[i] < 0)
      return json_decref(hc), sv_fail(r, err, "--%s: invalid duration `%s`", durs[i].flag, f);
    if (vals[i])
      json_object_set_new(hc, durs[i].key, json_integer(vals[i]));
  }
  long retries = 0;
  const char *rf = sw_insn_flag(in, "retries");
  if (rf) {
    char *end;
    retries = strtol(rf, &end, 10);
    if (*end || retries < 0)
      return json_decref(hc), sv_fail(r, err, "--retries: invalid number `%s`", rf);
    if (retries)
      json_object_set_new(hc, "Retries", json_integer(retries));
  }
  json_object_set_new(container(r), "Healthcheck", hc);
  /* BuildKit: fmt.Sprintf("HEALTHCHECK %q", &HealthcheckConfig{...}), i.e.
   * &{["CMD" "x"] "5s" "3s" "0s" "0s" '\x04'}: durations quoted, Retries as a quoted rune. */
  _cleanup_buf_ sw_buf_t m = {0};
  _cleanup_free_ char *tl = go_quoted_list(test);
  sw_buf_printf(&m, "HEALTHCHECK &{%s", tl);
  for (size_t i = 0; i < SW_ARRAY_SIZE(vals); i++) {
    _cleanup_free_ char *d = go_duration(vals[i]);
    sw_buf_putc(&m, ' ');
    sw_go_quote_buf(&m, d, strlen(d));
  }
  sw_buf_putc(&m, ' ');
  go_quote_rune(&m, retries);
  sw_buf_putc(&m, '}');
  const char *msg = m.data;
  history(r, msg);
  return 0;
}

static int
do_onbuild(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  if (in->sub == NULL)
    return sv_fail(r, err, "ONBUILD requires an instruction");
  const char *text = in->original ? in->original : "";
  /* The trigger is the text after the ONBUILD keyword. */
  while (*text && !isspace((unsigned char)*text))
    text++;
  while (isspace((unsigned char)*text))
    text++;
  json_t *c = container(r);
  json_t *ob = json_object_get(c, "OnBuild");
  if (!json_is_array(ob)) {
    ob = json_array();
    json_object_set_new(c, "OnBuild", ob);
  }
  json_array_append_new(ob, json_string(text));
  return 0;
}

static int
do_stopsignal(stage_run_t *r, const sw_insn_t *in, sw_error_t *err)
{
  return do_simple(r, in, "StopSignal", "STOPSIGNAL", err);
}

static int
run_step(stage_run_t *r, const sw_step_t *step, sw_error_t *err)
{
  const sw_insn_t *in = step->insn;
  r->cur = step;
  /* A RUN joins the previous RUN's commit once its own process is over (the two overlap);
   * every other instruction reads the stage's layers or adds history, so it joins first. */
  if (in->kind != SW_INSN_RUN && sv_pending_join(r, err) < 0)
    return -1;
  switch (in->kind) {
  case SW_INSN_RUN:
    return sv_step_run(r, step, err);
  case SW_INSN_COPY:
  case SW_INSN_ADD:
    return sv_step_copy(r, step, err);
  case SW_INSN_WORKDIR:
    return sv_step_workdir(r, step, err);
  case SW_INSN_ENV:
    return do_env(r, in, err);
  case SW_INSN_LABEL:
    return do_label(r, in, err);
  case SW_INSN_ARG:
    return do_arg(r, in, err);
  case SW_INSN_CMD:
  case SW_INSN_ENTRYPOINT:
    return do_cmd_entrypoint(r, in, err);
  case SW_INSN_SHELL:
    return do_shell(r, in, err);
  case SW_INSN_USER:
    return do_simple(r, in, "User", "USER", err);
  case SW_INSN_MAINTAINER:
    return do_simple(r, in, ".author", "MAINTAINER", err);
  case SW_INSN_STOPSIGNAL:
    return do_stopsignal(r, in, err);
  case SW_INSN_EXPOSE:
    return do_expose(r, in, err);
  case SW_INSN_VOLUME:
    return do_volume(r, in, err);
  case SW_INSN_HEALTHCHECK:
    return do_healthcheck(r, in, err);
  case SW_INSN_ONBUILD:
    return do_onbuild(r, in, err);
  default:
    return sv_fail(r, err, "unknown instruction");
  }
}

/* ---- stages ---- */

static void
ensure_path(stage_run_t *r)
{
  if (sw_config_env_get(r->img->config, "PATH") == NULL)
    sw_config_env_set(r->img->config, "PATH", DEFAULT_PATH);
}

/* Take the base's OnBuild triggers (image bases: they run now); a stage never inherits them. */
static char **
take_onbuild(stage_run_t *r)
{
  json_t *c = container(r);
  json_t *ob = json_object_get(c, "OnBuild");
  char **v = json_is_array(ob) ? json_strv(ob) : NULL;
  json_object_del(c, "OnBuild");
  return v;
}

static int
init_from_image(stage_run_t *r, char ***triggers, sw_error_t *err)
{
  const sw_solve_opts_t *o = r->sv->o;
  sw_stage_t *st = r->st;
  r->step_no++;
  _cleanup_free_ char *ref = sw_ref_normalize(st->base, NULL);
  _cleanup_free_ char *prefix = step_prefix(r);
  _cleanup_free_ char *name = xasprintf("%sFROM %s", prefix, ref ? ref : st->base);
  /* A second pass (speculation's check) loads the base again without showing it again. */
  int id = r->verifying ? 0 : sw_progress_begin(o->progress, name);
  sw_image_t *base = NULL;
  int f = stage_image(r, st->base, &base, err);
  if (f <= 0) {
    if (f == 0)
      sv_fail(r, err,
              "base image `%s` is not in the store: load it first (`slipway import ROOTFS.tar "
              "%s`, `slipway load` or `slipway pull`)",
              st->base, st->base);
    else
      sv_wrap(r, err);
    sw_progress_error(o->progress, id, (*err)->msg);
    return -1;
  }
  r->img = base;
  sw_cachekey_base(base->config_digest, st->platform, r->key);
  r->last_created = sw_config_created(base->config);
  r->lower = sw_image_lowerdirs(o->store, base);
  *triggers = take_onbuild(r);
  sw_progress_done(o->progress, id);
  return 0;
}

/* The stage's image says the platform the stage runs on. A base image made for another one is
 * used as it is, with BuildKit's InvalidBaseImagePlatform warning in its words (its binaries run
 * through emulation if they are foreign), and the image says the stage's platform, as
 * BuildKit's does. */
static void
stage_platform_config(stage_run_t *r)
{
  const sw_stage_t *st = r->st;
  _cleanup_free_ char *was = sw_platform_of_config(r->img->config);
  if (!st->scratch && st->base_stage < 0 && strcmp(was, st->platform) != 0 && !r->verifying)
    sw_warn("%s:%d: InvalidBaseImagePlatform: Base image %s was pulled with platform \"%s\", "
            "expected \"%s\" for current build",
            r->sv->o->plan->df->path, st->from->line, st->base, was, st->platform);
  sw_platform_set_config(r->img->config, st->platform);
}

static int
init_stage(stage_run_t *r, char ***triggers, sw_error_t *err)
{
  sw_stage_t *st = r->st;
  *triggers = NULL;
  sw_scope_init(&r->scope);
  if (st->scratch) {
    r->img = sw_image_new();
    /* BuildKit's emptyImage(): FROM scratch starts with WorkingDir "/". */
    json_object_set_new(container(r), "WorkingDir", json_string("/"));
    sw_cachekey_base(NULL, st->platform, r->key);
    r->last_created = SV_CREATED_PENDING;
    r->lower = xcalloc(1, sizeof(char *));
  } else if (st->base_stage >= 0) {
    stage_run_t *b = sv_stage(r, st->base_stage);
    r->img = sw_image_dup(b->img);
    _cleanup_strv_ char **benv = sv_config_env(b);
    sw_scope_inherit(&r->scope, &b->scope, benv);
    memcpy(r->key, b->key, sizeof(r->key));
    r->lower = sw_strv_dup(b->lower);
    r->last_created = b->last_created;
    json_object_del(container(r), "OnBuild"); /* its triggers are steps of this stage */
  } else if (init_from_image(r, triggers, err) < 0) {
    return -1;
  }
  json_object_del(r->img->config, "created");
  stage_platform_config(r);
  ensure_path(r);
  return 0;
}

static int
run_steps(stage_run_t *r, const sw_step_t *steps, size_t n, sw_error_t *err)
{
  for (size_t i = 0; i < n; i++) {
    if (sw_solve_interrupted())
      return sw_error(err, EINTR, "interrupted");
    if (r->sv->sh->failed)
      return sw_error(err, ECANCELED, "canceled");
    if (run_step(r, &steps[i], err) < 0)
      return -1;
  }
  return 0;
}

static int
build_stage_steps(stage_run_t *r, sw_error_t *err)
{
  _cleanup_strv_ char **triggers = NULL;
  if (init_stage(r, &triggers, err) < 0)
    return -1;
  if (triggers && triggers[0]) {
    sw_step_t *tsteps = NULL;
    size_t tn = 0;
    pthread_mutex_lock(&r->sv->sh->lock); /* the plan is shared */
    int pr = sw_plan_trigger_steps(r->sv->o->plan, r->st, triggers, &tsteps, &tn, err);
    pthread_mutex_unlock(&r->sv->sh->lock);
    if (pr < 0)
      return -1;
    int rc = run_steps(r, tsteps, tn, err);
    sw_steps_free(tsteps, tn);
    if (rc < 0)
      return -1;
  }
  return run_steps(r, r->st->steps, r->st->n_steps, err);
}

/* Back to the state before init_stage, for a second pass over the stage's steps. */
static void
reset_stage(stage_run_t *r)
{
  sw_image_free(steal_ptr(&r->img));
  sw_strv_free(steal_ptr(&r->lower));
  sw_scope_clear(&r->scope);
  memset(r->key, 0, sizeof(r->key));
  r->step_no = 0;
  r->last_created = 0;
  r->n_pending = 0;
  r->cmd_set = false;
  r->cur = NULL;
  r->speculated = false;
}

/* Speculation's check. A COPY --from of this stage took the content its source gave last time
 * (the prediction) while that stage still ran, and the steps after it ran (or hit the cache)
 * on that assumption: records that are true for that content, whatever the source now gives.
 * Now that the source is done, the stage is built again the ordinary way (COPY --from waits
 * and hashes): if the prediction held, every step hits the records just made (not shown
 * again); if not, the steps from that COPY on run. So what the stage ends with never depends
 * on a guess, and the stages that use it wait for this pass (done is set after it). */
static int
build_stage_verified(stage_run_t *r, sw_error_t *err)
{
  int rc = build_stage_steps(r, err);
  sw_progress_track(NULL, NULL); /* started by the first guess */
  if (!r->speculated) {
    guesses_clear(r);
    return rc;
  }
  if (rc < 0) {
    /* A step after a guess failed: maybe only because of the guess (a RUN reading what the
     * source no longer gives). Unless the build is over anyway, the second pass decides. */
    if (r->sv->sh->failed || sw_solve_interrupted()) {
      guesses_clear(r);
      return rc;
    }
    sw_debug("stage %s: a step failed after a guess: built again once the guess is checked (%s)",
             r->st->name ? r->st->name : "(unnamed)", *err ? (*err)->msg : "?");
    sw_error_release(err);
    sw_error_t e = NULL;
    sv_pending_join(r, &e); /* the pending step itself succeeded */
    sw_error_release(&e);
  } else if (sv_pending_join(r, err) < 0) {
    guesses_clear(r);
    return -1;
  }
  release_claims(r); /* a failed step's key: the second pass claims it again */
  double t0 = sw_now();
  reset_stage(r);
  r->verifying = true;
  sw_progress_defer_cached(true);
  rc = build_stage_steps(r, err);
  sw_progress_defer_cached(false);
  r->verifying = false;
  guesses_clear(r);
  sw_debug("stage %s: prediction checked in %.3fs", r->st->name ? r->st->name : "(unnamed)",
           sw_now() - t0);
  return rc;
}

static int
build_stage(stage_run_t *r, sw_error_t *err)
{
  if (build_stage_verified(r, err) < 0) {
    /* A later step failed: the pending step itself succeeded, so it is recorded (as it would
     * have been before the next step started), and the next attempt finds it cached. */
    sw_error_t e = NULL;
    sv_pending_join(r, &e);
    sw_error_release(&e);
    return -1;
  }
  if (sv_pending_join(r, err) < 0)
    return -1;
  r->cur = NULL;
  if (r->last_created == SV_CREATED_PENDING) { /* no layer step: the build's time */
    backfill_created(r, r->sv->now, 0);
    r->last_created = r->sv->now;
  }
  sw_config_set_created(r->img->config, r->last_created);
  return 0;
}

static void *
stage_main(void *arg)
{
  stage_run_t *r = arg;
  solver_t *sv = r->sv;
  sw_error_t err = NULL;

  /* Only the base stage is waited for here: a stage that copies from another starts its
   * own steps at once and waits at the COPY --from (sv_wait_stage). */
  bool skip = r->st->base_stage >= 0 && sv_wait_stage(r, r->st->base_stage) < 0;
  int rc = skip ? -1 : build_stage(r, &err);
  release_claims(r); /* a failed step's key, or a record never written */

  pthread_mutex_lock(&sv->sh->lock);
  if (rc < 0) {
    r->failed = true;
    if (!sv->sh->failed && err) {
      sv->sh->failed = true;
      sv->sh->first_err = err;
      err = NULL;
      sw_sandbox_kill_all(); /* stop the other stages' running steps */
    }
    sv->sh->failed = true;
  }
  r->done = true;
  pthread_cond_broadcast(&sv->sh->cond);
  pthread_mutex_unlock(&sv->sh->lock);
  sw_error_release(&err);
  return NULL;
}

static void
free_runs(solver_t *sv)
{
  size_t n = sv->o->plan->n_stages;
  for (size_t i = 0; i < n; i++) {
    stage_run_t *r = &sv->runs[i];
    sw_image_free(r->img);
    sw_strv_free(r->lower);
    sw_scope_clear(&r->scope);
    sw_strv_free(r->claims);
  }
  free(sv->runs);
  sw_fcache_free(sv->snapcache);
}

/* Ctrl-C can land between a step's last check and its sandbox being registered, where
 * sw_sandbox_kill_all() cannot see it: after an interrupt this thread keeps killing until the
 * solve is over. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
} watcher_t;

static void *
watcher_main(void *arg)
{
  watcher_t *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->done) {
    sw_cond_wait_ms(&w->cond, &w->lock, 50);
    if (!w->done && sw_solve_interrupted())
      sw_sandbox_kill_all();
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void
solver_init(solver_t *sv, const sw_solve_opts_t *o, struct sv_shared *sh, const char *label)
{
  sw_plan_t *p = o->plan;
  sv->o = o;
  sv->sh = sh;
  sv->label = label;
  sv->now = o->epoch != SW_EPOCH_NONE ? o->epoch : sw_build_time();
  /* Snapshot files never change once committed: their digests are cached by path (see
   * fcache.h). Loaded only if a COPY --from has to hash. */
  _cleanup_free_ char *snapcache = sw_store_path(o->store, "contexts/snapshots");
  sv->snapcache = sw_fcache_open(snapcache, SW_FCACHE_BY_PATH, 200000);
  sv->runs = xcalloc(p->n_stages, sizeof(stage_run_t));
  for (size_t i = 0; i < p->n_stages; i++) {
    sv->runs[i].sv = sv;
    sv->runs[i].st = &p->stages[i];
  }
}

/* One thread per needed stage of every plan; each waits for the stages it needs. */
static void
run_stages(solver_t *const *svs, size_t n_sv)
{
  size_t total = 0;
  for (size_t k = 0; k < n_sv; k++)
    total += svs[k]->o->plan->n_stages;
  stage_run_t **runs = xcalloc(total + 1, sizeof(*runs));
  size_t n = 0;
  for (size_t k = 0; k < n_sv; k++) {
    int *order = xcalloc(svs[k]->o->plan->n_stages + 1, sizeof(int));
    size_t m = sw_plan_order(svs[k]->o->plan, order);
    for (size_t i = 0; i < m; i++)
      runs[n++] = &svs[k]->runs[order[i]];
    free(order);
  }
  if (n == 1) {
    stage_main(runs[0]);
  } else {
    for (size_t i = 0; i < n; i++)
      if (pthread_create(&runs[i]->thread, NULL, stage_main, runs[i]) == 0)
        runs[i]->thread_started = true;
      else
        stage_main(runs[i]);
    for (size_t i = 0; i < n; i++)
      if (runs[i]->thread_started)
        pthread_join(runs[i]->thread, NULL);
  }
  free(runs);
}

int
sw_solve_all(const sw_solve_opts_t *const *opts, size_t n, sw_image_t **outs, sw_error_t *err)
{
  watcher_t w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  pthread_t wt;
  bool watching = pthread_create(&wt, NULL, watcher_main, &w) == 0;
  struct sv_shared sh = {.n_all = n};
  solver_t *svs = xcalloc(n, sizeof(*svs));
  sh.all = xcalloc(n, sizeof(*sh.all));
  pthread_mutex_init(&sh.lock, NULL);
  pthread_mutex_init(&sh.base_lock, NULL);
  pthread_cond_init(&sh.cond, NULL);
  for (size_t k = 0; k < n; k++) {
    solver_init(&svs[k], opts[k], &sh, n > 1 ? opts[k]->plan->platform : NULL);
    sh.all[k] = &svs[k];
  }
  run_stages(sh.all, n);

  int rc = 0;
  if (sh.failed) {
    if (sh.first_err) {
      *err = sh.first_err;
    } else {
      sw_error(err, EINTR, "build interrupted");
    }
    rc = -1;
  } else {
    for (size_t k = 0; k < n; k++)
      outs[k] = steal_ptr(&svs[k].runs[opts[k]->plan->target].img);
  }
  if (watching) {
    pthread_mutex_lock(&w.lock);
    w.done = true;
    pthread_cond_signal(&w.cond);
    pthread_mutex_unlock(&w.lock);
    pthread_join(wt, NULL);
  }
  for (size_t k = 0; k < n; k++)
    free_runs(&svs[k]);
  free(svs);
  free(sh.all);
  sw_strv_free(sh.inflight);
  sw_strv_free(sh.built);
  pthread_mutex_destroy(&sh.lock);
  pthread_mutex_destroy(&sh.base_lock);
  pthread_cond_destroy(&sh.cond);
  return rc;
}

int
sw_solve(const sw_solve_opts_t *o, sw_image_t **out, sw_error_t *err)
{
  return sw_solve_all(&o, 1, out, err);
}
