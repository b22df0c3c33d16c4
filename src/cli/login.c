/* slipway login: check credentials against a registry and store them in ~/.docker/config.json. */
#include "cli.h"
#include "../lib/registry.h"

#include <termios.h>

static void
usage(FILE *f)
{
  fputs("Usage: slipway login [OPTIONS] REGISTRY\n"
        "\n"
        "Log in to a registry. The credentials are checked against REGISTRY, then stored as\n"
        "`docker login` stores them: in $DOCKER_CONFIG/config.json or ~/.docker/config.json\n"
        "(`auths`, mode 0600), where pull, push, docker and skopeo find them.\n"
        "\n"
        "Options:\n"
        "  -u, --username USER          user name (asked for on a terminal if missing)\n"
        "  -p, --password PASS          password (visible in `ps`; prefer --password-stdin)\n"
        "      --password-stdin         read the password from standard input\n"
        "      --insecure-registry HOST use plain HTTP for HOST (localhost always does)\n"
        "  -h, --help                   print this help\n"
        "\n"
        "Example:\n"
        "  echo \"$TOKEN\" | slipway login -u ci --password-stdin registry.example.com\n",
        f);
}

/* One line from f, without its newline; echo off when f is a terminal. */
static char *
read_line(FILE *f, bool secret)
{
  struct termios old, quiet;
  bool tty = secret && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
  char *line = NULL;
  size_t cap = 0;

  if (tty) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fileno(f), TCSAFLUSH, &quiet);
  }
  ssize_t n = getline(&line, &cap, f);
  if (tty) {
    tcsetattr(fileno(f), TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  if (n < 0) {
    free(line);
    return NULL;
  }
  line[strcspn(line, "\r\n")] = '\0';
  return line;
}

int
cmd_login(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {{"username", required_argument, NULL, 'u'},
                                       {"password", required_argument, NULL, 'p'},
                                       {"password-stdin", no_argument, NULL, 'P'},
                                       {"insecure-registry", required_argument, NULL, 'I'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  _cleanup_free_ char *user = NULL;
  _cleanup_free_ char *pass = NULL;
  _cleanup_strv_ char **insecure = NULL;
  bool from_stdin = false;
  sw_error_t err = NULL;
  int c;

  (void)g;
  while ((c = getopt_long(argc, argv, "+u:p:h", opts, NULL)) != -1) {
    switch (c) {
    case 'u':
      free(user);
      user = xstrdup(optarg);
      break;
    case 'p':
      free(pass);
      pass = xstrdup(optarg);
      break;
    case 'P':
      from_stdin = true;
      break;
    case 'I':
      sw_strv_push(&insecure, optarg);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      return sw_cli_usage_error("login", "bad flags");
    }
  }
  if (optind + 1 != argc)
    return sw_cli_usage_error("login", "login takes exactly one REGISTRY");
  if (from_stdin && pass)
    return sw_cli_usage_error("login", "--password and --password-stdin are exclusive");
  if (from_stdin && user == NULL)
    return sw_cli_usage_error("login", "--password-stdin needs --username");
  if (user == NULL) {
    if (!isatty(STDIN_FILENO))
      return sw_cli_usage_error("login", "no --username given and stdin is not a terminal");
    fputs("Username: ", stderr);
    user = read_line(stdin, false);
  }
  if (pass == NULL) {
    if (!from_stdin)
      fputs("Password: ", stderr);
    pass = read_line(stdin, true);
  }
  if (user == NULL || *user == '\0' || pass == NULL || *pass == '\0')
    return sw_cli_usage_error("login", "user name and password must not be empty");

  sw_registry_opts_t ro = {.insecure = insecure};
  if (sw_registry_login(argv[optind], user, pass, &ro, &err) < 0)
    return sw_error_report(&err);
  printf("Login Succeeded\n");
  return 0;
}
