#!/bin/sh
# The cost of a container's bridge network: `lade run --rm --network bridge busybox
# true` against `--network none` (lade's own bridge driver), and `podman run --rm` on
# its bridge (netavark) against podman's `--network none`, in one run (hyperfine,
# medians).
#
#   usage: scripts/bench-network.sh [RUNS]     (default 20; needs root)
set -eu
RUNS=${1:-20}
. "$(dirname "$0")/bench-common.sh" network hyperfine podman
"$LADE" save -o "$WORK/busybox.tar" busybox:latest
$PODMAN load -q -i "$WORK/busybox.tar" >/dev/null

cleanup() {
    $PODMAN rmi -af >/dev/null 2>&1 || true
    # The default network's bridge and rules outlive the runs: the store takes them.
    "$LADE" system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=$HERE/bench-results/network.json
hyperfine -N ${HYPERFINE_FLAGS:-} --warmup 3 --runs "$RUNS" --export-json "$OUT" \
    -n "lade bridge" "$LADE run --rm --network bridge busybox true" \
    -n "lade none" "$LADE run --rm --network none busybox true" \
    -n "podman bridge" "$PODMAN run --rm busybox true" \
    -n "podman none" "$PODMAN run --rm --network none busybox true"

python3 - "$OUT" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for name, ms in r.items():
    print(f"{name:14} median {ms:7.1f} ms")
lade = r["lade bridge"] - r["lade none"]
podman = r["podman bridge"] - r["podman none"]
print(f"network setup: lade {lade:.1f} ms, podman {podman:.1f} ms (lade/podman = {lade / podman:.2f})")
PY
