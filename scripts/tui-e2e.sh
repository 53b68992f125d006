#!/usr/bin/env bash
# End to end: the real `flowbench tui` in a tmux pane. Sends keys, reads the screen, and
# checks that quitting (q, Ctrl-C) leaves the terminal as it was (same `stty -a`).
# Installs tmux when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null; then
    echo "tui-e2e: installing tmux"
    if command -v apt-get >/dev/null; then
        (apt-get install -y -qq tmux || sudo apt-get install -y -qq tmux) >/dev/null
    elif command -v brew >/dev/null; then
        brew install tmux
    else
        echo "tui-e2e: tmux is missing and no package manager is known here" >&2
        exit 1
    fi
fi

cargo build --quiet --bin flowbench
bin="$PWD/target/debug/flowbench"
dir=$(mktemp -d)
# A tmux server of its own per view (a fresh socket each time: no race with the last
# one shutting down).
runs=0
sock="flowbench-e2e-$$-0"
tm() { tmux -L "$sock" "$@"; }
cleanup() {
    for i in $(seq 0 "$runs"); do tmux -L "flowbench-e2e-$$-$i" kill-server 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

screen() { tm capture-pane -p -t e2e; }

# Waits (up to 20 s) until the screen shows $1; fails with the screen otherwise.
wait_for() {
    for _ in $(seq 200); do
        if screen | grep -qF -- "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "tui-e2e: FAILED waiting for: $1" >&2
    screen >&2
    exit 1
}

# Waits until the screen no longer shows $1.
wait_gone() {
    for _ in $(seq 200); do
        if ! screen | grep -qF -- "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "tui-e2e: FAILED waiting for this to go: $1" >&2
    screen >&2
    exit 1
}

# Starts `flowbench tui ARGS` in a fresh 100x30 pane, recording stty before and after.
start() {
    tm kill-server 2>/dev/null || true
    runs=$((runs + 1))
    sock="flowbench-e2e-$$-$runs"
    rm -f "$dir/before" "$dir/after" "$dir/exit"
    tm new-session -d -s e2e -x 100 -y 30 \
        "bash --norc --noprofile -c 'stty -a > $dir/before; $bin tui $*; echo exit=\$? > $dir/exit; stty -a > $dir/after; exec sleep 600'"
}

# Waits for the run to end and checks its exit code and the terminal's settings.
finished() {
    for _ in $(seq 200); do
        [ -s "$dir/after" ] && break
        sleep 0.1
    done
    [ -s "$dir/after" ] || { echo "tui-e2e: FAILED: the view did not quit" >&2; screen >&2; exit 1; }
    grep -qx "exit=$1" "$dir/exit" || { echo "tui-e2e: FAILED: $(cat "$dir/exit"), want exit=$1" >&2; exit 1; }
    if ! diff "$dir/before" "$dir/after" >/dev/null; then
        echo "tui-e2e: FAILED: the terminal was not restored:" >&2
        diff "$dir/before" "$dir/after" >&2 || true
        exit 1
    fi
}

echo "== a lesson: its text, a demand change, pause, step, help, q"
start --lesson 2
wait_for "lesson 2: What max_demand and min_demand do"
tm send-keys -t e2e l
wait_gone "lesson 2: What max_demand"
wait_for "dem "
tm send-keys -t e2e '>'
wait_for "source -> sink: max_demand 20, min_demand 10"
tm send-keys -t e2e Space
wait_for "paused"
tm send-keys -t e2e n
tm send-keys -t e2e '?'
wait_for "Keys"
tm send-keys -t e2e Escape
wait_gone "Keys"
tm send-keys -t e2e q
finished 0
wait_for "flowbench tui: left lesson-2-max-min-demand"
wait_for "(1 change)"

echo "== the menu, then Ctrl-C"
start
wait_for "Pick a lesson"
tm send-keys -t e2e 3
wait_for "lesson 3: The three dispatchers"
tm send-keys -t e2e l
wait_for "b-slow"
tm send-keys -t e2e C-c
finished 0

echo "== a replay: seek and rewind"
"$bin" run tui/lessons/2-max-min-demand.toml --trace "$dir/t.jsonl" >/dev/null
start --replay "$dir/t.jsonl" tui/lessons/2-max-min-demand.toml
wait_for "replay"
tm send-keys -t e2e Space
wait_for "paused"
tm send-keys -t e2e End
wait_for "end of the trace"
tm send-keys -t e2e 0
wait_for "record 0/"
tm send-keys -t e2e '>'
wait_gone "record 0/"
tm send-keys -t e2e q
finished 0

echo "== the default scenario on threads, q while it runs"
start scenarios/log-pipeline.toml --runtime threads --events 200000000
wait_for "threads"
tm send-keys -t e2e q
finished 0

echo "== no terminal: a clear error, exit 2"
set +e
"$bin" tui --lesson 1 </dev/null >"$dir/out" 2>&1
code=$?
set -e
if [ "$code" != 2 ] || ! grep -q "needs a terminal" "$dir/out"; then
    echo "tui-e2e: FAILED: exit $code: $(cat "$dir/out")" >&2
    exit 1
fi

echo "tui-e2e: ok"
