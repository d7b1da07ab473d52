#!/bin/sh
# Cold COPY build of a 10,000-file / 60 MB tree plus a 200 MB file, against
# `tar -c | zstd -T0` of the same files, in one run: medians, and the median of the
# ratios of each round.
#
#   usage: scripts/bench-copy.sh [RUNS] [COMPRESSION]
#     RUNS         rounds (default 5; needs root and zstd)
#     COMPRESSION  lade's --compression (default: none given, lade's own default)
#
# Each round runs both commands, in turns (lade first in odd rounds, tar first in even
# ones), each after the outputs of earlier runs were moved aside and `sync` wrote out
# what they left dirty: a slow flush of one run's output then falls on both. Each lade
# run starts from an empty store holding only the busybox base image; each tar run from
# no output file. Both run on a fresh, journaled ext4 file system on a loop device: this
# machine's root file system has no journal, and there ext4 skips every inode freed in
# the last few minutes when it allocates one, so timings of anything that creates files
# would depend on what ran before. Earlier outputs are moved aside, not deleted, until
# all runs are done.
# lade's number includes what tar|zstd does not do: the cache key (every file read and
# hashed first), an fsync'd blob and the layer's unpacked snapshot (10,000 files
# written).
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench}
IMAGE=${BENCH_IMAGE:-/tmp/lade-bench.ext4}
RUNS=${1:-5}
COMPRESSION=${2:-}
command -v zstd >/dev/null || apt-get install -y -q zstd >/dev/null
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
mkdir -p "$WORK"
if ! mountpoint -q "$WORK"; then
    rm -f "$IMAGE"
    # Allocated up front, and written with direct I/O: what is written back goes to the
    # disk, neither into the host's page cache as dirty pages of the image file that the
    # host flushes during later runs, nor into blocks the host file system allocates then.
    fallocate -l 12G "$IMAGE"
    mkfs.ext4 -q -F -E nodiscard "$IMAGE"
    DEVICE=$(losetup --find --show --direct-io=on "$IMAGE")
    mount "$DEVICE" "$WORK"
    trap 'umount "$WORK"; losetup -d "$DEVICE"; rm -f "$IMAGE"' EXIT
fi
LADE=$HERE/target/release/lade
CTX=$WORK/context
[ -f "$CTX/big.bin" ] || { mkdir -p "$CTX"; python3 "$HERE/scripts/gen-context.py" "$CTX"; }
printf 'FROM busybox\nCOPY big.bin /app/big.bin\nCOPY tree/ /app/tree/\n' > "$WORK/Dockerfile.copy"
mkdir -p "$HERE/bench-results"

python3 - "$RUNS" "$COMPRESSION" "$LADE" "$HERE" "$WORK" "$HERE/bench-results/copy.json" <<'PY'
import json, os, statistics, subprocess, sys, time

runs, compression, lade, here, work, out = sys.argv[1:]
runs = int(runs)
store, trash, ctx = f"{work}/store", f"{work}/trash", f"{work}/context"
os.makedirs(trash, exist_ok=True)

def aside():
    for path in (store, f"{work}/out.tar.zst"):
        if os.path.exists(path):
            os.rename(path, f"{trash}/{time.time_ns()}")

def prepare():
    aside()
    env = dict(os.environ, LADE_ROOT=store)
    subprocess.run([f"{here}/scripts/busybox-image.sh", lade], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)

commands = {
    "lade": ([lade, "build", "--progress", "quiet"]
             + (["--compression", compression] if compression else [])
             + ["-f", f"{work}/Dockerfile.copy", ctx], dict(os.environ, LADE_ROOT=store)),
    "tar|zstd": (["sh", "-c", f"tar -C {ctx} -c tree big.bin | zstd -q -T0 -o {work}/out.tar.zst"],
                 dict(os.environ)),
}
times = {name: [] for name in commands}
for round_ in range(runs):
    order = list(commands) if round_ % 2 == 0 else list(reversed(commands))
    for name in order:
        argv, env = commands[name]
        prepare()
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times[name].append(time.perf_counter() - start)
    print(f"round {round_ + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in commands),
          flush=True)
ratios = [l / t for l, t in zip(times["lade"], times["tar|zstd"])]
lade_median, tar_median = statistics.median(times["lade"]), statistics.median(times["tar|zstd"])
json.dump({"compression": compression, "times": times, "ratios": ratios}, open(out, "w"), indent=1)
print(f"median: lade {lade_median:.2f}s, tar|zstd {tar_median:.2f}s, ratio {lade_median / tar_median:.2f}x "
      f"(median of the rounds' ratios {statistics.median(ratios):.2f}x; "
      f"lade {'--compression ' + compression if compression else 'with its default compression'})")
PY
