/* slipway import: a root filesystem tarball becomes a one-layer image, like `docker import`.
 * The tar is read once: applied to a snapshot, hashed (diffID) and recompressed in one stream. */
#include "../lib/platform.h"
#include "../lib/store.h"
#include "cli.h"

#include <ctype.h>
#include <fcntl.h>

/* What an image built on the imported base ships it with (see reblob.c). */
#define SW_IMPORT_SHIP_COMPRESSION "gzip:6"

static const char usage_text[] =
    "Usage: slipway import [OPTIONS] FILE|- [REPOSITORY[:TAG]]\n"
    "\n"
    "Create an image from a root filesystem tarball (plain, gzip or zstd; `-` reads stdin).\n"
    "The image has one layer holding the tarball's files.\n"
    "\n"
    "Options:\n"
    "  -c, --change LINE        apply a Dockerfile instruction to the config: CMD, ENTRYPOINT,\n"
    "                           ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL\n"
    "                           (repeatable), e.g. -c 'ENV PATH=/usr/bin' -c 'CMD [\"sh\"]'\n"
    "  -m, --message TEXT       history comment (default \"Imported from -\", as Docker)\n"
    "      --platform OS/ARCH[/VARIANT]  platform to record in the config (default: the\n"
    "                           host's)\n"
    "      --compression ALGO   layer compression: gzip[:LEVEL], zstd[:LEVEL] or none.\n"
    "                           Default: the build's fast gzip now, and gzip:6 (made once,\n"
    "                           in the background of the first build that ships the layer)\n"
    "                           in the images built on it\n"
    "  -q, --quiet              print only the image ID\n"
    "  -h, --help               print this help\n"
    "\n"
    "Example:\n"
    "  slipway import rootfs.tar.gz myimage:1.0 -c 'CMD [\"/bin/sh\"]' -c 'ENV LANG=C.UTF-8'\n";

/* Split a --change argument into words: whitespace separates, quotes group (and go). */
static char **
split_words(const char *s)
{
  char **v = xcalloc(1, sizeof(*v));
  sw_buf_t w = {0};
  bool in_word = false;
  char q = 0;
  for (const char *c = s;; c++) {
    if (*c == '\0' || (!q && (*c == ' ' || *c == '\t'))) {
      if (in_word)
        sw_strv_push_take(&v, sw_buf_steal(&w));
      in_word = false;
      if (*c == '\0')
        break;
    } else if (!q && (*c == '"' || *c == '\'')) {
      q = *c;
      in_word = true;
    } else if (q && *c == q) {
      q = 0;
    } else if (*c == '\\' && c[1] && q != '\'') {
      sw_buf_putc(&w, *++c);
      in_word = true;
    } else {
      sw_buf_putc(&w, *c);
      in_word = true;
    }
  }
  sw_buf_free(&w);
  return v;
}

/* CMD/ENTRYPOINT: JSON array (exec form) or a shell command. */
static int
set_command(json_t *cfg, const char *key, const char *arg, sw_error_t *err)
{
  json_error_t je;
  json_t *a = arg[0] == '[' ? json_loads(arg, 0, &je) : NULL;
  if (a) {
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v))
    {
      json_decref(a);
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--change %s: exec form must be strings", key);
    }
    json_object_set_new(sw_config_container(cfg), key, a);
    return 0;
  }
  char *sh[] = {"/bin/sh", "-c", (char *)arg, NULL};
  sw_config_set_strv(cfg, key, sh);
  return 0;
}

