/* slipway recipe: show what the recipe reads in a Python/Django project with no Dockerfile
 * (recipe.h), and the plan; --dockerfile prints the equivalent Dockerfile. */
#include "cli.h"

#include "../lib/recipe.h"

static const char usage_text[] =
    "Usage: slipway recipe [OPTIONS] [CONTEXT]\n"
    "\n"
    "Show how `slipway build` builds the Python/Django project in CONTEXT (default: .) when\n"
    "it has no Dockerfile: its shape, dependency set, settings module, WSGI app, locales,\n"
    "STATIC_ROOT and the plan, each step with the files it reads.\n"
    "\n"
    "Options:\n"
    "      --dockerfile          print the equivalent Dockerfile instead (BuildKit builds it\n"
    "                            too: `docker build -f - CONTEXT`)\n"
    "      --build-arg K=V       the settings a build would get (SLIPWAY_SETTINGS_MODULE,\n"
    "                            SLIPWAY_WSGI_APP, SLIPWAY_EXTRAS, SLIPWAY_REQUIREMENTS …)\n"
    "  -h, --help                print this help\n";

int
cmd_recipe(int argc, char **argv, sw_global_t *g)
{
  static const struct option longopts[] = {
      {"dockerfile", no_argument, NULL, 'd'},
      {"build-arg", required_argument, NULL, 'b'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool dockerfile = false;
  _cleanup_strv_ char **args = NULL;
  int c;
  (void)g;
  while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      dockerfile = true;
      break;
    case 'b':
      sw_strv_push(&args, optarg);
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("recipe", "bad option");
    }
  }
  if (argc - optind > 1)
    return sw_cli_usage_error("recipe", "recipe takes at most one CONTEXT");
  const char *dir = optind < argc ? argv[optind] : ".";
  sw_error_t err = NULL;
  _cleanup_(sw_recipe_freep) sw_recipe_t *r = NULL;
  if (!sw_recipe_detect_python(dir))
    return sw_cli_usage_error("recipe",
                              "`%s` is not a Python project: none of manage.py, pyproject.toml, "
                              "setup.py, setup.cfg, requirements*.txt, uv.lock, poetry.lock, "
                              "Pipfile.lock is there",
                              dir);
  if (sw_recipe_load(dir, args, &r, &err) < 0)
    return sw_error_report(&err);
  _cleanup_free_ char *out = dockerfile ? sw_recipe_dockerfile(r) : sw_recipe_describe(r);
  fputs(out, stdout);
  return 0;
}
