#!/bin/sh
# What the benchmarks share, sourced by them (`. scripts/bench-common.sh NAME TOOLS...`):
# the peer tools installed, lade built for release, a work directory under /tmp with a
# store holding the busybox base image, and podman set up as this machine needs (root
# lacks CAP_SYS_RESOURCE, so podman's default rlimits cannot be set).
#
# Sets HERE, WORK, LADE, LADE_ROOT, CONTAINERS_CONF and PODMAN.
NAME=$1
shift
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench-$NAME}
for tool in "$@"; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null
done
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
LADE=$HERE/target/release/lade
rm -rf "$WORK"; mkdir -p "$WORK"
export LADE_ROOT=$WORK/store
"$HERE/scripts/busybox-image.sh" "$LADE" >/dev/null
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
PODMAN="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver vfs"
mkdir -p "$HERE/bench-results"
