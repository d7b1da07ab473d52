#!/bin/bash
# Real Dockerfiles on a Debian bookworm base (scripts/debian-image.sh), built by lade,
# by `podman build --layers` and by docker + BuildKit (Debian's docker.io 20.10 with
# DOCKER_BUILDKIT=1, a dockerd started here), cold and with one source file changed.
#
#   usage: scripts/bench-realworld.sh [ROUNDS [APPS]]   (default 3, "scm pip npm cargo"; root)
#
# The apps (written under $WORK/apps):
#   scm    buildpack-deps' curl then scm variants: apt-get install of ca-certificates
#          curl gnupg netbase wget, then git mercurial openssh-client subversion procps
#   pip    apt-get install python3 and venv, pip install of requests and flask
#   npm    apt-get install nodejs and npm, npm install of express
#   cargo  apt-get install cargo, cargo build --release with cache mounts for the
#          registry and target (no dependencies: bookworm's cargo 1.65 clones the whole
#          crates.io index over git, which would measure the network, not the builder)
# Each ends by copying its source file, which the one-file-changed build edits.
#
# Cold: each tool's build cache emptied first (lade: a fresh store holding only the base;
# podman and docker: `--no-cache` and the image removed). One file changed: the source
# file edited, then the same build again. Each round runs the tools in a rotated order,
# so that none always meets a cold download cache (the mirror and the proxy in between
# keep what the first tool fetched); medians over the rounds. Everything lives on a
# fresh journaled ext4 on a loop device (as in bench-build.sh). Raw times go to
# bench-results/realworld.csv.
set -euo pipefail
ROUNDS=${1:-3}
APPS=${2:-scm pip npm cargo}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/lade-bench-realworld}
IMAGE=${BENCH_IMAGE:-/tmp/lade-bench-realworld.ext4}

IMAGE_SIZE=40G
TOOLS="mmdebstrap:mmdebstrap"
. "$HERE/scripts/bench-peers.sh"

# The base: one rootfs tarball, imported by each tool as debian:bookworm.
ROOTFS=${DEBIAN_ROOTFS:-/tmp/lade-debian-bookworm.tar}
export DEBIAN_ROOTFS=$ROOTFS
LADE_ROOT=$WORK/lade-base "$HERE/scripts/debian-image.sh" "$LADE" >/dev/null

/usr/bin/docker import --change 'CMD ["bash"]' "$ROOTFS" debian:bookworm >/dev/null
$PODMAN import -q --change 'CMD ["bash"]' "$ROOTFS" docker.io/library/debian:bookworm >/dev/null

# The apps. RUN steps that download over HTTPS trust the system's CA bundle, which
# holds this machine's proxy CA when debian-image.sh added it.
APPS_DIR=$WORK/apps
mkdir -p "$APPS_DIR"/{scm,pip,npm,cargo/src}
cat > "$APPS_DIR/scm/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN set -eux; apt-get update; apt-get install -y --no-install-recommends \
        ca-certificates curl gnupg netbase wget; \
    rm -rf /var/lib/apt/lists/*
RUN apt-get update && apt-get install -y --no-install-recommends \
        git mercurial openssh-client subversion procps \
    && rm -rf /var/lib/apt/lists/*
COPY motd /etc/motd
EOF
echo "scm tools" > "$APPS_DIR/scm/motd"
cat > "$APPS_DIR/pip/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
COPY app.py .
CMD ["/venv/bin/python", "app.py"]
EOF
printf 'requests==2.31.0\nflask==3.0.3\n' > "$APPS_DIR/pip/requirements.txt"
echo 'print("hello from pip")' > "$APPS_DIR/pip/app.py"
cat > "$APPS_DIR/npm/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates nodejs npm \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
COPY package.json .
RUN npm install --no-audit --no-fund
COPY index.js .
CMD ["node", "index.js"]
EOF
printf '{"name":"app","version":"1.0.0","dependencies":{"express":"4.19.2"}}\n' > "$APPS_DIR/npm/package.json"
echo 'console.log("hello from npm")' > "$APPS_DIR/npm/index.js"
cat > "$APPS_DIR/cargo/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates cargo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Cargo.toml .
COPY src src
RUN --mount=type=cache,target=/root/.cargo/registry \
    --mount=type=cache,target=/app/target \
    cargo build --release && cp target/release/app /usr/local/bin/app
CMD ["app"]
EOF
printf '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n' > "$APPS_DIR/cargo/Cargo.toml"
echo 'fn main() { println!("hello from cargo"); }' > "$APPS_DIR/cargo/src/main.rs"
source_file() {
    case $1 in scm) echo motd ;; pip) echo app.py ;; npm) echo index.js ;; cargo) echo src/main.rs ;; esac
}

build() { # tool app [cache]: the build command
    local ctx=$APPS_DIR/$2
    case $1 in
    lade) LADE_ROOT=$WORK/lade "$LADE" build --progress quiet -t "$2" "$ctx" ;;
    podman) $PODMAN build -q --layers ${3:+--no-cache} -t "$2" "$ctx" ;;
    docker) /usr/bin/docker build -q ${3:+--no-cache} -t "$2" "$ctx" ;;
    esac
}
empty_cache() { # tool app
    case $1 in
    lade) rm -rf "$WORK/lade"; cp -a "$WORK/lade-base" "$WORK/lade" ;;
    podman) $PODMAN rmi -f "$2" >/dev/null 2>&1 || true ;;
    docker) /usr/bin/docker rmi -f "$2" >/dev/null 2>&1 || true
        /usr/bin/docker builder prune -af >/dev/null ;;
    esac
    sync
}
timed() { # label command...: runs it, prints the seconds, fails loudly
    local start end
    start=$(date +%s.%N)
    if ! "$@" >"$WORK/last.log" 2>&1; then
        echo "FAILED: $*" >&2
        tail -30 "$WORK/last.log" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

CSV=$HERE/bench-results/realworld.csv
echo "round,app,tool,case,seconds" > "$CSV"
TOOLS=(lade podman docker)
for round in $(seq 1 "$ROUNDS"); do
    for app in $APPS; do
        for i in 0 1 2; do
            tool=${TOOLS[$(( (i + round - 1) % 3 ))]}
            empty_cache "$tool" "$app"
            cold=$(timed build "$tool" "$app" cold)
            echo "// $(date +%s%N)" >> "$APPS_DIR/$app/$(source_file "$app")"
            changed=$(timed build "$tool" "$app")
            echo "$round,$app,$tool,cold,$cold" >> "$CSV"
            echo "$round,$app,$tool,one-file,$changed" >> "$CSV"
            echo "round $round $app $tool: cold ${cold}s, one file changed ${changed}s"
        done
    done
done

python3 - "$CSV" <<'PY'
import csv, statistics, sys
times = {}
for row in csv.DictReader(open(sys.argv[1])):
    times.setdefault((row["app"], row["case"], row["tool"]), []).append(float(row["seconds"]))
apps = sorted({a for a, _, _ in times}, key=["scm", "pip", "npm", "cargo"].index)
print(f"{'app':6} {'case':9} {'lade':>8} {'podman':>8} {'docker':>8} {'lade / best peer':>17}")
for app in apps:
    for case in ["cold", "one-file"]:
        m = {t: statistics.median(times[(app, case, t)]) for t in ["lade", "podman", "docker"]}
        best = min(m["podman"], m["docker"])
        print(f"{app:6} {case:9} {m['lade']:7.2f}s {m['podman']:7.2f}s {m['docker']:7.2f}s {m['lade'] / best:16.2f}x")
PY
