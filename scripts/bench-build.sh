#!/bin/bash
# The same project built by lade, by docker + BuildKit (Debian's docker.io 20.10,
# DOCKER_BUILDKIT=1, dockerd started here) and by podman build --layers (buildah), in one
# run: cold build, no-op rebuild, one-file-changed rebuild. hyperfine medians and ratios.
#
#   usage: scripts/bench-build.sh [COLD_RUNS [WARM_RUNS]]    (default 3 and 10; root)
#   BENCH_IMAGE_SIZE: the file system's size (default 24G; sparse, but the host must have
#   that much free); about 8G is enough for the three tools.
#   BENCH_STAGES=one: the final stage alone, without the two sleeping stages: the shared
#   workload's own single-stage Dockerfile (../shared/bench/workload/Dockerfile), whose
#   cold build has no 3 s floor (results in bench-results/build-*-one.json).
#
# The project: a 10,000-file / 60 MB tree plus a 200 MB file (scripts/gen-context.py), a
# final stage with COPY and RUN steps, and two independent stages (each `sleep 3` and a
# little work) whose outputs the final stage copies: a tool that builds them at once
# saves 3 s of a cold build.
#   cold       no cache and no built image (the base image stays); files in page cache
#   no-op      the same build again
#   one file   one file of tree/ changed before each run
# Everything (context, lade's store, dockerd's data root, podman's storage) lives on a
# fresh journaled ext4 file system on a loop device, as in bench-copy.sh: this machine's
# root file system has no journal, and there ext4 allocation slows after many deletions.
set -euo pipefail
COLD_RUNS=${1:-3}
WARM_RUNS=${2:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench-build}
IMAGE=${BENCH_IMAGE:-/tmp/lade-bench-build.ext4}

IMAGE_SIZE=${BENCH_IMAGE_SIZE:-24G}
TOOLS="hyperfine:hyperfine buildah:buildah busybox:busybox-static"
. "$HERE/scripts/bench-peers.sh"

CTX=$WORK/context
[ -f "$CTX/big.bin" ] || { mkdir -p "$CTX"; python3 "$HERE/scripts/gen-context.py" "$CTX" >/dev/null; }
# The final stage: the shared workload's single-stage Dockerfile, without its last two
# lines.
final_stage() {
    cat <<'EOF'
FROM busybox:local
ENV APP_HOME=/app BENCH_LEVEL=1 PATH=/bin:/usr/bin:/sbin:/usr/sbin
WORKDIR /app
COPY big.bin /app/big.bin
COPY tree/ /app/tree/
RUN find /app/tree -type f | wc -l > /app/count.txt \
 && find /app/tree -type f -name '*.txt' | head -n 200 | xargs cat | sha256sum > /app/sum.txt \
 && mkdir -p /app/gen \
 && i=0; while [ $i -lt 1000 ]; do echo "generated file $i" > /app/gen/g$i.txt; i=$((i+1)); done \
 && ls /app/gen | wc -l > /app/gen-count.txt
EOF
}
if [ "${BENCH_STAGES:-}" = one ]; then
    SUFFIX=-one
    { final_stage; printf '%s\n' 'EXPOSE 8080' 'ENTRYPOINT ["/bin/sh","-c","echo hi"]'; } > "$CTX/Dockerfile"
else
    SUFFIX=
    {
        cat <<'EOF'
FROM busybox:local AS a
RUN sleep 3 && mkdir -p /out && find /bin | wc -l > /out/a.txt

FROM busybox:local AS b
RUN sleep 3 && mkdir -p /out && seq 1 20000 | sha256sum > /out/b.txt

EOF
        final_stage
        cat <<'EOF'
COPY --from=a /out/a.txt /a.txt
COPY --from=b /out/b.txt /b.txt
EXPOSE 8080
ENTRYPOINT ["/bin/sh","-c","cat /app/count.txt /a.txt /b.txt"]
EOF
    } > "$CTX/Dockerfile"
fi
# Each one-file run changes this file, so every run has a change to find.
CHANGE="date +%s%N >> $CTX/tree/d1000/f0.txt"

# lade, with the busybox base.
export LADE_ROOT=$WORK/lade
LADE_IMPORT_FLAGS="--compression gzip" "$HERE/scripts/busybox-image.sh" "$LADE" busybox:local >/dev/null
"$LADE" save -o "$WORK/busybox.tar" busybox:local

/usr/bin/docker load -q -i "$WORK/busybox.tar" >/dev/null
$PODMAN load -q -i "$WORK/busybox.tar" >/dev/null

LADE_BUILD="$LADE build --progress quiet -t bench $CTX"
DOCKER_BUILD="/usr/bin/docker build -q -t bench $CTX"
PODMAN_BUILD="$PODMAN build -q --layers --jobs 2 --network none -t bench $CTX"
LADE_COLD="$LADE rmi -f bench >/dev/null 2>&1; $LADE cache prune --all --force >/dev/null; sync"
DOCKER_COLD="/usr/bin/docker rmi -f bench >/dev/null 2>&1; /usr/bin/docker builder prune -af >/dev/null; sync"
PODMAN_COLD="$PODMAN rmi -f bench >/dev/null 2>&1; $PODMAN image prune -f >/dev/null; sync"

run() { # name runs prepare-lade prepare-docker prepare-podman [extra hyperfine args]
    local name=$1 runs=$2
    hyperfine --runs "$runs" --warmup "${WARMUP:-0}" --export-json "$HERE/bench-results/build-$name$SUFFIX.json" \
        "${@:6}" \
        --prepare "$3" -n lade "$LADE_BUILD" \
        --prepare "$4" -n "docker+buildkit" "$DOCKER_BUILD" \
        --prepare "$5" -n "podman --layers" "$PODMAN_BUILD"
}
echo "== cold build"
# Also with --jobs 3: by default lade lets as many RUN steps run at once as there are
# CPUs (2 here), so the final stage's RUN waits while both sleeping stages hold a turn.
run cold "$COLD_RUNS" "$LADE_COLD" "$DOCKER_COLD" "$PODMAN_COLD" \
    --prepare "$LADE_COLD" -n "lade --jobs 3" "$LADE build --jobs 3 --progress quiet -t bench $CTX"
echo "== one file changed"
run one-file "$COLD_RUNS" "$CHANGE" "$CHANGE" "$CHANGE"
echo "== no-op rebuild"
# Everything was just built: each tool's first run is a no-op already.
WARMUP=1 run no-op "$WARM_RUNS" "true" "true" "true"

python3 - "$HERE/bench-results" "$SUFFIX" <<'PY'
import json, os, sys
rows = []
for case in ["cold", "no-op", "one-file"]:
    results = {r["command"]: r["median"] for r in
               json.load(open(os.path.join(sys.argv[1], f"build-{case}{sys.argv[2]}.json")))["results"]}
    lade = results["lade"]
    for name, median in results.items():
        rows.append((case, name, median, median / lade))
print(f"{'case':10} {'tool':16} {'median':>10} {'x lade':>8}")
for case, name, median, ratio in rows:
    shown = f"{median * 1000:.1f} ms" if median < 1 else f"{median:.2f} s"
    print(f"{case:10} {name:16} {shown:>10} {ratio:8.1f}")
PY
