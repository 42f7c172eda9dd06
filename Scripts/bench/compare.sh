#!/usr/bin/env bash
# Side-by-side training benchmark: ours (`transformer bench train`) and PyTorch's
# (Scripts/bench/pytorch_train_bench.py), alternating, on the same machine in one run, so that
# load from other users of a shared machine hits both alike.
#
# Usage: Scripts/bench/compare.sh CONFIG THREADS [extra options for both, e.g. --batch 32]
# Environment: ROUNDS (3), STEPS (5), WARMUP (2), PYTHON (/work/venv-ref/bin/python),
#              TRANSFORMER (.build/release/transformer; built with `swift build -c release
#              --product transformer` if missing).
# Prints every JSON line as it comes, then the median tokens/s of each side over the rounds.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 CONFIG THREADS [extra bench options]" >&2
    exit 2
fi
config=$1 threads=$2
shift 2

cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3} steps=${STEPS:-5} warmup=${WARMUP:-2}
python=${PYTHON:-/work/venv-ref/bin/python}
transformer=${TRANSFORMER:-.build/release/transformer}

if [[ ! -x $transformer ]]; then
    echo "building $transformer ..." >&2
    swift build -c release --product transformer
fi

common=(--config "$config" --threads "$threads" --steps "$steps" --warmup "$warmup" "$@")
ours=() theirs=()
for ((round = 1; round <= rounds; round++)); do
    line=$("$transformer" bench train "${common[@]}")
    echo "ours    $line"
    ours+=("$line")
    line=$("$python" Scripts/bench/pytorch_train_bench.py "${common[@]}")
    echo "pytorch $line"
    theirs+=("$line")
done

"$python" - "$config" "$threads" "${#ours[@]}" "${ours[@]}" "${theirs[@]}" <<'EOF'
import json, statistics, sys
config, threads, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [json.loads(s) for s in sys.argv[4:]]
ours = [r["tokens_per_second"] for r in lines[:n]]
theirs = [r["tokens_per_second"] for r in lines[n:]]
a, b = statistics.median(ours), statistics.median(theirs)
print(f"config {config}, {threads} thread(s), {n} rounds, target tokens/s (median of rounds):")
print(f"  ours    {a:10.1f}   {' '.join(f'{x:.1f}' for x in ours)}")
print(f"  pytorch {b:10.1f}   {' '.join(f'{x:.1f}' for x in theirs)}")
print(f"  ratio ours/pytorch {a / b:.3f}")
EOF