/* KEY=VALUE pairs, or the legacy "KEY VALUE" form. */
static int
set_pairs(json_t *cfg, const char *instr, const char *rest, sw_error_t *err)
{
  _cleanup_strv_ char **w = split_words(rest);
  bool env = strcmp(instr, "ENV") == 0;
  if (w[0] == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--change %s: needs KEY=VALUE", instr);
  if (strchr(w[0], '=') == NULL) {
    const char *sp = rest + strcspn(rest, " \t");
    sp += strspn(sp, " \t");
    if (env)
      sw_config_env_set(cfg, w[0], sp);
    else
      sw_config_label_set(cfg, w[0], sp);
    return 0;
  }
  for (size_t i = 0; w[i]; i++) {
    char *eq = strchr(w[i], '=');
    if (eq == NULL)
      return sw_error_code(err, SW_EXIT_USAGE, 0, "--change %s: `%s` is not KEY=VALUE", instr,
                           w[i]);
    *eq = '\0';
    if (env)
      sw_config_env_set(cfg, w[i], eq + 1);
    else
      sw_config_label_set(cfg, w[i], eq + 1);
  }
  return 0;
}

static int
apply_change(json_t *cfg, const char *line, sw_error_t *err)
{
  while (*line == ' ' || *line == '\t')
    line++;
  size_t n = strcspn(line, " \t");
  _cleanup_free_ char *instr = xstrndup(line, n);
  const char *rest = line + n + strspn(line + n, " \t");
  json_t *c = sw_config_container(cfg);
  for (char *p = instr; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  if (*rest == '\0')
    return sw_error_code(err, SW_EXIT_USAGE, 0, "--change `%s`: missing argument", line);
  if (strcmp(instr, "CMD") == 0 || strcmp(instr, "ENTRYPOINT") == 0)
    return set_command(cfg, strcmp(instr, "CMD") == 0 ? "Cmd" : "Entrypoint", rest, err);
  if (strcmp(instr, "ENV") == 0 || strcmp(instr, "LABEL") == 0)
    return set_pairs(cfg, instr, rest, err);
  if (strcmp(instr, "WORKDIR") == 0 || strcmp(instr, "USER") == 0 ||
      strcmp(instr, "STOPSIGNAL") == 0) {
    const char *key = instr[0] == 'W' ? "WorkingDir" : instr[0] == 'U' ? "User" : "StopSignal";
    json_object_set_new(c, key, json_string(rest));
    return 0;
  }
  if (strcmp(instr, "EXPOSE") == 0 || strcmp(instr, "VOLUME") == 0) {
    json_error_t je;
    json_t *a = instr[0] == 'V' && rest[0] == '[' ? json_loads(rest, 0, &je) : NULL;
    _cleanup_strv_ char **w = a ? NULL : split_words(rest);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_is_string(v)) sw_config_volume(cfg, json_string_value(v));
    json_decref(a);
    for (i = 0; w && w[i]; i++)
      if (instr[0] == 'E')
        sw_config_expose(cfg, w[i]);
      else
        sw_config_volume(cfg, w[i]);
    return 0;
  }
  return sw_error_code(err, SW_EXIT_USAGE, 0,
                       "--change `%s`: unsupported instruction (use CMD, ENTRYPOINT, ENV, EXPOSE, "
                       "LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)",
                       line);
}

static int
do_import(sw_store_t *s, const char *file, const char *name, char **changes, const char *message,
          const char *platform, const sw_compression_t *comp, const char *ship, bool quiet,
          sw_error_t *err)
{
  _cleanup_close_ int fd = strcmp(file, "-") == 0 ? dup(0) : open(file, O_RDONLY | O_CLOEXEC);
  _cleanup_(sw_image_freep) sw_image_t *img = sw_image_new();
  _cleanup_free_ char *comment = NULL;
  sw_layer_desc_t layer;
  char *names[] = {(char *)name, NULL};
  double t0 = sw_now();

  if (fd < 0)
    return sw_error(err, errno, "open `%s`", file);
  json_decref(img->config);
  img->config = sw_config_new(NULL);
  if (platform)
    sw_platform_set_config(img->config, platform);
  for (size_t i = 0; changes && changes[i]; i++)
    if (apply_change(img->config, changes[i], err) < 0)
      return -1;
  if (sw_layer_import_tar(s, fd, comp, &layer, err) < 0)
    return sw_error_wrap(err, "importing `%s`%s%s%s (nothing was stored)", file,
                         name ? " as `" : "", name ? name : "", name ? "`" : "");
  if (ship && sw_reblob_mark(s, layer.diff_id, ship, err) < 0)
    return sw_error_wrap(err, "importing `%s`", file);
  int64_t now = sw_build_time();
  /* `docker import FILE` streams the file to the daemon, which writes "Imported from -". */
  comment = xstrdup(message ? message : "Imported from -");
  sw_config_set_created(img->config, now);
  sw_image_add_layer(img, &layer);
  sw_config_add_history(img->config, now, NULL, comment, false);
  if (sw_image_commit(s, img, name ? names : NULL, err) < 0)
    return -1;
  sw_debug("import: %.3fs, layer %s (%lld bytes, tar %lld)", sw_now() - t0, layer.digest,
           (long long)layer.size, (long long)layer.tar_size);
  printf("%s\n", img->config_digest);
  (void)quiet;
  return 0;
}

int
cmd_import(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"change", required_argument, NULL, 'c'},
                                       {"message", required_argument, NULL, 'm'},
                                       {"platform", required_argument, NULL, 'P'},
                                       {"compression", required_argument, NULL, 'C'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_strv_ char **changes = NULL;
  const char *message = NULL;
  _cleanup_free_ char *platform = NULL;
  /* The import itself is the unpacking: its blob gets the build's fast codec. A base is shipped
   * in every image built on it, so those get a gzip -6 blob of it (10% smaller), made once by
   * the first build that ships it (reblob.c). An explicit --compression is used as it is. */
  sw_compression_t comp = sw_compression_default();
  const char *ship = SW_IMPORT_SHIP_COMPRESSION;
  sw_error_t err = NULL;
  bool quiet = false;
  int c, rc = 0;

  while ((c = getopt_long(argc, argv, "c:m:qh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      sw_strv_push(&changes, optarg);
      break;
    case 'm':
      message = optarg;
      break;
    case 'P':
      free(platform);
      platform = NULL;
      if (sw_platform_normalize(optarg, &platform, &err) < 0) {
        int code = sw_cli_usage_error("import", "--platform: %s", err->msg);
        sw_error_release(&err);
        return code;
      }
      break;
    case 'C':
      if (sw_compression_parse(optarg, &comp, &err) < 0)
        return sw_error_report(&err);
      ship = NULL;
      break;
    case 'q':
      quiet = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("import", "bad flags");
    }
  }
  if (optind >= argc || argc - optind > 2)
    return sw_cli_usage_error("import", "need FILE and optionally REPOSITORY[:TAG]");
  const char *file = argv[optind], *name = optind + 1 < argc ? argv[optind + 1] : NULL;
  if (name) {
    _cleanup_free_ char *n = sw_ref_normalize(name, &err);
    if (n == NULL)
      return sw_error_report(&err);
  }
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (do_import(s, file, name, changes, message, platform, &comp, ship, quiet, &err) < 0) {
    sw_store_error_full(g->root, &err);
    return sw_error_report(&err);
  }
  return 0;
}
