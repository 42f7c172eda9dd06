#!/usr/bin/env bash
# Data-parallel scaling on this host with the real coordinator and spawned workers (1 thread each,
# OPENBLAS_NUM_THREADS=1). Both runs see the SAME micro-batches of the same size: 1 worker
# accumulating 2 micro-batches per step vs 2 workers with 1 each, so the ratio of tokens/s is the
# data-parallel speedup (same per-worker batch), not an artefact of different data.
# Reports target tokens/s over steps 6..STEPS from metrics.jsonl (logged every step), plus the
# per-step split (compute / reduce / AdamW / broadcast) and the bytes the coordinator moved.
# Usage: Scripts/bench/distributed_scaling.sh [CONFIG] [STEPS]   (default: small 25)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-small}; STEPS=${2:-25}
[ -f "$CONFIG" ] || CONFIG="configs/$CONFIG.json"
[ -x .build/release/coordinator ] || swift build -c release
for n in 1 2; do
  dir=$(mktemp -d)
  python3 - "$CONFIG" "$dir/config.json" "$n" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
t["accumulation_steps"] = 2 // int(sys.argv[3]); t["log_every"] = 1
t["validate_every"] = 100000; t["checkpoint_every"] = 100000
json.dump(c, open(sys.argv[2], "w"))
PY
  .build/release/coordinator --config "$dir/config.json" --workers "$n" --spawn-local --worker-threads 1 \
    --bind "tcp://127.0.0.1:$((5700 + n))" --run-dir "$dir/run" --max-steps "$STEPS" > "$dir/log" 2>&1
  python3 - "$dir/run/metrics.jsonl" "$n" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r["step"] > 5]
t = sum(r["tokens"] for r in rows)
s = sum(r["compute_seconds"] + r["reduce_seconds"] + r["apply_seconds"] + r["broadcast_seconds"] for r in rows)
avg = lambda k: sum(r[k] for r in rows) / len(rows)
print(json.dumps({"workers": int(sys.argv[2]), "micro_batches_per_worker": 2 // int(sys.argv[2]),
      "tokens_per_second": t / s, "steps_measured": len(rows), "compute_seconds": avg("compute_seconds"),
      "reduce_seconds": avg("reduce_seconds"), "apply_seconds": avg("apply_seconds"),
      "broadcast_seconds": avg("broadcast_seconds"), "bytes_received_per_step": avg("bytes_received"),
      "bytes_sent_per_step": avg("bytes_sent")}))
PY
  rm -rf "$dir"
done
