#!/usr/bin/env python3
"""Writes docs/docker-cli.tsv: every command and option of Docker's CLI, read from the
option tables docker/cli generates into docs/reference/commandline/*.md.

    scripts/docker-cli-reference.py DOCKER_CLI_CHECKOUT > docs/docker-cli.tsv

The file is the reference `lade`'s Docker table (docs/docker-compat.md) is checked
against; it changes only when the Docker version it follows does.
"""
import os
import re
import subprocess
import sys


def main(checkout):
    reference = os.path.join(checkout, "docs", "reference", "commandline")
    version = open(os.path.join(checkout, "VERSION")).read().strip() if os.path.exists(
        os.path.join(checkout, "VERSION")) else "unknown"
    commit = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    commands = {}
    for name in sorted(os.listdir(reference)):
        if not name.endswith(".md"):
            continue
        text = open(os.path.join(reference, name)).read()
        generated = re.search(r"<!---MARKER_GEN_START-->(.*?)<!---MARKER_GEN_END-->", text, re.S)
        if not generated:
            continue
        body = generated.group(1)
        command = "docker" if name == "docker.md" else name[:-3].replace("_", " ")
        names = []
        if "### Aliases" in body:
            aliases = body.split("### Aliases")[1].split("###")[0]
            names = re.findall(r"`docker ([a-z0-9 -]+)`", aliases)
        canonical = names[0] if names else command
        entry = commands.setdefault(canonical, {"names": set(names) - {canonical}, "options": []})
        if "### Options" not in body:
            continue
        for line in body.split("### Options")[1].splitlines():
            if not line.startswith("| ") or line.startswith("| Name"):
                continue
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            flags = re.findall(r"`(-{1,2}[A-Za-z0-9-]+)`", cells[0])
            long = next((f[2:] for f in flags if f.startswith("--")), "")
            short = next((f[1:] for f in flags if not f.startswith("--")), "")
            kind = cells[1].strip("`")
            if (long, short) not in [(o[0], o[1]) for o in entry["options"]]:
                entry["options"].append((long, short, kind))
    print(f"# Docker CLI {version} ({commit}): command\tits other names\tlong option\tshort option\ttype")
    for command in sorted(commands):
        entry = commands[command]
        others = ",".join(sorted(entry["names"]))
        if not entry["options"]:
            print("\t".join([command, others, "", "", ""]))
        for long, short, kind in entry["options"]:
            print("\t".join([command, others, long, short, kind]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
