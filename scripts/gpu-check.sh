#!/usr/bin/env bash
# One prepared check for a GPU machine that has the NVIDIA driver and the CUDA 13
# libraries but no Rust toolchain and no network. Build here first:
#
#   scripts/build-cuda.sh 90                       # target/cuda/release/vgrad
#   scripts/gpu-check.sh target/cuda/release/vgrad # there, from a copy of the workspace
#
# It runs the binary's GPU self-test (CUDA against the CPU on the first steps), the seed
# sweep (4 scenarios x 10 seeds, one ensemble process per scenario) on CUDA and on the CPU,
# and a larger network (width 256, 16 layers, batch 256) on both, and prints a markdown
# table of step times. OUT (default /tmp/vgrad-gpu-check) receives the runs and the table.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/cuda/release/vgrad}
out=${OUT:-/tmp/vgrad-gpu-check}
mkdir -p "$out"
export RUST_LOG=${RUST_LOG:-warn}

steps_per_s() { grep -o '"steps_per_s": [0-9.e+-]*' "$1/summary.json" | awk '{print $2}'; }
table=$out/table.md
{
    echo "| run | device | steps | wall s | steps/s | us per step (per member) |"
    echo "| --- | --- | --- | --- | --- | --- |"
} >"$table"
row() { # name device steps wall steps_per_s members
    awk -v n="$1" -v d="$2" -v s="$3" -v w="$4" -v r="$5" -v k="$6" \
        'BEGIN { printf "| %s | %s | %d | %.2f | %.0f | %.1f |\n", n, d, s, w, r, 1e6 / r / k }' >>"$table"
}

echo "== self-test: CUDA against the CPU" >&2
"$bin" selftest --device cuda | tee "$out/selftest.md"

for device in cuda cpu; do
    echo "== seed sweep on $device" >&2
    start=$(date +%s.%N)
    for activation in sigmoid relu leaky-relu:0.2 leaky-relu:0.01; do
        run=$out/seed-$device/$activation
        t0=$(date +%s.%N)
        "$bin" train --force --device "$device" --activation "$activation" --seeds 0-9 --out "$run"
        t1=$(date +%s.%N)
        row "seed sweep: $activation, 10 seeds" "$device" 2500 "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(steps_per_s "$run/seed-0")" 10
    done
    end=$(date +%s.%N)
    echo "seed sweep on $device (4 x 10 runs, sequential): $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s" >>"$out/sweep-times.txt"
done

for device in cuda cpu; do
    echo "== larger network on $device" >&2
    run=$out/large-$device
    start=$(date +%s.%N)
    "$bin" train --force --device "$device" --activation relu --width 256 --layers 16 --batch-size 256 \
        --steps 500 --log-every 100 --threads "$([ "$device" = cpu ] && nproc || echo 1)" --out "$run"
    end=$(date +%s.%N)
    row "width 256, 16 layers, batch 256" "$device" 500 "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$(steps_per_s "$run")" 1
done

echo >&2
cat "$table" "$out/sweep-times.txt"
