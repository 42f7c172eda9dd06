#!/usr/bin/env bash
# Side by side, same machine: our coordinator with 2 workers x 1 thread (spawned processes, and
# in-process workers: the laptop mode `--single-process --workers 2 --threads 2`) vs PyTorch DDP (gloo,
# 2 ranks x 1 thread), on fixed shapes: 32 pairs per rank (global 64) of 32 source tokens; every
# step is a full step (forward, backward, all-reduce, AdamW, weights back to the workers).
# Ours trains the copy task with every length fixed at 32 (copy_min_len = copy_max_len = 32), so a
# micro-batch is exactly 32 pairs of 32 source tokens and 33 decoder positions (BOS + 32; the
# 33 labels are the 32 tokens + EOS). PyTorch runs 32 decoder positions; both figures are decoder
# positions (target tokens) per second of wall time, so the extra position costs us, not them.
# Usage: PYTHON=/path/to/venv/bin/python Scripts/bench/ddp_compare.sh [CONFIG] [STEPS]  (default: small 30)
# PYTORCH=0 runs ours only (where no torch is installed). STEPS must be at least 7 (steps 1-5 warm up).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-small}; STEPS=${2:-30}; PYTHON=${PYTHON:-python3}
[ -f "$CONFIG" ] || CONFIG="configs/$CONFIG.json"
[ -x .build/release/coordinator ] || swift build -c release
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
python3 - "$CONFIG" "$dir/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
c["model"]["max_len"] = max(c["model"]["max_len"], 64)
t.update({"batch_tokens": 33 * 32, "accumulation_steps": 1, "log_every": 1,
          "validate_every": 100000, "checkpoint_every": 100000})
c["data"] = {"task": "copy", "copy_max_len": 32, "copy_min_len": 32}
json.dump(c, open(sys.argv[2], "w"))
PY
# Ours two ways: 2 spawned worker processes x 1 thread over tcp:// on loopback, and the laptop
# mode, one process with 2 in-process workers (inproc://) splitting its 2 threads.
ours() { # MODE RUN_DIR coordinator-arguments...
  local mode=$1 run=$2; shift 2
  .build/release/coordinator --config "$dir/config.json" --workers 2 --run-dir "$run" --max-steps "$STEPS" "$@" \
    > "$run.log" 2>&1 || { echo "ddp_compare: ours ($mode) failed; its log:" >&2; cat "$run.log" >&2; exit 1; }
  python3 - "$run/metrics.jsonl" "$mode" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = next(r for r in rows if r["step"] == 5); measured = [r for r in rows if r["step"] > 5]
tokens = sum(r["tokens"] for r in measured); wall = measured[-1]["elapsed_seconds"] - first["elapsed_seconds"]
avg = lambda k: sum(r.get(k, 0) for r in measured) / len(measured)
print(json.dumps({"impl": "ours", "mode": sys.argv[2], "workers": 2, "threads_each": 1, "pairs_per_rank": 32,
      "tokens_per_second": tokens / wall, "steps_measured": len(measured), "compute_seconds": avg("compute_seconds"),
      "reduce_seconds": avg("reduce_seconds"), "apply_seconds": avg("apply_seconds"),
      "broadcast_seconds": avg("broadcast_seconds"), "bytes_received_per_step": avg("bytes_received"),
      "bytes_sent_per_step": avg("bytes_sent")}))
PY
}
ours spawned "$dir/spawned" --spawn-local --worker-threads 1 \
  --bind "tcp://127.0.0.1:${PORT:-$((40000 + $$ % 20000))}"
ours in-process "$dir/in-process" --single-process --threads 2
[ "${PYTORCH:-1}" = 0 ] || "$PYTHON" Scripts/bench/pytorch_train_bench.py --config "$CONFIG" --ddp --ranks 2 --threads 1 \
  --batch 32 --src-len 32 --tgt-len 32 --steps "$((STEPS - 5))" --warmup 5
