/* slipway: platform strings (see platform.h). */
#include "platform.h"

#include "image.h"
#include "util.h"

#include <ctype.h>
#include <string.h>

char *
sw_platform_host(void)
{
  return xasprintf("linux/%s", sw_host_arch());
}

void
sw_platform_split(const char *p, char **os, char **arch, char **variant)
{
  size_t n = strcspn(p, "/");
  const char *rest = p[n] ? p + n + 1 : p + n;
  size_t m = strcspn(rest, "/");
  *os = xstrndup(p, n);
  *arch = xstrndup(rest, m);
  *variant = xstrdup(rest[m] ? rest + m + 1 : "");
}

static bool
valid_part(const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
      return false;
  return true;
}

static void
lower_in_place(char *s)
{
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

/* containerd's normalizeArch: GOARCH names, and the variant each arch implies. */
static void
normalize_arch(char **arch, char **variant)
{
  static const struct {
    const char *from, *arch, *variant; /* variant NULL: keep the given one */
  } map[] = {
      {"x86_64", "amd64", NULL}, {"x86-64", "amd64", NULL},  {"i386", "386", ""},
      {"i686", "386", ""},       {"aarch64", "arm64", NULL}, {"armhf", "arm", "v7"},
      {"armel", "arm", "v6"},
  };
  for (size_t i = 0; i < SW_ARRAY_SIZE(map); i++) {
    if (strcmp(*arch, map[i].from) != 0)
      continue;
    free(*arch);
    *arch = xstrdup(map[i].arch);
    if (map[i].variant) {
      free(*variant);
      *variant = xstrdup(map[i].variant);
    }
    break;
  }
  if (strcmp(*arch, "arm64") == 0 && (strcmp(*variant, "v8") == 0 || strcmp(*variant, "8") == 0)) {
    free(*variant);
    *variant = xstrdup("");
  } else if (strcmp(*arch, "arm") == 0 &&
             (**variant == '\0' || isdigit((unsigned char)**variant))) {
    char *v = **variant ? xasprintf("v%s", *variant) : xstrdup("v7");
    free(*variant);
    *variant = v;
  } else if (strcmp(*arch, "amd64") == 0 && strcmp(*variant, "v1") == 0) {
    free(*variant);
    *variant = xstrdup("");
  }
}

int
sw_platform_normalize(const char *in, char **out, sw_error_t *err)
{
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
  if (in == NULL || strchr(in, '/') == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "invalid platform `%s`: expected OS/ARCH[/VARIANT], e.g. linux/arm64",
                         in ? in : "");
  sw_platform_split(in, &os, &arch, &variant);
  if (!valid_part(os) || !valid_part(arch) || strchr(variant, '/') ||
      (*variant && !valid_part(variant)))
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "invalid platform `%s`: expected OS/ARCH[/VARIANT], e.g. linux/arm64", in);
  lower_in_place(os);
  lower_in_place(arch);
  lower_in_place(variant);
  normalize_arch(&arch, &variant);
  *out = *variant ? xasprintf("%s/%s/%s", os, arch, variant) : xasprintf("%s/%s", os, arch);
  return 0;
}

bool
sw_platform_native(const char *p)
{
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
  sw_platform_split(p, &os, &arch, &variant);
  if (strcmp(os, "linux") != 0)
    return false;
  const char *host = sw_host_arch();
  return strcmp(arch, host) == 0 || (strcmp(host, "amd64") == 0 && strcmp(arch, "386") == 0);
}

static const char *
config_str(const json_t *cfg, const char *key)
{
  const char *s = json_string_value(json_object_get(cfg, key));
  return s && *s ? s : NULL;
}

char *
sw_platform_of_config(const json_t *cfg)
{
  const char *os = config_str(cfg, "os"), *arch = config_str(cfg, "architecture");
  const char *variant = config_str(cfg, "variant");
  _cleanup_free_ char *raw =
      variant ? xasprintf("%s/%s/%s", os ? os : "linux", arch ? arch : "amd64", variant)
              : xasprintf("%s/%s", os ? os : "linux", arch ? arch : "amd64");
  char *out = NULL;
  sw_error_t err = NULL;
  if (sw_platform_normalize(raw, &out, &err) < 0) {
    sw_error_release(&err);
    return steal_ptr(&raw); /* an odd config: shown as it is */
  }
  return out;
}

void
sw_platform_set_config(json_t *cfg, const char *p)
{
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
  sw_platform_split(p, &os, &arch, &variant);
  json_object_set_new(cfg, "architecture", json_string(arch));
  json_object_set_new(cfg, "os", json_string(os));
  if (*variant)
    json_object_set_new(cfg, "variant", json_string(variant));
  else
    json_object_del(cfg, "variant");
}
