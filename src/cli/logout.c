/* slipway logout: remove a registry's credentials (from its credential helper and
 * ~/.docker/config.json), as `docker logout` does. */
#include "cli.h"
#include "../lib/registry.h"

int
cmd_logout(int argc, char **argv, sw_global_t *g)
{
  (void)g;
  if (sw_cli_wants_help(argc, argv)) {
    fputs("Usage: slipway logout [REGISTRY]\n"
          "\n"
          "Remove the credentials of REGISTRY (default: Docker Hub): `erase` through its\n"
          "credential helper (credsStore / credHelpers) when one is configured, and its entry in\n"
          "$DOCKER_CONFIG/config.json or ~/.docker/config.json.\n",
          stdout);
    return 0;
  }
  if (argc > 2)
    return sw_cli_usage_error("logout", "logout takes at most one REGISTRY");
  const char *registry = argc == 2 ? argv[1] : "docker.io";
  sw_error_t err = NULL;
  bool was_in = false;
  if (sw_registry_logout(registry, NULL, &was_in, &err) < 0)
    return sw_error_report(&err);
  if (was_in)
    printf("Removing login credentials for %s\n", registry);
  else
    printf("Not logged in to %s\n", registry);
  return 0;
}
