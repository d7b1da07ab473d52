#!/bin/sh
# The demo, on Debian 12 as root: builds lade, imports a busybox base image made from
# Debian's busybox-static (no network needed), builds examples/Dockerfile.demo and runs
# it. The store is $LADE_ROOT when set, else /var/lib/lade.
set -eu
cd "$(dirname "$0")/.."
echo "== cargo build --release (the first build compiles every dependency: about 10 minutes on two cores; later builds take seconds)"
cargo build --release
LADE=target/release/lade
echo "== importing busybox:latest"
scripts/busybox-image.sh "$LADE" >/dev/null
echo "== lade build -t lade-demo:latest -f examples/Dockerfile.demo examples"
"$LADE" build --progress plain -t lade-demo:latest -f examples/Dockerfile.demo examples >/dev/null
echo "== lade run --rm lade-demo:latest"
"$LADE" run --rm lade-demo:latest
