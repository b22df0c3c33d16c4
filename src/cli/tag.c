/* slipway tag: give an image another name. */
#include "../lib/store.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: slipway tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n"
    "\n"
    "Create a name TARGET_IMAGE that refers to SOURCE_IMAGE (a name, image ID or manifest\n"
    "digest). A name already used by another image moves to this one.\n";

int
cmd_tag(int argc, char **argv, sw_global_t *g)
{
  sw_error_t err = NULL;
  int rc = 0;
  if (sw_cli_wants_help(argc, argv)) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (argc != 3)
    return sw_cli_usage_error("tag", "need SOURCE_IMAGE and TARGET_IMAGE");
  _cleanup_free_ char *n = sw_ref_normalize(argv[2], &err);
  if (n == NULL)
    return sw_error_report(&err);
  _cleanup_(sw_store_freep) sw_store_t *s = sw_cli_store_open(g, &rc);
  if (s == NULL)
    return rc;
  if (sw_image_tag(s, argv[1], argv[2], &err) < 0)
    return sw_error_report(&err);
  return 0;
}
