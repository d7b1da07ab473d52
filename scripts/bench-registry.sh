#!/bin/sh
# Push and pull of a ~300 MB image in three layers against one local registry (CNCF
# distribution on 127.0.0.1), in one run: `lade push`/`lade pull` against `skopeo copy`
# both ways and `podman push`/`podman pull` (hyperfine, medians and ratios). Before each
# run the registry (or the pulling store) is emptied, so every byte moves.
#
#   usage: scripts/bench-registry.sh [RUNS]     (default 3; needs root)
set -eu
RUNS=${1:-3}
PORT=5077
. "$(dirname "$0")/bench-common.sh" registry hyperfine podman skopeo docker-registry

cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >/dev/null 2>&1 &
REGISTRY_PID=$!
# Pulls go to a podman store of their own, emptied before each run.
PODMAN_PULL="podman --root $WORK/podman-pull --runroot $WORK/podman-pull-run --storage-driver vfs"
cleanup() {
    kill "$REGISTRY_PID" 2>/dev/null || true
    $PODMAN rmi -af >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
until busybox wget -q -O /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null; do sleep 0.1; done

# The image: three layers of 100 MB that do not compress, built with gzip layers so
# that every tool moves the same bytes.
mkdir -p "$WORK/context"
printf 'FROM busybox\nRUN head -c 100000000 /dev/urandom > /a\nRUN head -c 100000000 /dev/urandom > /b\nRUN head -c 100000000 /dev/urandom > /c\n' > "$WORK/context/Dockerfile"
"$LADE" build --progress plain --compression gzip -t bench:1 "$WORK/context" >/dev/null 2>&1
"$LADE" save -o "$WORK/bench.tar" bench:1
$PODMAN load -q -i "$WORK/bench.tar" >/dev/null


EMPTY="rm -rf $WORK/registry/docker"
DEST=127.0.0.1:$PORT/bench
hyperfine -N ${HYPERFINE_FLAGS:-} --runs "$RUNS" --export-json "$HERE/bench-results/registry-push.json" \
    --prepare "sh -c '$EMPTY'" \
    -n "lade push" "$LADE push bench:1 $DEST:1" \
    -n "skopeo copy (push)" "skopeo copy -q --dest-tls-verify=false oci:$LADE_ROOT/oci:bench:1 docker://$DEST:1" \
    -n "podman push" "$PODMAN push -q --tls-verify=false bench:1 docker://$DEST:1"

"$LADE" push -q bench:1 "$DEST:1" >/dev/null
hyperfine -N ${HYPERFINE_FLAGS:-} --runs "$RUNS" --export-json "$HERE/bench-results/registry-pull.json" \
    --prepare "sh -c 'rm -rf $WORK/pull-store $WORK/pull-oci $WORK/podman-pull $WORK/podman-pull-run'" \
    -n "lade pull" "env LADE_ROOT=$WORK/pull-store $LADE pull -q $DEST:1" \
    -n "skopeo copy (pull)" "skopeo copy -q --src-tls-verify=false docker://$DEST:1 oci:$WORK/pull-oci:bench" \
    -n "podman pull" "$PODMAN_PULL pull -q --tls-verify=false $DEST:1"

python3 - "$HERE/bench-results/registry-push.json" "$HERE/bench-results/registry-pull.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = {x["command"]: x["median"] for x in json.load(open(path))["results"]}
    lade = next(v for k, v in r.items() if k.startswith("lade"))
    for name, s in r.items():
        print(f"{name:20} median {s:6.2f} s   lade/{name.split()[0]} = {lade / s:.2f}")
PY
