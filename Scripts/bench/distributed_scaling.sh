#!/usr/bin/env bash
# Data-parallel scaling on this host: the real coordinator with spawned workers, 1 thread each
# (OPENBLAS_NUM_THREADS=1), 1 worker vs 2 workers, two ways:
#  - "per_worker": the issue's definition: the same per-worker batch (the config's micro-batch,
#    accumulation 1), so 2 workers do twice the work per step; ratio = tokens/s(2) / tokens/s(1).
#  - "global": the same global batch: 1 worker accumulates 2 micro-batches per step, 2 workers take
#    1 each, so both runs compute exactly the same micro-batches and the 1-worker run pays the
#    per-step costs (reduce, AdamW, broadcast) once per 2 micro-batches: a stricter ratio.
# Throughput is target tokens over WALL time from the end of step 5 to the end of step STEPS
# (metrics.jsonl `elapsed_seconds`, logged every step), so everything between steps counts. The
# per-step split (compute / reduce / AdamW / broadcast, `worker_seconds` per rank) and the bytes
# the coordinator moved are averages over the same steps.
# "machine": the same micro-batch shape as one process alone vs two independent processes at once
# (`transformer bench train`, no coordinator): what this host itself gives two busy cores, the
# ceiling for any data-parallel trainer here.
# The machine is a shared VM whose speed drifts by several percent within minutes, so everything
# is repeated REPEATS times, alternating, and each repetition's ratios are printed with the medians.
# Usage: Scripts/bench/distributed_scaling.sh [CONFIG] [STEPS] [REPEATS]   (default: small 20 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-small}; STEPS=${2:-20}; REPEATS=${3:-3}
# Ports from the process id (PORT_BASE overrides): two benchmarks at once must not collide.
PORT_BASE=${PORT_BASE:-$((20000 + $$ % 20000))}
[ -f "$CONFIG" ] || CONFIG="configs/$CONFIG.json"
[ -x .build/release/coordinator ] || swift build -c release
results=$(mktemp)
trap 'rm -f "$results"' EXIT

run() {  # mode workers accumulation repeat
  local dir; dir=$(mktemp -d)
  python3 - "$CONFIG" "$dir/config.json" "$3" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
t["accumulation_steps"] = int(sys.argv[3]); t["log_every"] = 1
t["validate_every"] = 100000; t["checkpoint_every"] = 100000
json.dump(c, open(sys.argv[2], "w"))
PY
  .build/release/coordinator --config "$dir/config.json" --workers "$2" --spawn-local --worker-threads 1 \
    --bind "tcp://127.0.0.1:$((PORT_BASE + $2))" --run-dir "$dir/run" --max-steps "$STEPS" > "$dir/log" 2>&1 \
    || { echo "coordinator with $2 worker(s) failed:" >&2; tail -n 5 "$dir/log" >&2; exit 1; }
  python3 - "$dir/run/metrics.jsonl" "$1" "$2" "$3" "$4" <<'PY' | tee -a "$results"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = next(r for r in rows if r["step"] == 5); rows = [r for r in rows if r["step"] > 5]
t = sum(r["tokens"] for r in rows); wall = rows[-1]["elapsed_seconds"] - first["elapsed_seconds"]
avg = lambda k: round(sum(r[k] for r in rows) / len(rows), 4)
workers = int(sys.argv[3])
print(json.dumps({"mode": sys.argv[2], "repeat": int(sys.argv[5]), "workers": workers,
      "micro_batches_per_worker": int(sys.argv[4]), "tokens_per_second": round(t / wall, 1),
      "steps_measured": len(rows), "step_seconds": round(wall / len(rows), 4),
      "compute_seconds": avg("compute_seconds"), "reduce_seconds": avg("reduce_seconds"),
      "apply_seconds": avg("apply_seconds"), "broadcast_seconds": avg("broadcast_seconds"),
      "worker_seconds": {k: round(sum(r["worker_seconds"].get(k, 0) for r in rows) / len(rows), 4)
                         for k in sorted(rows[-1]["worker_seconds"])},
      "bytes_received_per_step": avg("bytes_received"), "bytes_sent_per_step": avg("bytes_sent")}))
PY
  rm -rf "$dir"
}

machine() {  # repeat: one bench process alone, then two at once (the copy task's typical batch shape)
  local args="bench train --config $CONFIG --threads 1 --batch 128 --src-len 31 --tgt-len 31 --steps 5 --warmup 1 --no-gemm-peak"
  local tps='import json,sys; print(json.load(sys.stdin)["tokens_per_second"])'
  local alone a b
  alone=$(OPENBLAS_NUM_THREADS=1 .build/release/transformer $args | python3 -c "$tps")
  a=$(mktemp); b=$(mktemp)
  OPENBLAS_NUM_THREADS=1 .build/release/transformer $args > "$a" & OPENBLAS_NUM_THREADS=1 .build/release/transformer $args > "$b"; wait
  python3 - "$1" "$alone" "$a" "$b" <<'PY' | tee -a "$results"
import json, sys
pair = [json.load(open(p))["tokens_per_second"] for p in sys.argv[3:5]]
print(json.dumps({"mode": "machine", "repeat": int(sys.argv[1]), "alone_tokens_per_second": round(float(sys.argv[2]), 1),
      "pair_tokens_per_second": [round(x, 1) for x in pair]}))
PY
  rm -f "$a" "$b"
}

for rep in $(seq 1 "$REPEATS"); do
  run per_worker 1 1 "$rep"; run per_worker 2 1 "$rep"
  run global 1 2 "$rep"; run global 2 1 "$rep"
  machine "$rep"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = {}
for mode in ["per_worker", "global"]:
    by = {(r["repeat"], r["workers"]): r["tokens_per_second"] for r in rows if r["mode"] == mode}
    ratios = [by[(k, 2)] / by[(k, 1)] for k in sorted({k for k, _ in by})]
    out[mode] = {"ratios": [round(x, 3) for x in ratios], "median_ratio": round(statistics.median(ratios), 3)}
m = [r for r in rows if r["mode"] == "machine"]
ratios = [sum(r["pair_tokens_per_second"]) / r["alone_tokens_per_second"] for r in m]
out["machine"] = {"ratios": [round(x, 3) for x in ratios], "median_ratio": round(statistics.median(ratios), 3)}
print(json.dumps(out))
PY
