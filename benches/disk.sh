#!/usr/bin/env bash
# Benchmarks target/release/nsqd's diskqueue path with nsq_bench. Each case gets a fresh nsqd (and data dir),
# so its VmHWM is the peak of that case alone:
#   drain0     --mem-queue-size=0: writer publishes $COUNT messages (the topic has no channel yet, so they
#              all land in the topic's diskqueue), then the reader drains them (topic diskqueue -> channel
#              diskqueue -> client).
#   steady0    --mem-queue-size=0: reader and writer start together and run for $RUNFOR, so every message
#              goes through disk while it is also being consumed.
#   backlog    nsqd's default --mem-queue-size (10000): writer publishes $COUNT messages, 10,000 stay in
#              memory and the rest spill to disk; then the reader drains them all.
# For the write-then-drain cases it also waits until the backlog is in the data files and reports nsqd's RSS
# at that point, the bytes on disk, and the RSS of the idle daemon before the case.
#
# Usage: benches/disk.sh [extra nsqd flags...]
# Environment: COUNT (1000000 messages), RUNFOR (10s, steady0), SIZE (200), BATCH_SIZE (200), PIPELINE (1, Go's
#   bench_writer), RDY (2500), WORKERS (cores), RUNS (1; repeats every case), CASES ("drain0 steady0 backlog"),
#   DRAIN_TIMEOUT (120s), NSQD (path to the daemon), BENCH (path to nsq_bench), SKIP_BUILD=1, RESULTS (JSON
#   lines file).
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${COUNT:-1000000}
RUNFOR=${RUNFOR:-10s}
SIZE=${SIZE:-200}
BATCH_SIZE=${BATCH_SIZE:-200}
PIPELINE=${PIPELINE:-1}
RDY=${RDY:-2500}
RUNS=${RUNS:-1}
CASES=${CASES:-drain0 steady0 backlog}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120s}
NSQD=${NSQD:-target/release/nsqd}
BENCH=${BENCH:-target/release/nsq_bench}
RESULTS=${RESULTS:-target/nsq-bench-disk.jsonl}
NSQD_LOG=target/nsq-bench-nsqd.log
# nsqd's default --mem-queue-size, which the backlog case keeps.
DEFAULT_MEM_QUEUE=10000
# A diskqueue record is a 4-byte length, the 26-byte message header and the body.
RECORD_BYTES=$((4 + 26 + SIZE))

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p nsqd -p nsq-bench
fi

# shellcheck source=benches/common.sh
source benches/common.sh
trap stop_nsqd EXIT

workers=()
if [[ -n ${WORKERS:-} ]]; then workers=(--workers "$WORKERS"); fi
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
ROWS=()

# Bytes in the diskqueue data files of the running nsqd.
disk_bytes() {
    find "$DATA_DIR" -name '*.diskqueue.*.dat' ! -name '*.meta.dat' -printf '%s\n' 2>/dev/null |
        awk '{ s += $1 } END { print s + 0 }'
}

# Waits (up to 30 s) until at least $1 bytes are in data files, then settles for a second.
wait_on_disk() {
    for _ in $(seq 1 300); do
        if (($(disk_bytes) >= $1)); then
            sleep 1
            return 0
        fi
        sleep 0.1
    done
    echo "warning: only $(disk_bytes) of the $1 bytes expected are on disk after 30 s" >&2
}

writer() {
    "$BENCH" writer --nsqd-tcp-address "$ADDR" --size "$SIZE" --mem-pid "$NSQD_PID" --json "${workers[@]}" \
        --batch-size "$BATCH_SIZE" --pipeline "$PIPELINE" "$@"
}

reader() {
    "$BENCH" reader --nsqd-tcp-address "$ADDR" --size "$SIZE" --mem-pid "$NSQD_PID" --json "${workers[@]}" \
        --rdy "$RDY" "$@"
}

