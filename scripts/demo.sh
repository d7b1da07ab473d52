#!/bin/sh
# The demo, on Debian 12 as root: builds lade, imports a busybox base image made from
# Debian's busybox-static (no network needed), builds examples/Dockerfile.demo and runs
# it, then shows the detached workflow (run -d with a published port, ps, port, exec, logs,
# stop, rm). The store is
# $LADE_ROOT when set, else /var/lib/lade.
set -eu
cd "$(dirname "$0")/.."
# LADE names a lade binary built already (the test suite runs the demo so); else it is
# built here.
if [ -z "${LADE:-}" ]; then
    echo "== cargo build --release (the first build compiles every dependency: about 10 minutes on two cores; later builds take seconds)"
    cargo build --release
    LADE=target/release/lade
fi
# Containers join a bridge network by default: lade's bridge driver needs iptables, and
# podman's aardvark-dns answers names on user networks.
for package in aardvark-dns iptables; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >/dev/null
done
echo "== importing busybox:latest"
scripts/busybox-image.sh "$LADE" >/dev/null
echo "== lade build -t lade-demo:latest -f examples/Dockerfile.demo examples"
"$LADE" build --progress plain -t lade-demo:latest -f examples/Dockerfile.demo examples >/dev/null
echo "== lade run --rm lade-demo:latest"
"$LADE" run --rm lade-demo:latest
echo "== the detached workflow: run -d, ps, exec, logs, stop, rm"
"$LADE" rm -f lade-demo-web >/dev/null 2>&1 || true
"$LADE" run -d --name lade-demo-web -p 18080:8080 --entrypoint sh lade-demo:latest \
    -c 'trap "exit 0" TERM; mkdir -p /www; echo "hello from lade-demo-web" > /www/index.html; httpd -p 8080 -h /www; while true; do date; sleep 1 & wait; done'
"$LADE" ps
"$LADE" port lade-demo-web
echo "== wget http://127.0.0.1:18080/ (a published port)"
for _ in 1 2 3 4 5 6 7 8 9 10; do busybox wget -q -O - http://127.0.0.1:18080/ 2>/dev/null && break; sleep 0.2; done
"$LADE" exec lade-demo-web sh -c 'echo "hello from exec, in container $(hostname)"'
"$LADE" stop lade-demo-web
"$LADE" logs --tail 2 lade-demo-web
"$LADE" rm lade-demo-web
