#!/bin/bash
# What lade pushes and saves, read by Docker 20.10 (Debian 12's docker.io, still what
# many CI images ship) and what Docker saves, read by lade: a check a person runs on a
# Debian 12 machine as root (the test suite does not install docker.io, to keep within
# CI's time). Installs docker.io and docker-registry when missing, starts a dockerd and
# a registry of its own on 127.0.0.1 (both stopped on exit), and prints a line per
# check, then `N passed, N failed`.
#
#   usage: scripts/interop.sh            (LADE=path/to/lade to use a built binary)
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v busybox >/dev/null || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -z "${LADE:-}" ]; then
    cargo build --release -q --manifest-path "$HERE/Cargo.toml"
    LADE=$HERE/target/release/lade
fi

WORK=$(mktemp -d /tmp/lade-interop.XXXXXX)
DOCKER=/usr/bin/docker
export DOCKER_HOST=unix://$WORK/docker.sock
export LADE_ROOT=$WORK/lade
DOCKERD_PID=
REGISTRY_PID=
cleanup() {
    for pid in $REGISTRY_PID $DOCKERD_PID; do
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null
    done
    ip link show docker0 >/dev/null 2>&1 && ip link del docker0
    for m in $(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

/usr/sbin/dockerd --host "$DOCKER_HOST" --data-root "$WORK/docker" --exec-root "$WORK/docker-exec" \
    --pidfile "$WORK/docker.pid" --bridge none --iptables=false >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
PORT=$((20000 + RANDOM % 20000))
cat >"$WORK/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 120); do
    $DOCKER info >/dev/null 2>&1 && grep -q "listening on" "$WORK/registry.log" && break
    sleep 0.5
done
$DOCKER info >/dev/null 2>&1 || { echo "dockerd did not start: see $WORK/dockerd.log"; cat "$WORK/dockerd.log"; exit 1; }

passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >"$WORK/out" 2>&1; then
        echo "ok: $what"
        passed=$((passed + 1))
    else
        echo "FAILED: $what"
        sed 's/^/    /' "$WORK/out" | tail -5
        failed=$((failed + 1))
    fi
}

"$HERE/scripts/busybox-image.sh" "$LADE" >/dev/null
mkdir -p "$WORK/context"
printf 'FROM busybox\nRUN echo from-lade > /greeting\n' >"$WORK/context/Dockerfile"
"$LADE" build --progress quiet -t app:1 "$WORK/context" >/dev/null
IMAGE=127.0.0.1:$PORT/interop/app

check "lade push (gzip by default), then docker pull and run it" sh -c "
    '$LADE' push -q app:1 $IMAGE:gzip &&
    $DOCKER pull -q $IMAGE:gzip &&
    test \"\$($DOCKER run --rm --network none $IMAGE:gzip cat /greeting)\" = from-lade"
check "lade save, then docker load and run it" sh -c "
    '$LADE' save -o '$WORK/app.tar' app:1 &&
    $DOCKER load -i '$WORK/app.tar' &&
    test \"\$($DOCKER run --rm --network none app:1 cat /greeting)\" = from-lade"
check "docker save of two tags sharing layers, then lade load and run it" sh -c "
    $DOCKER tag app:1 app:2 &&
    $DOCKER save -o '$WORK/docker.tar' app:1 app:2 &&
    '$LADE' load -i '$WORK/docker.tar' &&
    test \"\$('$LADE' run --rm --network none app:2 cat /greeting)\" = from-lade"
# Said, not counted: older clients cannot read zstd, which is why gzip is the default.
if "$LADE" push -q --compression zstd --force-compression app:1 "$IMAGE:zstd" >/dev/null 2>&1 &&
    $DOCKER pull -q "$IMAGE:zstd" >/dev/null 2>&1 &&
    [ "$($DOCKER run --rm --network none "$IMAGE:zstd" cat /greeting 2>/dev/null)" = from-lade ]; then
    echo "note: this docker pulls and runs zstd layers too"
else
    echo "note: this docker cannot pull or run zstd layers (push --compression zstd is for newer clients)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
