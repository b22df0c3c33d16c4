/* slipway: platforms ("os/arch[/variant]", as OCI and BuildKit write them): the host's, one
 * written by a user normalised as containerd does (`aarch64` is `arm64`, `arm64/v8` is
 * `arm64`, `arm` is `arm/v7`), whether the host runs it natively, and an image config's
 * os/architecture/variant read and written as one string. Pure: no file is read. */
#ifndef SW_PLATFORM_H
#define SW_PLATFORM_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>

/* "linux/amd64" on an x86-64 host (caller frees). */
char *sw_platform_host(void);
/* Normalise `in` ("linux/aarch64", "Linux/ARM64/v8", "linux/arm"): lower case, GOARCH names,
 * containerd's default variants dropped or added. *out (caller frees) on success; a usage error
 * (code 2) naming `in` when it is not OS/ARCH[/VARIANT]. */
int sw_platform_normalize(const char *in, char **out, sw_error_t *err);
/* Split a platform into its parts (each caller-freed; variant "" when none). */
void sw_platform_split(const char *p, char **os, char **arch, char **variant);
/* Whether the host executes p's binaries without emulation (its own arch, or 386 on amd64). */
bool sw_platform_native(const char *p);
/* The platform an image config says (os/architecture/variant; missing os: linux, missing
 * architecture: amd64, as Docker assumes for old images). Normalised; caller frees. */
char *sw_platform_of_config(const json_t *cfg);
/* Set a config's os, architecture and variant (removed when p has none). */
void sw_platform_set_config(json_t *cfg, const char *p);

#endif
