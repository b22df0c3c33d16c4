#!/usr/bin/python3
"""Write the man pages' markdown sources (docs/man/*.md) from the binary's own --help texts, so
the manual says exactly what `slipway COMMAND --help` says: one page for slipway(1) and one for
each command (slipway-build(1), ...). `make man` turns them into roff with go-md2man (Debian's
go-md2man); tests/e2e/test_install.py fails when the committed sources are not what this script
writes for the binary being tested (run `make man-md` after changing a --help text).
Usage: man-md.py SLIPWAY OUTDIR"""
import os
import re
import subprocess
import sys

FOOTER = """# SEE ALSO
{see}

The README.md and ARCHITECTURE.md of slipway's source tree.
"""


def helptext(binary, *args):
    p = subprocess.run([binary, *args, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env={"PATH": os.environ.get("PATH", "")})
    if p.returncode != 0:
        sys.exit("man-md.py: `%s %s --help` exited %d" % (binary, " ".join(args), p.returncode))
    return p.stdout


def sections(text):
    """Usage line, description, option lines, and what follows the options."""
    lines = text.rstrip("\n").split("\n")
    usage = lines[0][len("Usage: "):] if lines[0].startswith("Usage: ") else lines[0]
    parts = {"desc": [], "opts": [], "rest": []}
    where = "desc"
    for line in lines[1:]:
        if where == "desc" and line == "Options:":
            where = "opts"
            continue
        if where == "opts" and line and not line.startswith(" "):
            where = "rest"
        parts[where].append(line)
    return usage, "\n".join(parts["desc"]).strip(), parts["opts"], "\n".join(parts["rest"]).strip()


def block(lines):
    """Lines kept as they are (the help's columns), as an indented code block."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join("    " + x if x else "" for x in lines) + "\n"


def esc(s):
    """The help's words, not markdown emphasis."""
    return re.sub(r"([*_\\<>\[\]])", r"\\\1", s)


def page(name, summary, text, see):
    usage, desc, opts, rest = sections(text)
    words = usage.split(" ")
    n = 2 if name != "slipway" else 1  # "slipway build" / "slipway"
    out = ["%% %s 1 \"\" \"slipway\" \"slipway manual\"" % name.upper(), "",
           "# NAME", "%s - %s" % (name, summary), "",
           "# SYNOPSIS", "**%s** %s" % (" ".join(words[:n]), esc(" ".join(words[n:]))), "",
           "# DESCRIPTION", esc(desc) if desc else esc(summary), ""]
    if opts:
        out += ["# OPTIONS", block(opts)]
    if rest:
        out += ["# NOTES", block(rest.split("\n"))]
    out.append(FOOTER.format(see=see))
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, outdir = sys.argv[1], sys.argv[2]
    top = helptext(binary)
    cmds = []
    m = re.search(r"^Commands:\n((?:  \S.*\n?)+)", top, re.M)
    for line in (m.group(1) if m else "").splitlines():
        name, summary = line.strip().split(None, 1)
        cmds.append((name, summary.strip()))
    if not cmds:
        sys.exit("man-md.py: no Commands: list in `%s --help`" % binary)
    os.makedirs(outdir, exist_ok=True)
    wanted = {"slipway.1.md"} | {"slipway-%s.1.md" % c for c, _ in cmds}
    see_all = ", ".join("**slipway-%s**(1)" % c for c, _ in cmds)
    with open(os.path.join(outdir, "slipway.1.md"), "w") as f:
        f.write(page("slipway", "build and run OCI container images without a daemon", top,
                     see_all))
    for c, summary in cmds:
        with open(os.path.join(outdir, "slipway-%s.1.md" % c), "w") as f:
            f.write(page("slipway-" + c, summary, helptext(binary, c), "**slipway**(1)"))
    for n in os.listdir(outdir):
        if n.endswith(".1.md") and n not in wanted:
            os.unlink(os.path.join(outdir, n))  # a command that is gone


if __name__ == "__main__":
    main()
