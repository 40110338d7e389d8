#!/usr/bin/env bash
# Benchmarks target/release/nsqd with nsq_bench, the way NSQ's Go figures were taken:
#   1. build both binaries in release mode;
#   2. start nsqd on free 127.0.0.1 ports with a temporary data dir and --mem-queue-size=1000000;
#   3. writer for $RUNFOR (or until $WRITE_COUNT messages), then reader until it has drained that
#      backlog (or $RUNFOR passed), then the latency run (RDY 1 and RDY 2500) unless SKIP_LATENCY;
#   4. print msgs/s, MB/s and nsqd's peak RSS, and stop nsqd.
#
# Usage: benches/run.sh [extra nsqd flags...]
# Environment: RUNFOR (10s), LATENCY_RUNFOR (5s per RDY), RATE (1000), SIZE (200),
#   BATCH_SIZE (200), PIPELINE (8), WORKERS (cores), NSQD (path to the daemon, for example a Go
#   nsqd to compare with), SKIP_BUILD=1 (use the binaries as built), RESULTS (JSON lines file),
#   MEM_QUEUE_SIZE (1000000; 0 sends every message through the diskqueue), WRITE_COUNT (stop the
#   writer after this many messages instead of at $RUNFOR), SKIP_LATENCY=1 (no latency run),
#   TLS=1 (every connection upgrades to TLS; nsqd gets tests/certs/server.{pem,key}),
#   COMPRESSION=snappy|deflate (every connection compresses, after TLS when both are on),
#   DEFLATE_LEVEL (6, with COMPRESSION=deflate), READ_RUNFOR ($RUNFOR: the longest the reader
#   may take to drain; it stops as soon as it has, so a longer limit does not dilute its figure).
# benches/disk.sh runs the disk cases (--mem-queue-size=0 and a spilled backlog) on top of this.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNFOR=${RUNFOR:-10s}
READ_RUNFOR=${READ_RUNFOR:-$RUNFOR}
LATENCY_RUNFOR=${LATENCY_RUNFOR:-5s}
RATE=${RATE:-1000}
SIZE=${SIZE:-200}
BATCH_SIZE=${BATCH_SIZE:-200}
PIPELINE=${PIPELINE:-8}
NSQD=${NSQD:-target/release/nsqd}
BENCH=target/release/nsq_bench
RESULTS=${RESULTS:-target/nsq-bench-results.jsonl}
NSQD_LOG=target/nsq-bench-nsqd.log
MEM_QUEUE_SIZE=${MEM_QUEUE_SIZE:-1000000}

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p nsqd -p nsq-bench
fi

# shellcheck source=benches/common.sh
source benches/common.sh
trap stop_nsqd EXIT

features=()
nsqd_tls=()
if [[ -n ${TLS:-} && ${TLS} != 0 ]]; then
    features+=(--tls)
    nsqd_tls=(--tls-cert=tests/certs/server.pem --tls-key=tests/certs/server.key)
fi
case ${COMPRESSION:-} in
"") ;;
snappy) features+=(--snappy) ;;
deflate) features+=(--deflate --deflate-level "${DEFLATE_LEVEL:-6}") ;;
*)
    echo "COMPRESSION must be snappy or deflate, not '$COMPRESSION'" >&2
    exit 1
    ;;
esac
TRANSPORT=plain
if ((${#features[@]})); then TRANSPORT="${features[*]}"; fi

start_nsqd --mem-queue-size="$MEM_QUEUE_SIZE" "${nsqd_tls[@]}" "$@"

common=(--nsqd-tcp-address "$ADDR" --size "$SIZE" --mem-pid "$NSQD_PID" --json "${features[@]}")
workers=()
if [[ -n ${WORKERS:-} ]]; then workers=(--workers "$WORKERS"); fi

count=()
if [[ -n ${WRITE_COUNT:-} ]]; then count=(--count "$WRITE_COUNT"); fi

echo "writer: $RUNFOR${WRITE_COUNT:+ or $WRITE_COUNT msgs}, MPUB batches of $BATCH_SIZE x ${SIZE}B, pipeline $PIPELINE, transport: $TRANSPORT"
W=$("$BENCH" writer "${common[@]}" "${workers[@]}" "${count[@]}" --runfor "$RUNFOR" \
    --batch-size "$BATCH_SIZE" --pipeline "$PIPELINE")
WRITTEN=$(field "$W" msgs)

echo "reader: up to $READ_RUNFOR, RDY 2500, draining $WRITTEN messages"
R=$("$BENCH" reader "${common[@]}" "${workers[@]}" --runfor "$READ_RUNFOR" --rdy 2500 --count "$WRITTEN")

L=
if [[ -z ${SKIP_LATENCY:-} ]]; then
    echo "latency: $LATENCY_RUNFOR per RDY at $RATE msgs/s"
    L=$("$BENCH" latency "${common[@]}" --runfor "$LATENCY_RUNFOR" --rate "$RATE" --rdy 1,2500)
fi

mkdir -p "$(dirname "$RESULTS")"
printf '%s\n' "$W" "$R" ${L:+"$L"} >"$RESULTS"

echo
echo "== results ($NSQD, mem-queue-size=$MEM_QUEUE_SIZE $*, transport: $TRANSPORT) =="
printf '%-4s %11.1f msgs/s %7.1f MB/s %10s msgs in %6.2fs   nsqd peak RSS %s MiB\n' \
    PUB "$(field "$W" ops_per_s)" "$(field "$W" mb_per_s)" "$WRITTEN" \
    "$(field "$W" duration_s)" "$(mib "$(field "$W" peak_rss_kb)")"
printf '%-4s %11.1f msgs/s %7.1f MB/s %10s msgs in %6.2fs   nsqd peak RSS %s MiB\n' \
    SUB "$(field "$R" ops_per_s)" "$(field "$R" mb_per_s)" "$(field "$R" msgs)" \
    "$(field "$R" duration_s)" "$(mib "$(field "$R" peak_rss_kb)")"
# The latency object holds one entry per RDY; split it so each line has unique keys.
if [[ -n $L ]]; then
    sed 's/},{/}\n{/g' <<<"$L" | while read -r entry; do
        printf 'latency rdy=%-5s p50 %8.1fus  p99 %8.1fus  p999 %8.1fus  max %8.1fus  (%s/%s msgs)\n' \
            "$(field "$entry" rdy)" "$(field "$entry" p50_us)" "$(field "$entry" p99_us)" \
            "$(field "$entry" p999_us)" "$(field "$entry" max_us)" \
            "$(field "$entry" received)" "$(field "$entry" published)"
    done
fi
HWM=$(proc_kb "$NSQD_PID" VmHWM)
if [[ -n $HWM ]]; then
    echo "nsqd VmHWM over the whole run: $(mib "$HWM") MiB"
fi
echo "JSON lines: $RESULTS; nsqd's log is copied to $NSQD_LOG when it stops"
