#!/bin/sh
# `lade run --rm busybox true` against `crun run` on a bundle of the same root file
# system and `podman run --rm` of the same image, in one run (hyperfine, medians and
# ratios). runc is measured too, as shipped. Each of lade and podman runs with
# `--network none` and on its default bridge network (lade-bridge, podman-bridge):
# lade's bridged run against its own `--network none` is the network's cost.
# Then, in the same run, with crun's figure as the yardstick: lade and crun again,
# alternating run by run (the load of a busy machine drifts between hyperfine's blocks);
# `lade run -d` until the id is printed against a foreground `lade run --rm true`; and
# `ps`, `ps -a`, `inspect` and `logs` with 50 containers running (every figure a median
# of RUNS, with its interquartile range).
#
#   usage: scripts/bench-run.sh [RUNS]     (default 50; needs root)
#
# crun refuses hybrid cgroups while cgroup v2 owns a controller; on this kind of machine
# that is hugetlb, so it is moved to a v1 hierarchy for the run and given back after.
set -eu
RUNS=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
# Another checkout's run of this script may share the machine: the work directory
# and the peers' container names are this run's own.
WORK=${BENCH_DIR:-/tmp/lade-bench-run-$$}
for tool in hyperfine crun runc podman umoci; do
    command -v $tool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q $tool >/dev/null
done
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
LADE=$HERE/target/release/lade
rm -rf "$WORK"; mkdir -p "$WORK"
export LADE_ROOT=$WORK/store
LADE_IMPORT_FLAGS="--compression gzip" "$HERE/scripts/busybox-image.sh" "$LADE" >/dev/null

MOVED=
restore() {
    # shellcheck disable=SC2046
    "$LADE" rm -f $("$LADE" ps -aq) >/dev/null 2>&1 || true
    if [ -n "$MOVED" ]; then
        find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
        umount /sys/fs/cgroup/hugetlb 2>/dev/null && rmdir /sys/fs/cgroup/hugetlb
    fi
    podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver vfs rmi -af >/dev/null 2>&1 || true
    # The default network's bridge and rules outlive the runs: the store takes them.
    "$LADE" system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap restore EXIT
if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && MOVED=1
fi

# The same root file system as an OCI bundle for crun and runc.
umoci unpack --image "$LADE_ROOT/oci:busybox:latest" "$WORK/bundle" >/dev/null
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["args"] = ["true"]
config["process"]["terminal"] = False
json.dump(config, open(path, "w"))
PY

# The same image for podman.
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' > "$WORK/containers.conf"
"$LADE" save -o "$WORK/busybox.tar" busybox:latest
PODMAN="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver vfs"
CONTAINERS_CONF=$WORK/containers.conf $PODMAN load -q -i "$WORK/busybox.tar" >/dev/null

mkdir -p "$HERE/bench-results"
OUT=$HERE/bench-results/run.json
CONTAINERS_CONF=$WORK/containers.conf hyperfine -N ${HYPERFINE_FLAGS:-} --warmup 5 --runs "$RUNS" --export-json "$OUT" \
    -n lade "$LADE run --rm --network none busybox true" \
    -n lade-bridge "$LADE run --rm busybox true" \
    -n crun "crun run --bundle $WORK/bundle lade-bench-crun-$$" \
    -n runc "runc run --bundle $WORK/bundle lade-bench-runc-$$" \
    -n podman "$PODMAN run --rm --network none --runtime runc busybox true" \
    -n podman-bridge "$PODMAN run --rm --runtime runc busybox true"

python3 - "$OUT" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["results"]
results = {r["command"]: r["median"] * 1000 for r in runs}
spread = {r["command"]: (min(r["times"]) * 1000, max(r["times"]) * 1000) for r in runs}
lade = results["lade"]
for name, ms in results.items():
    low, high = spread[name]
    print(f"{name:13} median {ms:7.1f} ms ({low:.1f}-{high:.1f})   lade/{name} = {lade / ms:.2f}")
bridge = results["lade-bridge"]
print(f"lade on its bridge network: {bridge / lade:.2f}x lade --network none; "
      f"{results['podman-bridge'] / bridge:.1f}x faster than podman on its bridge")
PY

# On a busy machine the load drifts between hyperfine's blocks of runs: lade and crun
# again, alternating run by run.
ALTERNATING=$(python3 - "$RUNS" "$LADE run --rm --network none busybox true" \
    "crun run --bundle $WORK/bundle lade-bench-crun-$$" <<'PY'
import shlex, statistics, subprocess, sys, time
runs, commands = int(sys.argv[1]), [shlex.split(c) for c in sys.argv[2:]]
times = [[] for _ in commands]
for round in range(runs + 3):
    for i, command in enumerate(commands):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        if round >= 3:
            times[i].append((time.perf_counter() - start) * 1000)
print(" ".join(f"{statistics.median(t):.1f}" for t in times))
PY
)

# `run -d` until the id is printed, against a foreground `run --rm` in the same run.
DETACH=$HERE/bench-results/run-detach.json
hyperfine -N ${HYPERFINE_FLAGS:-} --warmup 3 --runs "$RUNS" --export-json "$DETACH" \
    -n "run -d" "$LADE run -d --network none busybox sleep 1000" \
    -n "run --rm" "$LADE run --rm --network none busybox true"
# shellcheck disable=SC2046
"$LADE" rm -f $("$LADE" ps -aq) >/dev/null

# The read commands with 50 containers running.
i=1
while [ $i -le 50 ]; do
    "$LADE" run -d --network none --name "bench-$i" busybox sleep 1000 >/dev/null
    i=$((i + 1))
done
READS=$HERE/bench-results/run-reads.json
hyperfine -N ${HYPERFINE_FLAGS:-} --warmup 3 --runs "$RUNS" --export-json "$READS" \
    -n "ps" "$LADE ps" \
    -n "ps -a" "$LADE ps -a" \
    -n "inspect" "$LADE inspect bench-25" \
    -n "logs" "$LADE logs bench-25"

python3 - "$OUT" "$DETACH" "$READS" "$ALTERNATING" <<'PY'
import json, statistics, sys
def load(path):
    out = {}
    for r in json.load(open(path))["results"]:
        q = statistics.quantiles([t * 1000 for t in r["times"]], n=4)
        out[r["command"]] = (r["median"] * 1000, q[0], q[2])
    return out
run, detach, reads = (load(p) for p in sys.argv[1:4])
crun = run["crun"][0]
def line(name, figure, note):
    median, low, high = figure
    print(f"{name:22} median {median:7.1f} ms (IQR {low:.1f}-{high:.1f})   {note}")
print()
print(f"yardstick: crun on a prepared bundle, median {crun:.1f} ms")
line("lade run --rm", run["lade"], f"lade/crun = {run['lade'][0] / crun:.2f} (goal 1.0)")
lade_alt, crun_alt = (float(x) for x in sys.argv[4].split())
print(f"{'alternating':22} median {lade_alt:7.1f} ms against crun's {crun_alt:.1f} ms   lade/crun = {lade_alt / crun_alt:.2f}")
rm = detach["run --rm"][0]
line("lade run -d", detach["run -d"], f"run -d / run --rm = {detach['run -d'][0] / rm:.2f} (goal 1.5)")
line("lade run --rm (again)", detach["run --rm"], f"lade/crun = {rm / crun:.2f}")
for name, figure in reads.items():
    line(f"{name}, 50 running", figure, f"goal 30 ms; /crun = {figure[0] / crun:.2f}")
PY
