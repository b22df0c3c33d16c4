/* slipway build: parse flags, then parse → plan → solve → commit → export, with progress. The
 * engine lives in the library (plan.c, solve.c); this file only wires it up. */
#include "cli.h"

#include "build_private.h"

#include "../lib/preflight.h"
#include "../lib/image_archive.h"
#include "../lib/compress.h"
#include "../lib/context.h"
#include "../lib/dockerfile.h"
#include "../lib/image.h"
#include "../lib/layer_apply.h"
#include "../lib/layer_write.h"
#include "../lib/plan.h"
#include "../lib/progress.h"
#include "../lib/recipe.h"
#include "../lib/solve.h"
#include "../lib/ssh-forward.h"
#include "../lib/store.h"
#include "../lib/userns.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static const char usage_text[] =
    "Usage: slipway build [OPTIONS] CONTEXT\n"
    "\n"
    "Build an image from a Dockerfile and a build context directory, as `docker build` does,\n"
    "without a daemon. Steps are cached in the store: a step runs again only when what it\n"
    "depends on changed (its instruction, the env and build args it sees, the content of the\n"
    "files it copies, the steps before it).\n"
    "\n"
    "Options:\n"
    "  -f, --file FILE           the Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)\n"
    "      --recipe python       build CONTEXT as a Python/Django project, not from its\n"
    "                            Dockerfile (the default when it has none; see `slipway recipe`)\n"
    "  -t, --tag NAME[:TAG]      name the image (repeatable)\n"
    "      --target STAGE        build this stage (and what it needs) instead of the last one\n"
    "      --platform P[,P...]   target platform(s), OS/ARCH[/VARIANT] (default: the host's,\n"
    "                            or $DOCKER_DEFAULT_PLATFORM); several make one image index;\n"
    "                            RUN steps of a foreign platform run under qemu-user-static's\n"
    "                            binfmt_misc handler\n"
    "      --build-arg K[=V]     set a build arg (K alone takes the value from the environment)\n"
    "      --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[@DIGEST]\n"
    "                            a named context for FROM NAME and COPY --from=NAME (a\n"
    "                            stage of that name is replaced; DIR: COPY --from only)\n"
    "      --no-cache            run every step, ignoring cached results\n"
    "      --network MODE        network of RUN steps: host (default) or none\n"
    "      --allow security.insecure  let RUN --security=insecure steps run privileged\n"
    "      --secret id=ID,src=PATH  a secret for RUN --mount=type=secret (never stored)\n"
    "      --label K=V           add a label to the image (repeatable)\n"
    "      --progress MODE       auto (default), plain (one line per event) or tty\n"
    "      --iidfile FILE        write the image ID to FILE\n"
    "      --compression ALGO    gzip (default) or zstd[:LEVEL] for new layers\n"
    "  -o, --output SPEC         also export: type=oci,dest=DIR (OCI layout; tar=true for an\n"
    "                            oci-archive), type=docker,dest=FILE (docker load),\n"
    "                            type=tar,dest=FILE|- (the image's filesystem as a tar),\n"
    "                            type=local,dest=DIR or just DIR (its files written in DIR)\n"
    "      --cache-to type=registry,ref=HOST/REPO:TAG[,mode=min|max]\n"
    "                            after the build, push its cache records and layers to a\n"
    "                            registry (min: the final image's steps, the default; max:\n"
    "                            every stage's)\n"
    "      --cache-from [type=registry,ref=]REF  use the cache records at REF (repeatable);\n"
    "                            an unreadable REF is a warning\n"
    "      --insecure-registry HOST  plain HTTP for HOST (localhost and 127.0.0.1 always)\n"
    "      --check               run the build checks (BuildKit's rules) and do not build;\n"
    "                            exit 1 when there are warnings\n"
    "      --pull                pull the images FROM and --from name again before building\n"
    "      --push                push the image under its -t names once stored (also\n"
    "                            -o type=image,name=NAME,push=true or -o type=registry,name=NAME)\n"
    "      --load                accepted (the image always goes to the store)\n"
    "      --ssh ID[=SOCKET|KEY[,KEY]]  an ssh agent for RUN --mount=type=ssh (`default`:\n"
    "                            $SSH_AUTH_SOCK; a key: served by a private ssh-agent)\n"
    "      --add-host HOST:IP    an /etc/hosts entry for RUN steps (repeatable)\n"
    "      --shm-size SIZE       size of RUN steps' /dev/shm (default 64m)\n"
    "      --ulimit NAME=SOFT[:HARD]  a resource limit of RUN steps (repeatable)\n"
    "      --metadata-file FILE  write buildx's JSON about the image (containerimage.digest …)\n"
    "  -q, --quiet               print only the image ID\n"
    "  -h, --help                print this help\n"
    "\n"
    "Environment: SOURCE_DATE_EPOCH makes image digests reproducible (all times set to it).\n";

typedef struct {
  const char *file;
  char **tags;
  const char *target;
  char **build_args;
  bool no_cache;
  bool allow_insecure;
  sw_net_t network;
  char **secrets; /* ID=PATH */
  char **labels;
  sw_progress_mode_t progress;
  const char *iidfile;
  sw_compression_t comp;
  const char *output;
  bool quiet;
  const char *context;
  char **cache_from; /* refs */
  char *cache_to;    /* ref, or NULL */
  bool cache_max;    /* mode=max */
  bool cache_ignore_error;
  char **insecure;
  bool recipe;              /* --recipe python */
  sw_recipe_t *used_recipe; /* no Dockerfile: the recipe that wrote one */
  char **contexts;          /* --build-context NAME=VALUE */
  bool pull, push;
  const char *metadata_file;
  char **add_hosts;
  uint64_t shm_size;
  sw_rlimit_t *ulimits;
  size_t n_ulimits;
  char **ssh;
  bool check;
  char **platforms; /* --platform, normalised, each once */
} build_opts_t;

