#!/bin/sh
# Runs lade's whole test suite on Debian 12, as root: installs the system packages the
# tests use (busybox-static for base images, podman, skopeo and umoci for interop, crun
# for comparisons, netavark and aardvark-dns for container networks, docker-registry
# and htpasswd for registry round trips, compressors for archive fixtures), then checks formatting and lints
# and runs every test.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="busybox-static podman skopeo umoci crun runc netavark aardvark-dns iptables docker-registry apache2-utils openssl bzip2 xz-utils zstd iproute2 procps bsdutils util-linux tar gcc libc6-dev man-db bash libcap2-bin"
missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# The conformance corpora live beside the repository; without them their tests skip
# (and fail under CI, which always has them). Say so here, where it is seen.
if [ ! -d ../shared/conformance ]; then
    echo "NOTE: ../shared/conformance is absent: the BuildKit conformance cases will be skipped"
fi

echo "== formatting (cargo fmt --check)"
cargo fmt --check
echo "== lints (cargo clippy --all-targets -- -D warnings)"
cargo clippy --all-targets -- -D warnings
# Every test file runs even when an earlier one fails, so one failure hides no other.
echo "== tests (cargo test --all-targets --no-fail-fast)"
cargo test --all-targets --no-fail-fast
