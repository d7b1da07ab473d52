#!/bin/sh
# Cold COPY build of a 10,000-file / 60 MB tree plus a 200 MB file, against
# `tar -c | zstd -T0` of the same files, in one run (hyperfine, medians).
#
#   usage: scripts/bench-copy.sh [RUNS]     (default 5; needs root, hyperfine, zstd)
#
# Each lade run starts from an empty store holding only the busybox base image; each
# tar run from no output file. Both run on a fresh, journaled ext4 file system on a loop
# device: this machine's root file system has no journal, and there ext4 skips every
# inode freed in the last few minutes when it allocates one, so timings of anything that
# creates files would depend on what ran before. Earlier outputs are moved aside, not
# deleted, until all runs are done.
# lade's number includes what tar|zstd does not do: an fsync'd blob and the layer's
# unpacked snapshot (10,000 files written).
set -eu
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench}
IMAGE=${BENCH_IMAGE:-/tmp/lade-bench.ext4}
for tool in hyperfine zstd; do
    command -v $tool >/dev/null || { apt-get install -y -q $tool >/dev/null; }
done
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
mkdir -p "$WORK"
if ! mountpoint -q "$WORK"; then
    rm -f "$IMAGE"
    truncate -s 16G "$IMAGE"
    mkfs.ext4 -q -F "$IMAGE"
    mount -o loop "$IMAGE" "$WORK"
    trap 'umount "$WORK"; rm -f "$IMAGE"' EXIT
fi
LADE=$HERE/target/release/lade
CTX=$WORK/context
[ -f "$CTX/big.bin" ] || { mkdir -p "$CTX"; python3 "$HERE/scripts/gen-context.py" "$CTX"; }
printf 'FROM busybox\nCOPY big.bin /app/big.bin\nCOPY tree/ /app/tree/\n' > "$WORK/Dockerfile.copy"
STORE=$WORK/store
TRASH=$WORK/trash
mkdir -p "$HERE/bench-results" "$TRASH"
ASIDE="mkdir -p $TRASH && for p in $STORE $WORK/out.tar.zst; do [ -e \$p ] && mv \$p $TRASH/\$(date +%s%N); done; true"
OUT=$HERE/bench-results/copy.json

hyperfine --runs "$RUNS" --export-json "$OUT" \
    --prepare "$ASIDE; LADE_ROOT=$STORE $HERE/scripts/busybox-image.sh $LADE >/dev/null; sync" \
    -n lade "LADE_ROOT=$STORE $LADE build --progress quiet -f $WORK/Dockerfile.copy $CTX" \
    --prepare "$ASIDE; LADE_ROOT=$STORE $HERE/scripts/busybox-image.sh $LADE >/dev/null; sync" \
    -n 'tar|zstd' "tar -C $CTX -c tree big.bin | zstd -q -T0 -o $WORK/out.tar.zst"

python3 - "$OUT" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
lade, tar = results["lade"]["median"], results["tar|zstd"]["median"]
print(f"median: lade {lade:.2f}s, tar|zstd {tar:.2f}s, ratio {lade / tar:.2f}x")
PY
