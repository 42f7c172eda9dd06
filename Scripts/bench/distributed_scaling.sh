#!/usr/bin/env bash
# Data-parallel scaling on this host: the real coordinator with N spawned workers x 1 thread, same
# per-worker batch (config's batch_tokens), reporting target tokens/s over steps 6..STEPS (after
# warm-up) from metrics.jsonl, plus the per-step time split and bytes moved.
# Usage: Scripts/bench/distributed_scaling.sh [CONFIG] [STEPS]   (default: small 16)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-small}; STEPS=${2:-16}
[ -x .build/release/coordinator ] || swift build -c release
for n in 1 2; do
  dir=$(mktemp -d)
  .build/release/coordinator --config "$CONFIG" --workers "$n" --spawn-local --worker-threads 1 \
    --bind "tcp://127.0.0.1:$((5700 + n))" --run-dir "$dir" --max-steps "$STEPS" > "$dir/log" 2>&1
  python3 - "$dir/metrics.jsonl" "$n" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r["step"] > 5]
t = sum(r["tokens"] for r in rows); s = sum(r["compute_seconds"] + r["reduce_seconds"] + r["apply_seconds"] + r["broadcast_seconds"] for r in rows)
avg = lambda k: sum(r[k] for r in rows) / len(rows)
print(json.dumps({"workers": int(sys.argv[2]), "tokens_per_second": t / s, "steps_measured": len(rows),
      "compute_seconds": avg("compute_seconds"), "reduce_seconds": avg("reduce_seconds"), "apply_seconds": avg("apply_seconds"),
      "broadcast_seconds": avg("broadcast_seconds"), "bytes_received_per_step": avg("bytes_received"), "bytes_sent_per_step": avg("bytes_sent")}))
PY
  rm -rf "$dir"
done
