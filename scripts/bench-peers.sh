# What the build benchmarks that compare with docker and podman share, sourced by them
# (bash) after they set WORK (a directory), IMAGE (a file for the loop device),
# IMAGE_SIZE and TOOLS (`command:package` pairs they need besides podman and dockerd):
# those installed, lade built for release, a fresh journaled ext4 file system on a loop
# device at $WORK (this machine's root file system has no journal, and there ext4's
# allocation slows after many deletions), a dockerd of its own with its data on it,
# podman with storage of its own there and the ulimits this machine needs (root lacks
# CAP_SYS_RESOURCE), and everything stopped, unmounted and removed on exit.
#
# Sets LADE, PODMAN, DOCKER_HOST, DOCKER_BUILDKIT and CONTAINERS_CONF.

need=()
for tool in podman:podman dockerd:docker.io $TOOLS; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
cargo build --release --manifest-path "$HERE/Cargo.toml" -q
LADE=$HERE/target/release/lade
PODMAN="podman --root $WORK/podman --runroot $WORK/podman-run --storage-driver overlay"

mkdir -p "$WORK"
MOUNTED=
DOCKERD_PID=
cleanup() {
    set +e
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID"
        for _ in $(seq 1 40); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$DOCKERD_PID" 2>/dev/null
        ip link show docker0 >/dev/null 2>&1 && ip link del docker0
    fi
    $PODMAN rmi -af >/dev/null 2>&1
    for m in $(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m"
    done
    if [ -n "$MOUNTED" ]; then umount -l "$WORK"; rm -f "$IMAGE"; fi
}
trap cleanup EXIT
if ! mountpoint -q "$WORK"; then
    rm -f "$IMAGE"
    # The image is sparse: a host file system with less room than its size fails the
    # run half-way, when the loop device's writes find no space (the journal aborts).
    mkdir -p "$(dirname "$IMAGE")"
    free=$(df --output=avail -B1 "$(dirname "$IMAGE")" | tail -1)
    need=$(numfmt --from=iec "$IMAGE_SIZE")
    if [ "$free" -lt "$need" ]; then
        echo "$(dirname "$IMAGE") has $(numfmt --to=iec "$free") free; the benchmark's file system needs up to $IMAGE_SIZE (set BENCH_IMAGE to a path with room)" >&2
        exit 1
    fi
    truncate -s "$IMAGE_SIZE" "$IMAGE"
    mkfs.ext4 -q -F "$IMAGE"
    mount -o loop "$IMAGE" "$WORK"
    MOUNTED=1
fi

export DOCKER_HOST=unix://$WORK/docker.sock DOCKER_BUILDKIT=1
/usr/sbin/dockerd --host "$DOCKER_HOST" --data-root "$WORK/docker" --exec-root "$WORK/docker-exec" \
    --pidfile "$WORK/docker.pid" >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 80); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.25; done
/usr/bin/docker info >/dev/null || { tail "$WORK/dockerd.log"; exit 1; }

printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
mkdir -p "$HERE/bench-results"
