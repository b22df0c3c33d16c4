/* slipway: running a foreign platform's binaries (RUN steps of `build --platform`, `run` of a
 * foreign image) through the kernel's binfmt_misc, as BuildKit does, with Debian's
 * qemu-user-static as the emulator.
 *
 * A platform is runnable when the host runs it natively, or when an enabled binfmt_misc entry
 * matches an ELF header of its architecture (whatever the entry's name: qemu-user-static's,
 * binfmt-support's, tonistiigi/binfmt's) and has the F flag: the kernel then opens the
 * interpreter when the entry is registered, so it works inside a sandbox whose root does not
 * hold it. An entry without F is refused with the command that fixes it. With no entry, root
 * (in the initial user namespace) registers Debian's (/usr/lib/binfmt.d/qemu-ARCH.conf, flags
 * OPF) itself, mounting binfmt_misc first when it is not; anyone else gets an error naming the
 * package and the command to run.
 *
 * Test hooks (the tests never touch the machine's real handlers): $SLIPWAY_BINFMT_MISC replaces
 * /proc/sys/fs/binfmt_misc and $SLIPWAY_BINFMT_CONF replaces /usr/lib/binfmt.d. */
#ifndef SW_BINFMT_H
#define SW_BINFMT_H

#include "error.h"

#include <stdbool.h>

/* qemu's name of a platform's architecture ("aarch64" for linux/arm64), or NULL when slipway
 * knows no ELF header for it. */
const char *sw_binfmt_qemu_arch(const char *platform);

/* 0 when `platform`'s binaries can run in a sandbox (native, or a usable handler, registered now
 * if needed and allowed); -1 with an error saying what to install or run. Thread-safe; a
 * platform found usable is not checked again in this process. */
int sw_binfmt_ensure(const char *platform, sw_error_t *err);

/* The check itself on given directories (sw_binfmt_ensure passes the real ones or the test
 * hooks'). `may_register`: write the conf's entry into misc_dir/register when none matches. */
int sw_binfmt_check(const char *misc_dir, const char *conf_dir, const char *platform,
                    bool may_register, sw_error_t *err);

#endif
