#!/usr/bin/env bash
# Start and stop TensorBoard (the workspace's .venv) on loopback, for tests and by hand.
#
#   scripts/tensorboard.sh start LOGDIR STATE_DIR   # prints url=http://127.0.0.1:PORT/ and pid=PID
#   scripts/tensorboard.sh stop STATE_DIR           # stops it by its recorded pid (idempotent)
#
# `start` asks the kernel for a free port on 127.0.0.1, starts .venv/bin/tensorboard (or
# $VGRAD_TENSORBOARD) on it with LOGDIR, its output in STATE_DIR/tensorboard.log and its pid
# in STATE_DIR/pid, and waits until it answers HTTP (at most $VGRAD_TB_TIMEOUT seconds,
# 60 by default). It listens on loopback only: nothing outside this machine reaches it.
# `stop` sends TERM to the recorded pid, then KILL after 5 s, never to a process by name,
# and only if that pid is still a tensorboard: another TensorBoard is left alone.
#
# `cargo xtask test` creates .venv with TensorBoard (`python3 -m venv .venv &&
# .venv/bin/pip install tensorboard` does too).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
TENSORBOARD="${VGRAD_TENSORBOARD:-.venv/bin/tensorboard}"
TIMEOUT="${VGRAD_TB_TIMEOUT:-60}"

log() { echo "tensorboard.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Whether pid $1 is a live tensorboard process (the one this script started).
is_tensorboard() {
    local pid=$1
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q tensorboard
}

start() {
    local logdir=$1 state=$2 port pid url
    [ -x "$TENSORBOARD" ] || die "$TENSORBOARD not found: run \`cargo xtask test\` once, or pip install tensorboard into .venv"
    [ -d "$logdir" ] || die "$logdir: no such folder"
    mkdir -p "$state"
    # The kernel's choice of a free port; the moment between closing it and TensorBoard
    # binding it is the only race, and a taken port fails the start below, loudly.
    port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url="http://127.0.0.1:$port/"
    # setsid: its own session, so that a test's Ctrl-C does not reach it twice and
    # `stop` can end it alone.
    setsid "$TENSORBOARD" --logdir "$logdir" --host 127.0.0.1 --port "$port" \
        >"$state/tensorboard.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$state/pid"
    echo "$port" >"$state/port"
    local waited=0
    until "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$state/tensorboard.log" >&2 || true
            die "TensorBoard exited before it answered on $url"
        fi
        if [ "$waited" -ge "$((TIMEOUT * 5))" ]; then
            tail -20 "$state/tensorboard.log" >&2 || true
            stop "$state"
            die "TensorBoard did not answer on $url within $TIMEOUT s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "url=$url"
    echo "pid=$pid"
}

stop() {
    local state=$1 pid i
    [ -f "$state/pid" ] || return 0
    pid=$(cat "$state/pid")
    if is_tensorboard "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            is_tensorboard "$pid" || break
            sleep 0.1
        done
        if is_tensorboard "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$state/pid"
}

case "${1:-}" in
start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
