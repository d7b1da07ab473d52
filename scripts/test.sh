#!/bin/sh
# Runs lade's whole test suite on Debian 12, as root: installs the system packages the
# tests use (busybox-static for base images, podman, skopeo and umoci for interop, crun
# for comparisons, qemu-user-static and binfmt-support for builds of other platforms,
# uidmap and passt (slirp4netns as its fall-back) for rootless lade, fuse-overlayfs for
# its storage where the kernel refuses overlay in a user namespace (the rootless tests
# make a user `laderootless` with a subordinate id range, and open /dev/net/tun and
# /dev/fuse to users as Debian's udev does, for pasta and fuse-overlayfs), iptables and aardvark-dns for container networks (netavark for
# podman's, in the interop tests), docker-registry
# and htpasswd for registry round trips, compressors for archive fixtures, openssh-client
# for build --ssh's agents), then checks formatting and lints
# and runs every test.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="busybox-static openssh-client qemu-user-static binfmt-support podman skopeo umoci crun runc netavark aardvark-dns iptables docker-registry apache2-utils openssl bzip2 xz-utils zstd iproute2 procps bsdutils util-linux tar gcc libc6-dev man-db bash libcap2-bin uidmap passt slirp4netns fuse-overlayfs fuse3 curl"
missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# Builds for arm64 run their steps under qemu-user: binfmt_misc must be mounted and
# qemu-aarch64 registered (with the F flag, which Debian's qemu-user-static sets).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    update-binfmts --enable qemu-aarch64
fi

# The conformance corpora live beside the repository; without them their tests skip
# (and fail under CI, which always has them). Say so here, where it is seen.
if [ ! -d ../shared/conformance ]; then
    echo "NOTE: ../shared/conformance is absent: the BuildKit conformance cases will be skipped"
fi

# Each phase says what it runs when it starts, and how long it took.
started=0
phase() {
    started=$(date +%s)
    echo "== $*"
}
done_in() {
    echo "   ($1 in $(( $(date +%s) - started )) s)"
}

phase "formatting (cargo fmt --check)"
cargo fmt --check
done_in checked
phase "lints (cargo clippy --all-targets -- -D warnings)"
cargo clippy --all-targets -- -D warnings
done_in checked
phase "building the tests (cargo test --all-targets --no-run)"
cargo test --all-targets --no-run
done_in built

# Every phase of tests runs even when an earlier one fails, and each runs all its
# tests (--no-fail-fast), so one failure hides no other.
failed=""
phase "unit tests (cargo test --lib --bins)"
cargo test --lib --bins --no-fail-fast || failed="$failed unit"
done_in ran
phase "integration tests (cargo test --test suite): one binary, a module per file of tests/suite/; the busybox base is made once; the longest tests print their steps to stderr"
cargo test --test suite --no-fail-fast || failed="$failed integration"
done_in ran
phase "benchmarks, each run once as a test (cargo test --benches)"
cargo test --benches --no-fail-fast || failed="$failed benchmarks"
done_in ran
if [ -n "$failed" ]; then
    echo "== FAILED:$failed"
    exit 1
fi
echo "== all passed"
