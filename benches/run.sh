#!/usr/bin/env bash
# Benchmarks target/release/nsqd with nsq_bench, the way NSQ's Go figures were taken:
#   1. build both binaries in release mode;
#   2. start nsqd on free 127.0.0.1 ports with a temporary data dir and --mem-queue-size=1000000;
#   3. writer for $RUNFOR, then reader until it has drained that backlog (or $RUNFOR passed),
#      then the latency run (RDY 1 and RDY 2500);
#   4. print msgs/s, MB/s and nsqd's peak RSS, and stop nsqd.
#
# Usage: benches/run.sh [extra nsqd flags...]
# Environment: RUNFOR (10s), LATENCY_RUNFOR (5s per RDY), RATE (1000), SIZE (200),
#   BATCH_SIZE (200), PIPELINE (8), WORKERS (cores), NSQD (path to the daemon, for example a Go
#   nsqd to compare with), SKIP_BUILD=1 (use the binaries as built), RESULTS (JSON lines file).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNFOR=${RUNFOR:-10s}
LATENCY_RUNFOR=${LATENCY_RUNFOR:-5s}
RATE=${RATE:-1000}
SIZE=${SIZE:-200}
BATCH_SIZE=${BATCH_SIZE:-200}
PIPELINE=${PIPELINE:-8}
NSQD=${NSQD:-target/release/nsqd}
BENCH=target/release/nsq_bench
RESULTS=${RESULTS:-target/nsq-bench-results.jsonl}
NSQD_LOG=target/nsq-bench-nsqd.log

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p nsqd -p nsq-bench
fi

# Prints a TCP port on 127.0.0.1 that nothing accepts on (a connect attempt is refused).
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# Reads one numeric field from a one-line JSON object (keys are unique in our output).
field() {
    sed -n "s/.*\"$2\":\([0-9.eE+-]*\).*/\1/p" <<<"$1"
}

TCP_PORT=$(free_port)
HTTP_PORT=$(free_port)
while [[ $HTTP_PORT == "$TCP_PORT" ]]; do HTTP_PORT=$(free_port); done
ADDR=127.0.0.1:$TCP_PORT
DATA_DIR=$(mktemp -d -t nsq-bench.XXXXXX)
NSQD_PID=

cleanup() {
    if [[ -n $NSQD_PID ]] && kill -0 "$NSQD_PID" 2>/dev/null; then
        kill -TERM "$NSQD_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$NSQD_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$NSQD_PID" 2>/dev/null; then
            echo "nsqd did not exit within 10s of SIGTERM; killing it" >&2
            kill -KILL "$NSQD_PID" 2>/dev/null || true
        fi
        wait "$NSQD_PID" 2>/dev/null || true
    fi
    cp "$DATA_DIR/nsqd.log" "$NSQD_LOG" 2>/dev/null || true
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

echo "starting $NSQD on $ADDR (http 127.0.0.1:$HTTP_PORT), data dir $DATA_DIR"
"$NSQD" --data-path="$DATA_DIR" --tcp-address="$ADDR" --http-address="127.0.0.1:$HTTP_PORT" \
    --mem-queue-size=1000000 "$@" >"$DATA_DIR/nsqd.log" 2>&1 &
NSQD_PID=$!

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$TCP_PORT") 2>/dev/null; then break; fi
    if ! kill -0 "$NSQD_PID" 2>/dev/null; then
        echo "nsqd exited during startup:" >&2
        cat "$DATA_DIR/nsqd.log" >&2
        NSQD_PID=
        exit 1
    fi
    sleep 0.1
done

common=(--nsqd-tcp-address "$ADDR" --size "$SIZE" --mem-pid "$NSQD_PID" --json)
workers=()
if [[ -n ${WORKERS:-} ]]; then workers=(--workers "$WORKERS"); fi

echo "writer: $RUNFOR, MPUB batches of $BATCH_SIZE x ${SIZE}B, pipeline $PIPELINE"
W=$("$BENCH" writer "${common[@]}" "${workers[@]}" --runfor "$RUNFOR" \
    --batch-size "$BATCH_SIZE" --pipeline "$PIPELINE")
WRITTEN=$(field "$W" msgs)

echo "reader: up to $RUNFOR, RDY 2500, draining $WRITTEN messages"
R=$("$BENCH" reader "${common[@]}" "${workers[@]}" --runfor "$RUNFOR" --rdy 2500 --count "$WRITTEN")

echo "latency: $LATENCY_RUNFOR per RDY at $RATE msgs/s"
L=$("$BENCH" latency "${common[@]}" --runfor "$LATENCY_RUNFOR" --rate "$RATE" --rdy 1,2500)

mkdir -p "$(dirname "$RESULTS")"
printf '%s\n%s\n%s\n' "$W" "$R" "$L" >"$RESULTS"

mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
echo
echo "== results ($NSQD, mem-queue-size=1000000 $*) =="
printf '%-4s %11.1f msgs/s %7.1f MB/s %10s msgs in %6.2fs   nsqd peak RSS %s MiB\n' \
    PUB "$(field "$W" ops_per_s)" "$(field "$W" mb_per_s)" "$WRITTEN" \
    "$(field "$W" duration_s)" "$(mib "$(field "$W" peak_rss_kb)")"
printf '%-4s %11.1f msgs/s %7.1f MB/s %10s msgs in %6.2fs   nsqd peak RSS %s MiB\n' \
    SUB "$(field "$R" ops_per_s)" "$(field "$R" mb_per_s)" "$(field "$R" msgs)" \
    "$(field "$R" duration_s)" "$(mib "$(field "$R" peak_rss_kb)")"
# The latency object holds one entry per RDY; split it so each line has unique keys.
sed 's/},{/}\n{/g' <<<"$L" | while read -r entry; do
    printf 'latency rdy=%-5s p50 %8.1fus  p99 %8.1fus  p999 %8.1fus  max %8.1fus  (%s/%s msgs)\n' \
        "$(field "$entry" rdy)" "$(field "$entry" p50_us)" "$(field "$entry" p99_us)" \
        "$(field "$entry" p999_us)" "$(field "$entry" max_us)" \
        "$(field "$entry" received)" "$(field "$entry" published)"
done
if [[ -r /proc/$NSQD_PID/status ]]; then
    HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$NSQD_PID/status")
    echo "nsqd VmHWM over the whole run: $(mib "$HWM") MiB"
fi
echo "JSON lines: $RESULTS; nsqd's log is copied to $NSQD_LOG when it stops"
