# shellcheck shell=bash
# Helpers shared by benches/run.sh and benches/disk.sh: starting and stopping one nsqd on free
# 127.0.0.1 ports with its own temporary data dir, reading its memory from /proc, and pulling
# numbers out of nsq_bench's one-line JSON. Sourced, never run on its own.

# Prints a TCP port on 127.0.0.1 that nothing accepts on (a connect attempt is refused). Ports come from
# 20000-32767, below Linux's default ephemeral range, so a client socket of an earlier run is unlikely to hold
# one; start_nsqd still retries if the bind fails.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12768))
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

# KiB to MiB with one decimal.
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# Prints one "NAME: <n> kB" value of /proc/PID/status in KiB (VmRSS, VmHWM), or nothing.
proc_kb() {
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || true
}

# Starts $NSQD with a fresh data dir on free ports; the arguments are extra nsqd flags.
# Sets NSQD_PID, ADDR (tcp host:port), HTTP_ADDR and DATA_DIR. Tries new ports when a bind fails
# ("address already in use": the port was taken between the check and the bind); exits if nsqd
# does not come up.
start_nsqd() {
    local attempt
    for attempt in 1 2 3 4 5; do
        if try_start_nsqd "$@"; then return 0; fi
        if ! grep -q "already in use" "$DATA_DIR/nsqd.log" 2>/dev/null || ((attempt == 5)); then
            echo "nsqd exited during startup:" >&2
            cat "$DATA_DIR/nsqd.log" >&2
            exit 1
        fi
        echo "port taken, retrying on other ports" >&2
        rm -rf "$DATA_DIR"
    done
}

# One start attempt: returns 0 once nsqd accepts connections, 1 if it exited during startup.
try_start_nsqd() {
    local tcp_port http_port
    tcp_port=$(free_port)
    http_port=$(free_port)
    while [[ $http_port == "$tcp_port" ]]; do http_port=$(free_port); done
    ADDR=127.0.0.1:$tcp_port
    HTTP_ADDR=127.0.0.1:$http_port
    DATA_DIR=$(mktemp -d -t nsq-bench.XXXXXX)
    echo "starting $NSQD $* on $ADDR (http $HTTP_ADDR), data dir $DATA_DIR"
    "$NSQD" --data-path="$DATA_DIR" --tcp-address="$ADDR" --http-address="$HTTP_ADDR" \
        "$@" >"$DATA_DIR/nsqd.log" 2>&1 &
    NSQD_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$NSQD_PID" 2>/dev/null; then
            wait "$NSQD_PID" 2>/dev/null || true
            NSQD_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "nsqd did not accept connections on $ADDR within 10s" >&2
    exit 1
}

# Stops the nsqd started by start_nsqd (SIGTERM, SIGKILL after 10 s), copies its log to
# $NSQD_LOG and removes its data dir. Safe to call twice.
stop_nsqd() {
    if [[ -n ${NSQD_PID:-} ]] && kill -0 "$NSQD_PID" 2>/dev/null; then
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
    NSQD_PID=
    if [[ -n ${DATA_DIR:-} ]]; then
        cp "$DATA_DIR/nsqd.log" "$NSQD_LOG" 2>/dev/null || true
        rm -rf "$DATA_DIR"
        DATA_DIR=
    fi
}
