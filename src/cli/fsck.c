/* slipway fsck: check the store (snapshots against their layers, blobs against their digests,
 * every row's references) and, with --repair, mend what can be mended. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway fsck [OPTIONS]\n"
    "\n"
    "Check the store: every layer blob against its digest and diffID, every snapshot against\n"
    "its layer's entries (names, types, sizes, modes, link targets; a snapshot with no blob\n"
    "against its recorded tar size), every other blob against its digest, and every image's and\n"
    "build cache record's references. Prints one line per problem; exits 1 if there is any\n"
    "(with --repair: any left unrepaired). Waits for other slipway processes on the same store.\n"
    "\n"
    "Options:\n"
    "      --repair  replace a damaged snapshot by its blob's content; remove what cannot be\n"
    "                mended (a damaged blob and its layer row, a snapshot with no blob, and the\n"
    "                images and cache records that use them: build, pull or load them again)\n"
    "  -h, --help    print this help\n";

int
cmd_fsck(int argc, char **argv, sw_global_t *g)
{
  static const struct option opts[] = {
      {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  sw_fsck_opts_t o = {.out = stdout};
  sw_fsck_report_t rep;
  sw_error_t err = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      o.repair = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    default:
      return sw_cli_usage_error("fsck", "bad flags");
    }
  }
  if (optind < argc)
    return sw_cli_usage_error("fsck", "unexpected argument `%s`", argv[optind]);
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (sw_store_fsck(s, &o, &rep, &err) < 0)
    return sw_error_report(&err);
  printf("Checked: %lld blobs, %lld snapshots, %lld images, %lld cache records: ",
         (long long)rep.blobs, (long long)rep.snapshots, (long long)rep.images,
         (long long)rep.records);
  if (rep.problems == 0)
    printf("no problems\n");
  else if (o.repair)
    printf("%lld problems, %lld repaired\n", (long long)rep.problems, (long long)rep.repaired);
  else
    printf("%lld problems (run `slipway fsck --repair`)\n", (long long)rep.problems);
  return rep.problems > rep.repaired ? 1 : 0;
}
