#!/bin/sh
# What a RUN step's secret and ssh mounts cost: one RUN step built with --no-cache by
# lade, with a secret mount (a file on a tmpfs), with a secret and an ssh mount whose
# agent the build starts for a key file (ssh-agent + ssh-add per build), and with no
# mount at all (the yardstick); then the same two mounted builds by podman (buildah),
# with the same flags, in the same run (hyperfine; medians of RUNS with their
# interquartile ranges, written to bench-results/secrets.txt).
#
#   usage: scripts/bench-secrets.sh [RUNS]     (default 20; needs root)
set -eu
RUNS=${1:-20}
# A sourced file takes the caller's arguments in some shells (dash): give them.
set -- secrets hyperfine podman
. "$(dirname "$0")/bench-common.sh"
trap 'rm -rf "$WORK"' EXIT

"$LADE" save -o "$WORK/busybox.tar" busybox:latest
$PODMAN load -q -i "$WORK/busybox.tar" >/dev/null

printf 'bench-secret-value' > "$WORK/secret.txt"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/key"
for name in plain secret ssh; do mkdir -p "$WORK/$name"; done
printf 'FROM busybox\nRUN test -e /bin/sh\n' > "$WORK/plain/Dockerfile"
printf 'FROM busybox\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok\n' > "$WORK/secret/Dockerfile"
printf 'FROM busybox\nRUN --mount=type=secret,id=tok --mount=type=ssh test -s /run/secrets/tok && test -S "$SSH_AUTH_SOCK"\n' > "$WORK/ssh/Dockerfile"

SECRET="--secret id=tok,src=$WORK/secret.txt"
SSH="--ssh default=$WORK/key"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORK/secrets.json" \
    -n "lade, no mount" "$LADE build --progress quiet --no-cache $WORK/plain" \
    -n "lade, secret" "$LADE build --progress quiet --no-cache $SECRET $WORK/secret" \
    -n "lade, secret + ssh key" "$LADE build --progress quiet --no-cache $SECRET $SSH $WORK/ssh" \
    -n "podman, secret" "$PODMAN build -q --no-cache --network none $SECRET $WORK/secret" \
    -n "podman, secret + ssh key" "$PODMAN build -q --no-cache --network none $SECRET $SSH $WORK/ssh"
python3 - "$WORK/secrets.json" <<'PY' | tee "$HERE/bench-results/secrets.txt"
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]["median"]
for r in results:
    times = sorted(r["times"])
    q1, q3 = times[len(times) // 4], times[(3 * len(times)) // 4]
    print(f"{r['command']:28} median {r['median'] * 1000:7.1f} ms (IQR {q1 * 1000:.1f}-{q3 * 1000:.1f})  {r['median'] / base:5.2f}x lade's plain step")
PY
