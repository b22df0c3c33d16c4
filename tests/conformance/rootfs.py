#!/usr/bin/python3
"""The conformance suite's busybox base: a deterministic rootfs tar (stdlib only) imported as
`conform-busybox` into both Docker (`docker import`) and slipway (`slipway import`).

/bin/busybox from Debian's busybox-static plus applet symlinks, /etc/passwd and /etc/group with
named users and groups (for `COPY --chown=NAME`), /tmp 1777. Every mtime is BASE_MTIME, so the
comparator can tell a base file's time from a build's.
Usage: rootfs.py OUT.tar"""
import io
import sys
import tarfile

BUSYBOX = "/bin/busybox"
BASE_MTIME = 1700000000
APPLETS = ("sh", "ls", "cat", "echo", "env", "id", "mkdir", "rm", "rmdir", "touch", "sleep",
           "true", "false", "wc", "grep", "sed", "stat", "test", "pwd", "whoami", "ln", "chmod",
           "chown", "cp", "mv", "printf", "find", "sort", "mknod", "tar", "head", "tail")
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n"
          b"web:x:1001:50:web:/home/web:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = (b"root:x:0:\n"
         b"staff:x:50:\n"
         b"app:x:1000:\n"
         b"nogroup:x:65534:\n")


def write(path):
    def add(tf, name, kind, data=b"", mode=0o755, link=""):
        ti = tarfile.TarInfo(name)
        ti.mtime = BASE_MTIME
        ti.mode = mode
        if kind == "dir":
            ti.type = tarfile.DIRTYPE
        elif kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, link
        else:
            ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data) if kind == "file" else None)

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "etc", "home", "home/app", "root", "tmp", "usr", "usr/bin", "var"):
            add(tf, d + "/", "dir", mode=0o1777 if d == "tmp" else 0o755)
        with open(BUSYBOX, "rb") as f:
            add(tf, "bin/busybox", "file", f.read())
        for applet in APPLETS:
            add(tf, "bin/" + applet, "symlink", link="busybox")
        add(tf, "etc/passwd", "file", PASSWD, mode=0o644)
        add(tf, "etc/group", "file", GROUP, mode=0o644)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: rootfs.py OUT.tar")
    write(sys.argv[1])