static void
opts_free(build_opts_t *o)
{
  sw_strv_free(o->tags);
  sw_strv_free(o->build_args);
  sw_strv_free(o->secrets);
  sw_strv_free(o->labels);
  sw_strv_free(o->cache_from);
  free(o->cache_to);
  sw_strv_free(o->insecure);
  sw_recipe_free(o->used_recipe);
  sw_strv_free(o->contexts);
  sw_strv_free(o->add_hosts);
  free(o->ulimits);
  sw_strv_free(o->ssh);
  sw_strv_free(o->platforms);
}

/* BuildKit's `type=registry,ref=R[,mode=min|max]`; a plain reference means type=registry (as
 * docker build's --cache-from IMAGE). Options BuildKit has that change nothing here
 * (image-manifest, oci-mediatypes, compression…) are accepted and ignored. */
static int
parse_cache_spec(const char *flag, const char *spec, char **ref, bool *max, bool *ignore_error)
{
  if (strchr(spec, '=') == NULL) {
    *ref = xstrdup(spec);
    return 0;
  }
  _cleanup_free_ char *copy = xstrdup(spec), *r = NULL;
  char *save = NULL;
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (strcmp(f, "type=registry") == 0)
      continue;
    if (sw_str_has_prefix(f, "type="))
      return sw_cli_usage_error("build", "%s %s: only type=registry is supported", flag, spec);
    if (sw_str_has_prefix(f, "ref=")) {
      free(r);
      r = xstrdup(f + 4);
    } else if (strcmp(f, "mode=min") == 0 || strcmp(f, "mode=max") == 0) {
      if (max == NULL)
        return sw_cli_usage_error("build", "%s %s: mode= is for --cache-to", flag, spec);
      *max = strcmp(f, "mode=max") == 0;
    } else if (sw_str_has_prefix(f, "ignore-error=") && ignore_error) {
      *ignore_error = strcmp(f + 13, "true") == 0;
    } else if (!sw_str_has_prefix(f, "image-manifest=") &&
               !sw_str_has_prefix(f, "oci-mediatypes=") && !sw_str_has_prefix(f, "compression")) {
      return sw_cli_usage_error("build", "%s %s: unknown field `%s` (type=registry,ref=REF%s)",
                                flag, spec, f, max ? "[,mode=min|max]" : "");
    }
  }
  if (r == NULL || *r == '\0')
    return sw_cli_usage_error("build", "%s %s: needs ref=HOST/REPO:TAG", flag, spec);
  *ref = steal_ptr(&r);
  return 0;
}

static int
parse_secret(const char *spec, char ***out)
{
  _cleanup_free_ char *id = NULL, *src = NULL;
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (sw_str_has_prefix(f, "id=")) {
      free(id);
      id = xstrdup(f + 3);
    } else if (sw_str_has_prefix(f, "src=") || sw_str_has_prefix(f, "source=")) {
      free(src);
      src = xstrdup(strchr(f, '=') + 1);
    } else if (strcmp(f, "type=file") == 0) {
      continue;
    } else {
      return sw_cli_usage_error("build", "--secret %s: unknown field `%s` (id=ID,src=PATH)", spec,
                                f);
    }
  }
  if (id == NULL || src == NULL)
    return sw_cli_usage_error("build", "--secret %s: needs id=ID,src=PATH", spec);
  if (access(src, R_OK) < 0)
    return sw_cli_usage_error("build", "--secret %s: cannot read `%s`: %s", spec, src,
                              strerror(errno));
  _cleanup_free_ char *abs = realpath(src, NULL);
  sw_env_set(out, id, abs ? abs : src);
  return 0;
}

enum {
  OPT_TARGET = 256,
  OPT_BUILD_ARG,
  OPT_NO_CACHE,
  OPT_NETWORK,
  OPT_SECRET,
  OPT_LABEL,
  OPT_PROGRESS,
  OPT_IIDFILE,
  OPT_COMPRESSION,
  OPT_ALLOW,
  OPT_CACHE_TO,
  OPT_CACHE_FROM,
  OPT_RECIPE,
  OPT_BUILD_CONTEXT,
  OPT_PULL,
  OPT_PUSH,
  OPT_LOAD,
  OPT_METADATA_FILE,
  OPT_ADD_HOST,
  OPT_SHM_SIZE,
  OPT_ULIMIT,
  OPT_SSH,
  OPT_CHECK,
  OPT_PLATFORM,
};