# Records one case: name, run, writer JSON, reader JSON, idle RSS, backlog RSS and disk bytes ("" if n/a).
record() {
    local name=$1 run=$2 w=$3 r=$4 idle=$5 backlog=$6 disk=$7 hwm
    hwm=$(proc_kb "$NSQD_PID" VmHWM)
    printf '{"case":"%s","run":%s,"idle_rss_kb":%s,"backlog_rss_kb":%s,"disk_bytes":%s,"vm_hwm_kb":%s,"writer":%s,"reader":%s}\n' \
        "$name" "$run" "${idle:-null}" "${backlog:-null}" "${disk:-null}" "${hwm:-null}" "$w" "$r" >>"$RESULTS"
    local backlog_mib=- disk_mib=-
    if [[ -n $backlog ]]; then backlog_mib=$(mib "$backlog"); fi
    if [[ -n $disk ]]; then disk_mib=$(mib $((disk / 1024))); fi
    ROWS+=("$(printf '%-8s %3s %11.0f %11.0f %9s/%-9s %6s %8s %7s %8s' "$name" "$run" \
        "$(field "$w" ops_per_s)" "$(field "$r" ops_per_s)" "$(field "$w" msgs)" "$(field "$r" msgs)" \
        "$(mib "$idle")" "$backlog_mib" "$(mib "${hwm:-0}")" "$disk_mib")")
}

# Writes $COUNT messages, measures the backlog at rest, drains it. $1: case name, $2: run, $3: messages that
# stay in memory, rest: nsqd flags.
write_then_drain() {
    local name=$1 run=$2 in_memory=$3 idle w r backlog disk
    shift 3
    start_nsqd "$@"
    idle=$(proc_kb "$NSQD_PID" VmRSS)
    echo "[$name #$run] writer: $COUNT msgs, pipeline $PIPELINE"
    w=$(writer --count "$COUNT" --runfor 10m)
    wait_on_disk $(((COUNT - in_memory) * RECORD_BYTES))
    backlog=$(proc_kb "$NSQD_PID" VmRSS)
    disk=$(disk_bytes)
    echo "[$name #$run] backlog at rest: RSS $(mib "$backlog") MiB, $(mib $((disk / 1024))) MiB on disk; reader"
    r=$(reader --count "$(field "$w" msgs)" --runfor "$DRAIN_TIMEOUT")
    record "$name" "$run" "$w" "$r" "$idle" "$backlog" "$disk"
    stop_nsqd
}

# Reader and writer at once for $RUNFOR, started together with --deadline. $1: run, rest: nsqd flags.
steady() {
    local run=$1 idle deadline w r
    shift
    start_nsqd "$@"
    idle=$(proc_kb "$NSQD_PID" VmRSS)
    # Both tools connect, then start on the same whole second, at least two seconds from now.
    deadline=$(date -u -d "@$(($(date +%s) + 3))" '+%Y-%m-%d %H:%M:%S')
    echo "[steady0 #$run] reader and writer together for $RUNFOR from $deadline UTC"
    reader --runfor "$RUNFOR" --deadline "$deadline" >"$DATA_DIR/reader.json" &
    local reader_pid=$!
    w=$(writer --runfor "$RUNFOR" --deadline "$deadline")
    wait "$reader_pid"
    r=$(cat "$DATA_DIR/reader.json")
    record steady0 "$run" "$w" "$r" "$idle" "" ""
    stop_nsqd
}

for run in $(seq 1 "$RUNS"); do
    for c in $CASES; do
        case $c in
        drain0) write_then_drain drain0 "$run" 0 --mem-queue-size=0 "$@" ;;
        steady0) steady "$run" --mem-queue-size=0 "$@" ;;
        backlog) write_then_drain backlog "$run" "$DEFAULT_MEM_QUEUE" "$@" ;;
        *)
            echo "unknown case $c (drain0, steady0, backlog)" >&2
            exit 2
            ;;
        esac
    done
done

echo
echo "== disk results ($NSQD $*; $COUNT x ${SIZE}B for drain0/backlog, $RUNFOR for steady0, pipeline $PIPELINE, RDY $RDY) =="
printf '%-8s %3s %11s %11s %19s %6s %8s %7s %8s\n' case run 'PUB msgs/s' 'SUB msgs/s' 'msgs in/out' \
    idle backlog VmHWM 'on disk'
printf '%s\n' "${ROWS[@]}"
echo "(memory and disk in MiB: idle = nsqd RSS before the case, backlog = RSS with the backlog written,"
echo " VmHWM = nsqd's peak RSS over the case.) JSON lines: $RESULTS"
