#!/bin/sh
# Runs the whole test suite several times in a row while another build runs beside it,
# so that a test that depends on timing fails here rather than on a loaded CI machine.
# The build beside loops `lade build --no-cache` of a RUN step writing 3,000 files and
# a COPY of the repository's sources, in a store of its own, until the runs are done.
# Stops at the first failing run and says which.
#
#   usage: scripts/soak.sh [RUNS]   (default 5; as root, after scripts/test.sh has
#                                    installed what the tests need)
set -eu
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
cargo build --release -q
cargo test --all-targets --no-run -q

WORK=$(mktemp -d /tmp/lade-soak.XXXXXX)
LOAD=""
cleanup() {
    if [ -n "$LOAD" ]; then
        # The loop held still, the build it runs stopped (cleanly, on SIGTERM), then
        # the loop itself.
        kill -STOP "$LOAD" 2>/dev/null || true
        pkill -TERM -P "$LOAD" 2>/dev/null || true
        kill -TERM "$LOAD" 2>/dev/null || true
        kill -CONT "$LOAD" 2>/dev/null || true
        wait "$LOAD" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
LADE="$HERE/target/release/lade"
LADE_ROOT="$WORK/store" "$HERE/scripts/busybox-image.sh" "$LADE" >/dev/null
mkdir -p "$WORK/context"
cp -r "$HERE/src" "$WORK/context/"
cat > "$WORK/context/Dockerfile" <<'EOF'
FROM busybox
RUN i=0; while [ $i -lt 3000 ]; do echo $i > /file$i; i=$((i+1)); done
COPY src /src
EOF
(
    while :; do
        LADE_ROOT="$WORK/store" "$LADE" build --no-cache --progress quiet "$WORK/context" >/dev/null 2>&1 || true
    done
) &
LOAD=$!

run=1
while [ "$run" -le "$RUNS" ]; do
    started=$(date +%s)
    if ! cargo test --all-targets -q >"$WORK/run$run.log" 2>&1; then
        grep -E "^(test .* FAILED|failures:|---- )" "$WORK/run$run.log" || tail -40 "$WORK/run$run.log"
        echo "soak: run $run of $RUNS FAILED (with a build running beside it)"
        exit 1
    fi
    echo "soak: run $run of $RUNS passed in $(( $(date +%s) - started )) s, a build running beside it"
    run=$((run + 1))
done
echo "soak: $RUNS runs in a row passed"
