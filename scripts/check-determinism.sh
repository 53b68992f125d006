#!/usr/bin/env bash
# The sim's trace hash depends only on the scenario and the seed: the same in a debug
# and a release build (and in two processes). Runs every scenario with both binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin flowbench
cargo build --quiet --release --bin flowbench
status=0
for f in scenarios/*.toml; do
    for seed in 1 2; do
        d=$(target/debug/flowbench run "$f" --json --events 20000 --seed "$seed" | sed -n 's/.*"trace_hash":"\([0-9a-f]*\)".*/\1/p')
        r=$(target/release/flowbench run "$f" --json --events 20000 --seed "$seed" | sed -n 's/.*"trace_hash":"\([0-9a-f]*\)".*/\1/p')
        if [ -z "$d" ] || [ "$d" != "$r" ]; then
            echo "MISMATCH $f seed $seed: debug '$d' release '$r'"
            status=1
        else
            echo "ok $f seed $seed: $d"
        fi
    done
done
exit $status
