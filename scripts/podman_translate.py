#!/usr/bin/env python3
"""podman's spellings that have an exact Docker equivalent, for the podman system tests
run with lade standing in (scripts/podman-system-tests.sh).

Used two ways: as the `podman` wrapper itself (`podman_translate.py LADE ARGS...`: it
rewrites ARGS by the table below when PODMAN_TRANSLATE=1 and runs lade with them), and
as a module by scripts/podman-system-tests-classify.py, which applies the same table to
a failing command before it checks it against Docker's reference.

Each rule rewrites a form only where Docker's form does exactly what podman's does, so
that a test goes on past a podman-only spelling (mostly in its clean-up) to its
Docker-relevant checks; what has no exact equivalent is left as it is and fails.
docs/podman-system-tests.md lists the rules with their reasons.
"""
import os
import sys

# The rules, for the documentation: (podman's form, Docker's form, why they are the same).
RULES = [
    ("`rm -t 0 …` / `container rm --time 0 …`", "`rm …`",
     "podman's timeout before the stop's SIGKILL; 0 is the kill at once that Docker's "
     "`rm -f` does (and without `-f` a running container is refused by both)"),
    ("`rm -f --ignore …` / `rm -f -i …`", "`rm -f …`",
     "podman's --ignore skips missing containers; Docker's `rm -f` does that already "
     "(without -f it is not translated)"),
    ("`commit -q …`", "`commit …`",
     "podman's commit prints progress unless -q; Docker's prints only the new image's id, "
     "which is what -q leaves"),
    ("`ps|images|volume ls|network ls --noheading --format T` (T not a `table` template)",
     "the same without `--noheading`",
     "Docker prints a header only for `table` formats, so a plain template prints none"),
    ("global `--events-backend file`", "nothing",
     "lade, like Docker, keeps one events log and this names it; `journald` and `none` "
     "are not translated"),
]

LISTINGS = {("ps",), ("container", "ls"), ("container", "list"), ("container", "ps"),
            ("images",), ("image", "ls"), ("image", "list"), ("volume", "ls"),
            ("volume", "list"), ("network", "ls"), ("network", "list")}


def _command(argv, start):
    """The words naming the command from argv[start] (one or two), and where its
    options begin."""
    if start >= len(argv):
        return (), start
    first = argv[start]
    if first in ("container", "image", "volume", "network") and start + 1 < len(argv):
        return (first, argv[start + 1]), start + 2
    return (first,), start + 1


def translate(argv):
    """argv rewritten by RULES, and the rules applied (their podman forms)."""
    out, applied, i = [], [], 0
    # global options: only --events-backend file
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--events-backend" and i + 1 < len(argv) and argv[i + 1] == "file":
            applied.append("--events-backend file")
            i += 2
            continue
        if arg == "--events-backend=file":
            applied.append("--events-backend file")
            i += 1
            continue
        out.append(arg)
        i += 1
    words, start = _command(argv, i)
    out.extend(argv[i:start])
    rest = argv[start:]
    if words in {("rm",), ("container", "rm"), ("container", "remove")}:
        kept, k = [], 0
        while k < len(rest):
            arg = rest[k]
            if arg == "--":
                kept.extend(rest[k:])
                break
            if arg in ("-t", "--time") and k + 1 < len(rest) and rest[k + 1] == "0":
                applied.append(f"rm {arg} 0")
                k += 2
                continue
            if arg in ("-t0", "-t=0", "--time=0"):
                applied.append(f"rm {arg}")
                k += 1
                continue
            kept.append(arg)
            k += 1
        force = any(a in ("-f", "--force") or (a.startswith("-") and not a.startswith("--")
                                               and "f" in a[1:]) for a in kept)
        if force and any(a in ("--ignore", "-i") for a in kept):
            applied.append("rm --ignore")
            kept = [a for a in kept if a not in ("--ignore", "-i")]
        rest = kept
    elif words in {("commit",), ("container", "commit")}:
        if "-q" in rest or "--quiet" in rest:
            applied.append("commit -q")
            rest = [a for a in rest if a not in ("-q", "--quiet")]
    elif words in LISTINGS and "--noheading" in rest:
        template = None
        for k, arg in enumerate(rest):
            if arg == "--format" and k + 1 < len(rest):
                template = rest[k + 1]
            elif arg.startswith("--format="):
                template = arg[len("--format="):]
        if template is not None and not template.lstrip().startswith("table"):
            applied.append("--noheading")
            rest = [a for a in rest if a != "--noheading"]
    return out + rest, applied


def main():
    lade, argv = sys.argv[1], sys.argv[2:]
    if os.environ.get("PODMAN_TRANSLATE", "1") == "1":
        argv, _ = translate(argv)
    os.execv(lade, [lade] + argv)


if __name__ == "__main__":
    main()
