#!/bin/sh
# `lade run -d` (until the id is printed: the container runs under its monitor) against
# a foreground `lade run --rm busybox true` and `podman run -d`, in one run (hyperfine,
# medians and ratios).
#
#   usage: scripts/bench-detach.sh [RUNS]     (default 30; needs root)
set -eu
RUNS=${1:-30}
. "$(dirname "$0")/bench-common.sh" detach hyperfine podman
"$LADE" save -o "$WORK/busybox.tar" busybox:latest
$PODMAN load -q -i "$WORK/busybox.tar" >/dev/null

cleanup() {
    # shellcheck disable=SC2046
    "$LADE" rm -f $("$LADE" ps -aq) >/dev/null 2>&1 || true
    $PODMAN rm -af -t 0 >/dev/null 2>&1 || true
    $PODMAN rmi -af >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=$HERE/bench-results/detach.json
hyperfine -N ${HYPERFINE_FLAGS:-} --warmup 3 --runs "$RUNS" --export-json "$OUT" \
    -n "lade run -d" "$LADE run -d --network none busybox sleep 600" \
    -n "lade run --rm (foreground)" "$LADE run --rm --network none busybox true" \
    -n "podman run -d" "$PODMAN run -d --network none busybox sleep 600"

python3 - "$OUT" <<'PY'
import json, sys
results = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
detached = results["lade run -d"]
for name, ms in results.items():
    print(f"{name:28} median {ms:8.1f} ms   lade run -d / this = {detached / ms:.2f}")
PY
