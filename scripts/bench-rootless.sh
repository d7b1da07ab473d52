#!/bin/sh
# Rootless lade beside rootless podman, in one run, as the same ordinary user: `run
# --rm true` with `--network none` and on each tool's default rootless network (pasta
# for lade, podman's own default), and an uncached build of a small Dockerfile (a RUN
# writing 1,000 files). hyperfine; medians and ratios. Both tools use the kernel's
# overlay in the user namespace (podman's storage.conf says `driver = "overlay"`).
#
#   usage: scripts/bench-rootless.sh [RUNS]     (default 30; run as root: it makes the
#          user `laderootless` with a subordinate range, as the rootless tests do;
#          LADE=path uses that binary instead of building the release one)
set -eu
RUNS=${1:-30}
HERE=$(cd "$(dirname "$0")/.." && pwd)
USER_NAME=laderootless
for tool in hyperfine podman newuidmap pasta; do
    command -v $tool >/dev/null || { echo "missing $tool (apt-get install hyperfine podman uidmap passt)" >&2; exit 1; }
done
id -u $USER_NAME >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin $USER_NAME
grep -q "^$USER_NAME:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 $USER_NAME
chmod 0666 /dev/net/tun
if [ -z "${LADE:-}" ]; then
    cargo build --release --manifest-path "$HERE/Cargo.toml" -q
    LADE=$HERE/target/release/lade
fi
WORK=$(mktemp -d /tmp/lade-bench-rootless.XXXXXX)
chmod 0755 "$WORK"
chown $USER_NAME "$WORK"
cleanup() {
    # Each tool's pause process (holding its user namespace), by its pid file.
    pid=$(cat "$WORK/run/lade/pause.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = lade-pause ]; then kill "$pid"; fi
    pid=$(cat "$WORK/run/libpod/tmp/pause.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = "podman pause" ]; then kill "$pid"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/inner.sh" <<EOF
set -eu
export HOME=$WORK/home XDG_RUNTIME_DIR=$WORK/run
mkdir -p \$HOME/.config/containers \$XDG_RUNTIME_DIR
chmod 0700 \$XDG_RUNTIME_DIR
cat > \$HOME/.config/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
printf '[storage]\ndriver = "overlay"\n' > \$HOME/.config/containers/storage.conf
cd $WORK
mkdir -p rootfs/bin rootfs/tmp
cp /bin/busybox rootfs/bin/
for applet in \$(/bin/busybox --list); do [ "\$applet" = busybox ] || ln -s busybox rootfs/bin/\$applet; done
tar --owner=0 --group=0 --numeric-owner -C rootfs -cf bb.tar .
$LADE import --progress quiet bb.tar bb:1 >/dev/null
podman import -q bb.tar bb:1 >/dev/null
mkdir ctx
printf 'FROM bb:1\nRUN for i in \$(seq 1000); do echo \$i > /tmp/f\$i; done\n' > ctx/Dockerfile
echo "storage: lade \$($LADE info --format '{{.DriverStatus}}'), podman \$(podman info --format '{{.Store.GraphDriverName}}')"
hyperfine -N --warmup 3 --runs $RUNS --export-json run.json \
    -n 'lade run --network none' '$LADE run --rm --network none bb:1 true' \
    -n 'podman run --network none' 'podman run --rm --network none bb:1 true' \
    -n 'lade run (pasta)' '$LADE run --rm bb:1 true' \
    -n 'podman run (default network)' 'podman run --rm bb:1 true'
hyperfine -N --warmup 1 --runs \$(( $RUNS / 3 + 1 )) --export-json build.json \
    -n 'lade build --no-cache' '$LADE build -q --no-cache ctx' \
    -n 'podman build --no-cache' 'podman build -q --no-cache --layers ctx'
EOF
chmod 0755 "$WORK/inner.sh"
runuser -u $USER_NAME -- sh "$WORK/inner.sh"
python3 - "$WORK/run.json" "$WORK/build.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    results = json.load(open(path))["results"]
    medians = {r["command"]: r["median"] for r in results}
    print()
    for name, median in medians.items():
        print(f"{name:32s} median {median * 1000:8.1f} ms")
    names = list(medians)
    for lade, peer in zip(names[0::2], names[1::2]):
        print(f"{lade} / {peer}: {medians[lade] / medians[peer]:.2f}")
PY