static int
parse_args(int argc, char **argv, build_opts_t *o)
{
  static const struct option longopts[] = {
      {"file", required_argument, NULL, 'f'},
      {"tag", required_argument, NULL, 't'},
      {"target", required_argument, NULL, OPT_TARGET},
      {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
      {"no-cache", no_argument, NULL, OPT_NO_CACHE},
      {"network", required_argument, NULL, OPT_NETWORK},
      {"secret", required_argument, NULL, OPT_SECRET},
      {"label", required_argument, NULL, OPT_LABEL},
      {"progress", required_argument, NULL, OPT_PROGRESS},
      {"iidfile", required_argument, NULL, OPT_IIDFILE},
      {"compression", required_argument, NULL, OPT_COMPRESSION},
      {"allow", required_argument, NULL, OPT_ALLOW},
      {"cache-to", required_argument, NULL, OPT_CACHE_TO},
      {"cache-from", required_argument, NULL, OPT_CACHE_FROM},
      {"build-context", required_argument, NULL, OPT_BUILD_CONTEXT},
      {"pull", no_argument, NULL, OPT_PULL},
      {"push", no_argument, NULL, OPT_PUSH},
      {"load", no_argument, NULL, OPT_LOAD},
      {"metadata-file", required_argument, NULL, OPT_METADATA_FILE},
      {"add-host", required_argument, NULL, OPT_ADD_HOST},
      {"shm-size", required_argument, NULL, OPT_SHM_SIZE},
      {"ulimit", required_argument, NULL, OPT_ULIMIT},
      {"ssh", required_argument, NULL, OPT_SSH},
      {"check", no_argument, NULL, OPT_CHECK},
      {"platform", required_argument, NULL, OPT_PLATFORM},
      {"insecure-registry", required_argument, NULL, 'I'},
      {"recipe", required_argument, NULL, OPT_RECIPE},
      {"output", required_argument, NULL, 'o'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c;
  sw_error_t err = NULL;
  o->comp = sw_compression_default();
  o->progress = SW_PROGRESS_AUTO;
  while ((c = getopt_long(argc, argv, "+f:t:o:qh", longopts, NULL)) != -1) {
    switch (c) {
    case 'f':
      o->file = optarg;
      break;
    case 't': {
      /* Checked now, as Docker does: a bad name must not cost a whole build first. */
      _cleanup_free_ char *name = sw_ref_normalize(optarg, &err);
      if (name == NULL) {
        int rc = sw_cli_usage_error("build", "-t/--tag: %s", err->msg);
        sw_error_release(&err);
        return rc;
      }
      sw_strv_push(&o->tags, optarg);
      break;
    }
    case OPT_TARGET:
      o->target = optarg;
      break;
    case OPT_BUILD_ARG:
      sw_strv_push(&o->build_args, optarg);
      break;
    case OPT_NO_CACHE:
      o->no_cache = true;
      break;
    case OPT_NETWORK:
      if (strcmp(optarg, "host") == 0 || strcmp(optarg, "default") == 0)
        o->network = SW_NET_HOST;
      else if (strcmp(optarg, "none") == 0)
        o->network = SW_NET_NONE;
      else
        return sw_cli_usage_error("build", "--network must be host or none, not `%s`", optarg);
      break;
    case OPT_ALLOW:
      /* BuildKit's entitlements; network.host is what RUN steps get anyway. */
      if (strcmp(optarg, "security.insecure") == 0)
        o->allow_insecure = true;
      else if (strcmp(optarg, "network.host") != 0)
        return sw_cli_usage_error("build", "--allow `%s`: use security.insecure or network.host",
                                  optarg);
      break;
    case OPT_SECRET:
      if (parse_secret(optarg, &o->secrets) != 0)
        return SW_EXIT_USAGE;
      break;
    case OPT_LABEL:
      if (strchr(optarg, '=') == NULL)
        return sw_cli_usage_error("build", "--label needs KEY=VALUE, not `%s`", optarg);
      sw_strv_push(&o->labels, optarg);
      break;
    case OPT_PROGRESS:
      if (strcmp(optarg, "auto") == 0)
        o->progress = SW_PROGRESS_AUTO;
      else if (strcmp(optarg, "plain") == 0)
        o->progress = SW_PROGRESS_PLAIN;
      else if (strcmp(optarg, "tty") == 0)
        o->progress = SW_PROGRESS_TTY;
      else if (strcmp(optarg, "quiet") == 0)
        o->progress = SW_PROGRESS_QUIET;
      else
        return sw_cli_usage_error("build", "--progress must be auto, plain or tty, not `%s`",
                                  optarg);
      break;
    case OPT_IIDFILE:
      o->iidfile = optarg;
      break;
    case OPT_COMPRESSION:
      if (sw_compression_parse(optarg, &o->comp, &err) < 0)
        return sw_error_report(&err);
      break;
    case 'o': {
      int r = build_output_image(optarg, &o->tags, &o->push, &err);
      if (r < 0) {
        int code = sw_cli_usage_error("build", "%s", err->msg);
        sw_error_release(&err);
        return code;
      }
      if (r == 0)
        o->output = optarg;
      break;
    }
    case OPT_CACHE_TO: {
      char *ref = NULL;
      if (parse_cache_spec("--cache-to", optarg, &ref, &o->cache_max, &o->cache_ignore_error) != 0)
        return SW_EXIT_USAGE;
      free(o->cache_to);
      o->cache_to = ref;
      break;
    }
    case OPT_CACHE_FROM: {
      _cleanup_free_ char *ref = NULL;
      if (parse_cache_spec("--cache-from", optarg, &ref, NULL, NULL) != 0)
        return SW_EXIT_USAGE;
      sw_strv_push(&o->cache_from, ref);
      break;
    }
    case 'I':
      sw_strv_push(&o->insecure, optarg);
      break;
    case OPT_RECIPE:
      if (strcmp(optarg, "python") != 0)
        return sw_cli_usage_error("build", "--recipe: only `python` is known, not `%s`", optarg);
      o->recipe = true;
      break;
    case OPT_BUILD_CONTEXT:
      sw_strv_push(&o->contexts, optarg);
      break;
    case OPT_PULL:
      o->pull = true;
      break;
    case OPT_PUSH:
      o->push = true;
      break;
    case OPT_LOAD: /* buildx: load into docker; slipway's images are in its store anyway */
      break;
    case OPT_METADATA_FILE:
      o->metadata_file = optarg;
      break;
    case OPT_ADD_HOST: {
      size_t n = strcspn(optarg, ":=");
      if (n == 0 || optarg[n] == '\0' || optarg[n + 1] == '\0')
        return sw_cli_usage_error("build", "--add-host needs HOST:IP, not `%s`", optarg);
      sw_strv_push(&o->add_hosts, optarg);
      break;
    }
    case OPT_SHM_SIZE:
      if (build_ram_size(optarg, &o->shm_size, &err) < 0)
        return sw_error_report(&err);
      break;
    case OPT_CHECK:
      o->check = true;
      break;
    case OPT_PLATFORM:
      if (build_platforms_add(optarg, &o->platforms, &err) < 0)
        return sw_error_report(&err);
      break;
    case OPT_SSH:
      sw_strv_push(&o->ssh, optarg);
      break;
    case OPT_ULIMIT:
      o->ulimits = xrealloc(o->ulimits, (o->n_ulimits + 1) * sizeof(*o->ulimits));
      if (sw_rlimit_parse(optarg, &o->ulimits[o->n_ulimits], &err) < 0)
        return sw_error_report(&err);
      o->n_ulimits++;
      break;
    case 'q':
      o->quiet = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return -1;
    default:
      return sw_cli_usage_error("build", "bad option");
    }
  }
  if (optind + 1 != argc)
    return sw_cli_usage_error("build", optind >= argc ? "build needs a CONTEXT directory"
                                                      : "build takes exactly one CONTEXT");
  o->context = argv[optind];
  const char *dp = getenv("DOCKER_DEFAULT_PLATFORM");
  if (o->platforms == NULL && dp && *dp && build_platforms_add(dp, &o->platforms, &err) < 0)
    return sw_error_report(&err);
  if (sw_strv_len(o->platforms) > 1 && o->recipe)
    return sw_cli_usage_error("build",
                              "several platforms (%s, ...) make an image index, which --recipe "
                              "does not take yet: build one platform",
                              o->platforms[0]);
  if (o->quiet)
    o->progress = SW_PROGRESS_QUIET;
  return 0;
}

/* The signal that stopped the build: the exit status is 128 + it, as a shell reports. */
static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
  stop_signal = sig;
  if (sw_solve_interrupted()) {
    /* A second Ctrl-C: leave now (the store stays consistent: nothing is half-committed). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    raise(sig);
  }
  sw_solve_interrupt();
}

/* No Dockerfile: the recipe writes one for a Python project (recipe.h). */
static int
load_recipe(build_opts_t *o, sw_dockerfile_t **df, sw_error_t *err)
{
  sw_recipe_t *r = NULL;
  if (sw_recipe_load(o->context, o->build_args, &r, err) < 0)
    return -1;
  o->used_recipe = r;
  _cleanup_free_ char *text = sw_recipe_dockerfile(r);
  _cleanup_free_ char *name = xasprintf("%s (slipway recipe)", o->context);
  if (!o->quiet)
    fprintf(stderr,
            "slipway: building `%s` with the Python recipe (%s, %s); `slipway recipe %s` shows "
            "how, `--dockerfile` the equivalent Dockerfile\n",
            o->context, r->packaged ? "packaged" : "unpackaged", r->wsgi_app, o->context);
  /* Reproducible by default: the same project and base give the same image digest. */
  if (getenv("SOURCE_DATE_EPOCH") == NULL)
    setenv("SOURCE_DATE_EPOCH", "0", 1);
  return sw_dockerfile_parse(name, text, strlen(text), df, err);
}

static int
load_dockerfile(build_opts_t *o, char **path_out, sw_dockerfile_t **df, sw_error_t *err)
{
  if (o->recipe) {
    *path_out = NULL;
    return load_recipe(o, df, err);
  }
  if (o->file && strcmp(o->file, "-") == 0) {
    _cleanup_buf_ sw_buf_t b = {0};
    char buf[65536];
    ssize_t n;
    while ((n = read(0, buf, sizeof(buf))) > 0)
      sw_buf_append(&b, buf, (size_t)n);
    *path_out = NULL;
    return sw_dockerfile_parse("Dockerfile", b.data ? b.data : "", b.len, df, err);
  }
  char *path = o->file ? xstrdup(o->file) : xasprintf("%s/Dockerfile", o->context);
  struct stat st;
  if (stat(path, &st) < 0) {
    int e = errno;
    free(path);
    if (o->file == NULL && e == ENOENT && sw_recipe_detect_python(o->context)) {
      *path_out = NULL;
      return load_recipe(o, df, err);
    }
    _cleanup_free_ char *p = xasprintf("%s/Dockerfile", o->context);
    return sw_error_code(err, SW_EXIT_USAGE, e,
                         "Dockerfile `%s` (give one with -f; a Python project with manage.py, "
                         "pyproject.toml, setup.py or requirements.txt builds without one)",
                         o->file ? o->file : p);
  }
  *path_out = path;
  return sw_dockerfile_load(path, df, err);
}

/* The image's filesystem (its layers applied in order, whiteouts deleting) as one tar into
 * DEST (a file, or - for stdout), or, LOCAL, written into the directory DEST (made if missing;
 * what is there stays, unless the image has a file of the same name). The local form applies
 * that tar, which holds no whiteouts, so it never deletes anything of DEST's; every write is
 * resolved inside DEST as for any layer. */
static int
export_files(sw_store_t *store, sw_image_t *img, const char *dest, bool local, sw_error_t *err)
{
  _cleanup_free_ char *root = sw_store_mkdtemp(store, "export-", err);
  if (root == NULL)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < img->n_layers && rc == 0; i++) {
    _cleanup_close_ int fd = sw_blob_open(store, img->layers[i].digest, NULL, err);
    if (fd < 0) {
      rc = -1;
      break;
    }
    sw_layer_apply_opts_t ao = sw_layer_apply_opts_default();
    ao.mode = SW_APPLY_FLAT;
    rc = sw_layer_apply(fd, root, &ao, NULL, err);
  }
  _cleanup_free_ char *tar_path = local ? xasprintf("%s.tar", root) : NULL;
  if (rc == 0) {
    _cleanup_close_ int out =
        !local && strcmp(dest, "-") == 0
            ? dup(STDOUT_FILENO)
            : open(local ? tar_path : dest, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      rc = sw_error(err, errno, "create `%s`", local ? tar_path : dest);
    } else {
      sw_compression_t none = {.codec = &sw_codec_none};
      sw_sink_t *sink = sw_sink_new(&none, out);
      sw_sink_result_t res;
      rc = sw_layer_write_tar(root, sw_epoch_from_env(), sink, err);
      if (rc == 0)
        rc = sw_sink_finish(sink, &res, err);
      sw_sink_free(sink);
      if (rc == 0 && local) {
        sw_layer_apply_opts_t ao = sw_layer_apply_opts_default();
        ao.mode = SW_APPLY_FLAT;
        if (lseek(out, 0, SEEK_SET) < 0)
          rc = sw_error(err, errno, "seek `%s`", tar_path);
        else if (sw_mkdir_p(dest, 0755, err) < 0 || sw_layer_apply(out, dest, &ao, NULL, err) < 0)
          rc = sw_error_wrap(err, "-o type=local,dest=%s", dest);
      }
    }
  }
  if (tar_path)
    unlink(tar_path);
  sw_error_t e = NULL;
  sw_rm_rf(root, &e);
  sw_error_release(&e);
  return rc;
}

/* Does -o SPEC write to stdout (`-o -`, `dest=-`)? Then -q prints no image ID there. */
static bool
output_is_stdout(const char *spec)
{
  if (spec == NULL)
    return false;
  if (strcmp(spec, "-") == 0)
    return true;
  const char *d = strstr(spec, "dest=-");
  return d && (d == spec || d[-1] == ',') && (d[6] == '\0' || d[6] == ',');
}

/* -o type=local of an index: each platform's files in DEST/OS_ARCH[_VARIANT], as buildx. */
static int
export_files_index(sw_store_t *store, const sw_index_t *idx, const char *dest, sw_error_t *err)
{
  for (size_t i = 0; i < idx->n_entries; i++) {
    const sw_index_entry_t *e = &idx->entries[i];
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    _cleanup_free_ char *dir = xasprintf("%s/%s", dest, e->platform);
    for (char *c = dir + strlen(dest) + 1; *c; c++)
      if (*c == '/')
        *c = '_';
    if (sw_image_find(store, e->manifest_digest, &img, err) < 0 ||
        export_files(store, img, dir, true, err) < 0)
      return sw_error_wrap(err, "the %s image", e->platform);
  }
  return 0;
}

/* -o type=...,dest=... of the image img, or of the index idx (several platforms). */
static int
export_output(sw_store_t *store, sw_image_t *img, const sw_index_t *idx, const char *name,
              const char *spec, sw_progress_t *p, sw_error_t *err)
{
  _cleanup_free_ char *type = NULL, *dest = NULL;
  bool tar = false;
  _cleanup_free_ char *copy = xstrdup(spec);
  char *save = NULL;
  /* buildx's short forms: `-o DIR` is type=local, `-o -` the filesystem as a tar on stdout. */
  if (strchr(spec, '=') == NULL) {
    type = xstrdup(strcmp(spec, "-") == 0 ? "tar" : "local");
    dest = xstrdup(spec);
    *copy = '\0';
  }
  for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
    if (sw_str_has_prefix(f, "type=")) {
      free(type);
      type = xstrdup(f + 5);
    } else if (sw_str_has_prefix(f, "dest=")) {
      free(dest);
      dest = xstrdup(f + 5);
    } else if (strcmp(f, "tar=true") == 0) {
      tar = true;
    } else if (strcmp(f, "tar=false") == 0) {
      tar = false;
    } else if (!sw_str_has_prefix(f, "name=")) {
      return sw_error_code(err, SW_EXIT_USAGE, 0, "-o %s: unknown field `%s`", spec, f);
    }
  }
  if (type == NULL || dest == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "-o %s: needs type=oci|docker|tar|local,dest=PATH (or just a directory)",
                         spec);
  int id = sw_progress_begin(p, "exporting to the output");
  int rc;
  if (strcmp(type, "oci") == 0 || strcmp(type, "docker") == 0) {
    sw_archive_format_t fmt = strcmp(type, "docker") == 0 ? SW_ARCHIVE_DOCKER
                              : tar                       ? SW_ARCHIVE_OCI
                                                          : SW_ARCHIVE_OCI_DIR;
    sw_archive_item_t item = {.img = idx ? NULL : img, .index = idx, .name = name};
    rc = sw_archive_save_items(store, &item, 1, fmt, dest, err);
  } else if (idx && strcmp(type, "local") == 0) {
    rc = export_files_index(store, idx, dest, err);
  } else if (idx && strcmp(type, "tar") == 0) {
    rc = sw_error_code(err, SW_EXIT_USAGE, 0,
                       "-o %s: a tar of several platforms' files is not written; use "
                       "type=local (a directory per platform) or type=oci",
                       spec);
  } else if (strcmp(type, "tar") == 0 || strcmp(type, "local") == 0) {
    rc = export_files(store, img, dest, strcmp(type, "local") == 0, err);
  } else {
    rc =
        sw_error_code(err, SW_EXIT_USAGE, 0, "-o %s: type must be oci, docker, tar or local", spec);
  }
  if (rc < 0) {
    sw_progress_error(p, id, (*err)->msg);
    return -1;
  }
  sw_progress_log(p, id, "wrote %s to %s", type, dest);
  sw_progress_done(p, id);
  return 0;
}

/* A rebuild that changed nothing finds the very same image under every name it gives: then it
 * writes nothing at all (no blobs, no rows). Fills img's digests and names from the store. */
static bool
unchanged(sw_store_t *store, sw_image_t *img, char *const *tags)
{
  _cleanup_free_ char *cfg = sw_json_dump(img->config);
  _cleanup_free_ char *id = sw_sha256_digest(cfg, strlen(cfg));
  _cleanup_(sw_image_freep) sw_image_t *found = NULL;
  sw_error_t e = NULL;
  if (tags == NULL || tags[0] == NULL) {
    if (sw_image_get(store, id, &found, &e) != 1)
      goto no;
  } else {
    for (size_t i = 0; tags[i]; i++) {
      sw_image_free(found);
      found = NULL;
      /* a name of an image index moves to the image: not unchanged */
      if (sw_index_get(store, tags[i], NULL, &e) != 0 ||
          sw_image_get(store, tags[i], &found, &e) != 1 || strcmp(found->config_digest, id) != 0)
        goto no;
    }
  }
  free(img->config_digest); /* the base's, from the solve */
  free(img->manifest_digest);
  img->config_digest = steal_ptr(&found->config_digest);
  img->manifest_digest = steal_ptr(&found->manifest_digest);
  /* The same diffIDs (same config); the stored image's layers have their blobs. */
  free(img->layers);
  img->layers = steal_ptr(&found->layers);
  img->n_layers = found->n_layers;
  found->n_layers = 0;
  sw_strv_free(img->names);
  img->names = steal_ptr(&found->names);
  return true;
no:
  sw_error_release(&e);
  return false;
}

/* mode=min: the records of the final image's stages (the target and the stages it is FROM);
 * mode=max: every stage's. */
static bool
in_final_chain(const sw_plan_t *plan, int stage)
{
  for (int st = plan->target; st >= 0; st = plan->stages[st].base_stage)
    if (st == stage)
      return true;
  return false;
}

static int
export_cache(build_opts_t *o, sw_store_t *store, const sw_plan_t *plan, sw_cache_log_t *log,
             const sw_registry_opts_t *ro, sw_progress_t *p, sw_error_t *err)
{
  _cleanup_free_ sw_cache_entry_t *e = xcalloc(log->n ? log->n : 1, sizeof(*e));
  size_t n = 0;
  /* The final image's records first: two stages that ran the same step at once wrote two
   * records of one key (different times); the export keeps the first of a key, so the one
   * the image used is the one a --cache-from build gets, with the same image digest. */
  for (size_t i = 0; i < log->n; i++)
    if (in_final_chain(plan, log->v[i].stage))
      e[n++] = log->v[i].e;
  for (size_t i = 0; o->cache_max && i < log->n; i++)
    if (!in_final_chain(plan, log->v[i].stage))
      e[n++] = log->v[i].e;
  int id = sw_progress_begin(p, "exporting cache to registry");
  if (sw_rcache_export(store, o->cache_to, e, n, &o->comp, ro, err) < 0) {
    sw_progress_error(p, id, (*err)->msg);
    return -1;
  }
  sw_progress_log(p, id, "%zu cache records (mode=%s) to %s done", n, o->cache_max ? "max" : "min",
                  o->cache_to);
  sw_progress_done(p, id);
  return 0;
}

/* --cache-to after the image (or index) `stored` was stored: an error, or a warning with
 * ignore-error=true. The records of every platform's plan are in log (their stages are the
 * same, so min/max select alike). */
static int
build_cache_to(build_opts_t *o, sw_store_t *store, const sw_plan_t *plan, sw_cache_log_t *log,
               const sw_registry_opts_t *ro, sw_progress_t *p, const char *stored, sw_error_t *err)
{
  if (export_cache(o, store, plan, log, ro, p, err) == 0)
    return 0;
  if (o->cache_ignore_error) {
    sw_warn("%s (ignore-error=true)", (*err)->msg);
    sw_error_release(err);
    return 0;
  }
  return sw_error_wrap(err,
                       "--cache-to %s failed after the image %s was stored; check that the "
                       "registry is reachable and that you may push there (slipway login HOST), "
                       "or build without --cache-to",
                       o->cache_to, stored);
}

/* BuildKit's "importing cache manifest from REF" steps; a ref that cannot be read is a
 * warning (the build goes on without it), as in BuildKit. */
static sw_rcache_t *
import_cache(build_opts_t *o, const sw_registry_opts_t *ro, sw_progress_t *p)
{
  if (o->cache_from == NULL)
    return NULL;
  sw_rcache_t *c = sw_rcache_new(ro);
  for (size_t i = 0; o->cache_from[i]; i++) {
    _cleanup_free_ char *name = xasprintf("importing cache manifest from %s", o->cache_from[i]);
    int id = sw_progress_begin(p, name);
    size_t before = sw_rcache_count(c);
    sw_error_t e = NULL;
    if (sw_rcache_import(c, o->cache_from[i], &e) < 0) {
      sw_progress_log(p, id, "cannot be read (see the warning): building without it");
      sw_warn("--cache-from %s: %s; building without it", o->cache_from[i], e->msg);
      sw_error_release(&e);
    } else {
      sw_progress_log(p, id, "%zu cache records", sw_rcache_count(c) - before);
    }
    sw_progress_done(p, id);
  }
  return c;
}

/* The image the target stage is built on (through FROM <stage>), if stored: the smaller blobs
 * of its imported layers, which the image will ship, are started now, beside the build. */
static sw_reblob_t *
start_reblob(sw_store_t *store, const sw_plan_t *plan)
{
  const sw_stage_t *st = &plan->stages[plan->target];
  while (st->base_stage >= 0)
    st = &plan->stages[st->base_stage];
  _cleanup_(sw_image_freep) sw_image_t *base = NULL;
  sw_error_t e = NULL;
  if (st->scratch || sw_image_get(store, st->base, &base, &e) != 1) {
    sw_error_release(&e); /* not stored yet (pulled by the build): made at the commit */
    return NULL;
  }
  return sw_reblob_start(store, base);
}

static void
warn_unused_args(const build_opts_t *o, const sw_plan_t *plan)
{
  _cleanup_strv_ char **unused = sw_plan_unused_build_args(plan);
  for (size_t i = 0; unused[i]; i++)
    if (!(o->used_recipe && sw_str_has_prefix(unused[i], "SLIPWAY_")))
      sw_warn("build arg `%s` was not consumed by any ARG", unused[i]);
}

/* The end of a build of several platforms: rc is the build's, idx the index it made. The image
 * ID printed and written (-q, --iidfile) is the index's digest, as docker's containerd store
 * gives. */
static int
finish_index(build_opts_t *o, const sw_plan_t *plan, sw_progress_t *p, int rc, sw_index_t *idx,
             sw_error_t *err)
{
  sw_progress_summary(p, rc == 0 ? idx->digest : NULL);
  sw_progress_free(p);
  if (rc == 0 && o->iidfile &&
      sw_write_file_atomic(o->iidfile, idx->digest, strlen(idx->digest), 0644, err) < 0)
    rc = -1;
  if (rc == 0 && o->metadata_file) {
    _cleanup_free_ char *text =
        xasprintf("{\n  \"containerimage.descriptor\": {\"mediaType\": \"%s\", \"digest\": "
                  "\"%s\", \"size\": %lld},\n  \"containerimage.digest\": \"%s\"\n}",
                  SW_MT_OCI_INDEX, idx->digest, (long long)idx->size, idx->digest);
    rc = sw_write_file_atomic(o->metadata_file, text, strlen(text), 0644, err);
  }
  if (rc == 0 && o->quiet)
    printf("%s\n", idx->digest);
  if (rc == 0)
    warn_unused_args(o, plan);
  return rc;
}

static int
do_build(build_opts_t *o, sw_global_t *g, sw_error_t *err)
{
  _cleanup_free_ char *df_path = NULL;
  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df = NULL;
  _cleanup_(sw_plan_freep) sw_plan_t *plan = NULL;
  _cleanup_(sw_store_freep) sw_store_t *store = NULL;
  _cleanup_(sw_context_freep) sw_context_t *ctx = NULL;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_(sw_reblob_freep) sw_reblob_t *reblob = NULL; /* freed (cancelled) before store */
  _cleanup_free_ char *ctx_cache = NULL;
  _cleanup_(sw_rcache_freep) sw_rcache_t *rcache = NULL;
  sw_registry_opts_t ro = {.insecure = o->insecure, .quiet = true};
  sw_cache_log_t log;
  _cleanup_(build_named_clear) build_named_t named = {0};
  _cleanup_(sw_ssh_agents_freep) sw_ssh_agents_t *ssh = NULL;
  _cleanup_(sw_index_freep) sw_index_t *index = NULL;
  _cleanup_(sw_index_down_clear) sw_index_down_t index_down = {0};

  struct stat st;
  if (stat(o->context, &st) < 0 || !S_ISDIR(st.st_mode))
    return sw_error_code(err, SW_EXIT_USAGE, errno ? errno : ENOTDIR, "build context `%s`",
                         o->context);
  if (load_dockerfile(o, &df_path, &df, err) < 0)
    return -1;
  if (sw_store_open(g->root, &store, err) < 0)
    return -1;
  int lint = build_lint(store, df, o->context, df_path, o->check, err);
  if (o->check || lint < 0)
    return lint;
  ctx_cache = sw_store_path(store, "contexts");
  if (build_named_resolve(store, o->contexts, ctx_cache, &named, err) < 0)
    return -1;
  if (o->ssh && sw_ssh_agents_new(o->ssh, &ssh, err) < 0)
    return -1;
  sw_plan_opts_t po = {.build_args = o->build_args,
                       .target = o->target,
                       .contexts = named.plan,
                       .platform = o->platforms ? o->platforms[0] : NULL};
  if (sw_plan_new(df, &po, &plan, err) < 0)
    return -1;
  if (o->network == SW_NET_HOST)
    sw_preflight_indexes(plan, &index_down);
  reblob = start_reblob(store, plan);
  if (sw_context_open(o->context, df_path, ctx_cache, &ctx, err) < 0)
    return -1;

  sw_cache_log_init(&log);
  sw_progress_t *p = sw_progress_new(o->progress, stderr);
  rcache = import_cache(o, &ro, p);
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  sw_solve_opts_t so = {
      .store = store,
      .plan = plan,
      .ctx = ctx,
      .progress = p,
      .no_cache = o->no_cache,
      .network = o->network,
      .secrets = o->secrets,
      .comp = o->comp,
      .epoch = sw_epoch_from_env(),
      .allow_insecure = o->allow_insecure,
      .cache_from = rcache,
      .cache_log = o->cache_to ? &log : NULL,
      .named_paths = named.paths,
      .named_ctxs = named.ctxs,
      .add_hosts = o->add_hosts,
      .shm_size = o->shm_size,
      .ulimits = o->ulimits,
      .n_ulimits = o->n_ulimits,
      .ssh = ssh,
      .index_down = &index_down,
  };
  if (sw_strv_len(o->platforms) > 1) {
    int rc = 0;
    build_platforms_opts_t bo = {.store = store,
                                 .df = df,
                                 .first = plan,
                                 .plan_opts = &po,
                                 .solve_opts = &so,
                                 .platforms = o->platforms,
                                 .labels = o->labels,
                                 .tags = o->tags,
                                 .progress = p,
                                 .reblob = reblob,
                                 .pull = o->pull ? &ro : NULL};
    rc = build_platforms(&bo, &index, err);
    /* The index goes where an image goes: the archive names it by the first -t. */
    _cleanup_free_ char *name = o->tags ? sw_ref_normalize(o->tags[0], NULL) : NULL;
    if (rc == 0 && o->output)
      rc = export_output(store, NULL, index, name, o->output, p, err);
    if (rc == 0 && o->push)
      rc = build_push(store, index->digest, o->tags, &ro, p, err);
    if (rc == 0 && o->cache_to)
      rc = build_cache_to(o, store, plan, &log, &ro, p, index->digest, err);
    sw_cache_log_clear(&log);
    return finish_index(o, plan, p, rc, index, err);
  }
  int rc = o->pull ? build_pull_bases(store, &plan, 1, &ro, p, err) : 0;
  if (rc == 0)
    rc = sw_solve(&so, &img, err);
  if (rc < 0 && o->used_recipe) {
    /* pip's "no matching distribution for X": say where X was required. */
    _cleanup_free_ char *hint = sw_recipe_explain(o->used_recipe, (*err)->msg);
    if (hint) {
      char *m = xasprintf("%s\n%s", (*err)->msg, hint);
      free((*err)->msg);
      (*err)->msg = m;
    }
  }
  if (rc == 0) {
    build_apply_labels(img, o->labels);
    int id = sw_progress_begin(p, "exporting to image");
    /* Imported layers get their smaller blob; layers committed without a blob get it now,
     * with the build's codec. */
    double waited = 0;
    rc = unchanged(store, img, o->tags) ? 0
         : sw_reblob_apply(store, reblob, img, &waited, err) < 0 ||
                 sw_image_make_blobs(store, img, &o->comp, err) < 0
             ? -1
             : sw_image_commit(store, img, o->tags, err);
    if (waited >= 0.05)
      sw_progress_log(p, id, "waited %.1fs for the base's gzip -6 blob (made once per base)",
                      waited);
    if (rc == 0) {
      sw_progress_log(p, id, "writing image %s done", img->config_digest);
      for (size_t i = 0; img->names && img->names[i]; i++)
        sw_progress_log(p, id, "naming to %s done", img->names[i]);
      sw_progress_done(p, id);
    } else {
      sw_progress_error(p, id, (*err)->msg);
    }
  }
  if (rc == 0 && o->output) {
    /* The archive names the image by the first -t (the image may have older names too). */
    _cleanup_free_ char *name = o->tags ? sw_ref_normalize(o->tags[0], NULL) : NULL;
    rc = export_output(store, img, NULL, name, o->output, p, err);
  }
  if (rc == 0 && o->push)
    rc = build_push(store, img->config_digest, o->tags, &ro, p, err);
  if (rc == 0 && o->cache_to)
    rc = build_cache_to(o, store, plan, &log, &ro, p, img->config_digest, err);
  sw_cache_log_clear(&log);
  sw_progress_summary(p, rc == 0 ? img->config_digest : NULL);
  sw_progress_free(p);
  if (rc == 0 && o->iidfile &&
      sw_write_file_atomic(o->iidfile, img->config_digest, strlen(img->config_digest), 0644, err) <
          0)
    rc = -1;
  if (rc == 0 && o->metadata_file &&
      build_write_metadata(store, img, o->tags, o->metadata_file, err) < 0)
    rc = -1;
  if (rc == 0 && o->quiet && !output_is_stdout(o->output))
    printf("%s\n", img->config_digest);
  if (rc == 0)
    warn_unused_args(o, plan);
  return rc;
}

/* Whether a rootless build may first try outside its user namespace (sw_userns_speculate):
 * only one whose work, when every step is cached, is reading the store and writing its
 * database. A build that is sure to run steps (--no-cache), that exports files or talks to a
 * registry enters at once, and so does one that reads its Dockerfile or a secret from anything
 * but a regular file (stdin, a pipe: the build after the try would find it empty). */
static bool
speculable(const build_opts_t *o)
{
  struct stat st;
  if (o->no_cache || o->pull || o->push || o->output || o->cache_from || o->cache_to || o->ssh ||
      sw_strv_len(o->platforms) > 1)
    return false;
  if (o->file && (strcmp(o->file, "-") == 0 || stat(o->file, &st) < 0 || !S_ISREG(st.st_mode)))
    return false;
  for (size_t i = 0; o->secrets && o->secrets[i]; i++) {
    const char *path = strchr(o->secrets[i], '=');
    if (path && (stat(path + 1, &st) < 0 || !S_ISREG(st.st_mode)))
      return false;
  }
  return true;
}

int
cmd_build(int argc, char **argv, sw_global_t *g)
{
  build_opts_t o = {0};
  sw_error_t err = NULL;
  int r = parse_args(argc, argv, &o);
  if (r != 0) {
    opts_free(&o);
    return r < 0 ? 0 : r;
  }
  if (sw_userns_speculating() && !speculable(&o) &&
      sw_userns_enter_late("this build exports, pulls or runs every step", &err) < 0) {
    opts_free(&o);
    return sw_error_report(&err);
  }
  int d = do_build(&o, g, &err); /* 1: `--check` found warnings */
  if (d < 0 && sw_userns_speculating() && !stop_signal) {
    /* A step to run, or any other failure: the build in the namespace gets the last word. */
    _cleanup_free_ char *why = xstrdup(err ? err->msg : "the try failed");
    sw_error_release(&err);
    sw_recipe_free(o.used_recipe);
    o.used_recipe = NULL;
    d = sw_userns_enter_late(why, &err) < 0 ? -1 : do_build(&o, g, &err);
  }
  if (d < 0) {
    sw_store_error_full(g->root, &err);
    r = sw_error_report(&err);
  } else {
    r = d;
  }
  opts_free(&o);
  if (r != 0 && stop_signal)
    return 128 + stop_signal;
  return r;
}
