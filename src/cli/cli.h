/* slipway CLI: what every subcommand gets, and the table main.c dispatches from.
 * A subcommand parses its flags and calls the library; it holds no engine logic. */
#ifndef SW_CLI_H
#define SW_CLI_H

#include "../lib/error.h"
#include "../lib/util.h"

#include <getopt.h>
#include <jansson.h>

typedef struct {
  const char *root;    /* --root / SLIPWAY_ROOT / /var/lib/slipway */
  const char *command; /* the subcommand's name */
} sw_global_t;

/* Each returns the process exit status. argv[0] is the subcommand name. */
#define SW_COMMANDS(X)                                                                             \
  X(build, "Build an image from a Dockerfile")                                                     \
  X(run, "Run a command in a new container")                                                       \
  X(ps, "List containers")                                                                         \
  X(logs, "Show a container's output")                                                             \
  X(stop, "Stop running containers")                                                               \
  X(kill, "Send a signal to running containers")                                                   \
  X(rm, "Remove containers")                                                                       \
  X(exec, "Run a command in a running container")                                                  \
  X(container, "Manage containers (ls, prune)")                                                    \
  X(images, "List images in the store")                                                            \
  X(inspect, "Show an image's manifest and config")                                                \
  X(history, "Show the history of an image")                                                       \
  X(tag, "Give an image another name")                                                             \
  X(rmi, "Remove one or more images")                                                              \
  X(prune, "Remove build cache and unreferenced data")                                             \
  X(fsck, "Check the store and repair it")                                                         \
  X(save, "Save an image to a docker-archive or oci-archive file")                                 \
  X(load, "Load an image from a docker-archive or oci-archive file")                               \
  X(import, "Create an image from a root filesystem tarball")                                      \
  X(pull, "Pull an image from a registry")                                                         \
  X(push, "Push an image to a registry")                                                           \
  X(login, "Log in to a registry")                                                                 \
  X(logout, "Log out from a registry")                                                             \
  X(parse, "Parse a Dockerfile and print it")                                                      \
  X(recipe, "Show how a Python project with no Dockerfile is built")                               \
  X(debug, "Debugging helpers (word expansion)")

#define X(name, summary) int cmd_##name(int argc, char **argv, sw_global_t *g);
SW_COMMANDS(X)
#undef X

/* Store commands (cli_store.c): open g->root, reporting errors; NULL on failure (*rc set).
 * Readers and deleters (by g->command) still work when the store's filesystem is full. */
struct sw_store_s;
struct sw_store_s *sw_cli_store_open(sw_global_t *g, int *rc);
/* An image config's string array ("Env", "Cmd", NULL-terminated, never NULL) and non-empty
 * string field ("User", "WorkingDir"; NULL when absent or empty), for run and exec. */
char **sw_cli_json_strv(json_t *arr);
const char *sw_cli_json_str(json_t *obj, const char *key);
/* "3 minutes ago", "2 days ago", as docker prints CREATED. */
char *sw_cli_ago(int64_t unix_seconds);
/* Container commands (cli_container.c): ROOT/containers; docker's "3 seconds" for "Up …";
 * fn applied to each container named by argv[first..], errors reported, 1 if any failed. */
char *sw_cli_containers_dir(sw_global_t *g);
char *sw_cli_duration(double seconds);
struct sw_container_s;
int sw_cli_each_container(sw_global_t *g, int argc, char **argv, int first,
                          int (*fn)(struct sw_container_s *c, const char *ref, void *ctx,
                                    sw_error_t *err),
                          void *ctx);
/* Does argv ask for help (-h/--help anywhere before "--")? */
bool sw_cli_wants_help(int argc, char **argv);

/* Print "Run 'slipway CMD --help' for usage." style hint and return SW_EXIT_USAGE. */
int sw_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
