#!/bin/sh
# An arm64 build on this amd64 machine, its RUN step under qemu-user: lade against
# podman (buildah's builder) on the same Dockerfile and the same arm64 busybox base, in
# one run, alternating tool by tool (a busy machine's load drifts); each build without
# its cache (`--no-cache`), medians of RUNS with the lowest and highest.
#
#   usage: scripts/bench-platforms.sh [RUNS]     (default 7; needs root, qemu-user-static)
set -eu
RUNS=${1:-7}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench-platforms-$$}
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || {
    echo "qemu-aarch64 is not registered: apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64" >&2
    exit 1
}
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
LADE=$HERE/target/release/lade
rm -rf "$WORK"; mkdir -p "$WORK/context"
trap 'podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver vfs rmi -af >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export LADE_ROOT=$WORK/store
"$HERE/scripts/busybox-image.sh" "$LADE" base:arm64 arm64 >/dev/null
PODMAN="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver vfs"
export CONTAINERS_CONF=${CONTAINERS_CONF:-/work/shared/bench/config/containers.conf}
"$LADE" save base:arm64 | $PODMAN load -q >/dev/null 2>&1
$PODMAN tag localhost/base:arm64 base:arm64 2>/dev/null || true

# Work a shell does in user space (emulated instruction by instruction) and processes
# it starts (each a qemu-user start).
cat > "$WORK/context/Dockerfile" <<'EOF'
FROM base:arm64
RUN i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; for n in 1 2 3 4 5 6 7 8 9 10; do uname -m; done > /arch
EOF

ms() { date +%s%N | cut -c1-13; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%d ms (%d-%d)", a[int((NR+1)/2)], a[1], a[NR]}'; }
: > "$WORK/lade.times"; : > "$WORK/podman.times"
run=0
while [ $run -lt "$RUNS" ]; do
    run=$((run + 1))
    start=$(ms)
    "$LADE" build -q --no-cache --platform linux/arm64 -t app:arm64 "$WORK/context" >/dev/null
    echo $(( $(ms) - start )) >> "$WORK/lade.times"
    start=$(ms)
    $PODMAN build -q --no-cache --network none --platform linux/arm64 -t app:arm64 "$WORK/context" >/dev/null
    echo $(( $(ms) - start )) >> "$WORK/podman.times"
done
lade=$(median < "$WORK/lade.times")
podman=$(median < "$WORK/podman.times")
echo "arm64 build under qemu-user, --no-cache, $RUNS runs, median (min-max):"
echo "  lade:   $lade"
echo "  podman: $podman"
"$LADE" run --rm --platform linux/arm64 app:arm64 head -1 /arch
