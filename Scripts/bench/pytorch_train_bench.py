#!/usr/bin/env python3
"""PyTorch side of the side-by-side training benchmark.

Mirrors `transformer bench train` (Sources/TransformerCLI/Bench.swift) step for step, so the two
numbers measure the same work:

  * the model of one of our config files (`configs/NAME.json`): `nn.Transformer(batch_first=True)`
    with `norm_first` from `model.norm`, the config's dropout, a shared embedding scaled by
    sqrt(D), sinusoidal (or learned) positions, and the output projection tied to the embedding
    (or a separate `generator` when `tie_embeddings` is false);
  * loss `F.cross_entropy(label_smoothing=..., ignore_index=0)`; AdamW with the config's betas, eps
    and weight decay (decay on parameters of rank >= 2 only), the Noam learning rate per step;
    `clip_grad_norm_(clip_norm)`;
  * one fixed random batch of `--batch` pairs, `--src-len` source and `--tgt-len` target tokens
    drawn from [4, vocab_size), no padding; causal mask on the decoder; the model in train() mode;
  * `--warmup` untimed steps, then `--steps` timed full steps (zero_grad, forward, loss, backward,
    clip, optimizer step); tokens_per_second = batch * tgt_len / median step seconds.

`--ddp` runs the same step under DistributedDataParallel: `--ranks` processes (default 2) on this
host, backend gloo over loopback (127.0.0.1), `--threads` compute threads each (default 1), and
`--batch` pairs *per rank*. The reported tokens_per_second is global:
ranks * batch * tgt_len / median step seconds (per step, the slowest rank's time).

Prints one JSON line. Usage (from the repository root):

    /work/venv-ref/bin/python Scripts/bench/pytorch_train_bench.py --config small --threads 2
    /work/venv-ref/bin/python Scripts/bench/pytorch_train_bench.py --config small --ddp --batch 32
"""

import argparse
import json
import math
import os
import resource
import socket
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config name (configs/NAME.json) or path")
    parser.add_argument("--threads", type=int, default=1, help="compute threads (per rank with --ddp)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    parser.add_argument("--batch", type=int, default=64, help="sentence pairs per batch (per rank with --ddp)")
    parser.add_argument("--src-len", type=int, default=32)
    parser.add_argument("--tgt-len", type=int, default=32)
    parser.add_argument("--ddp", action="store_true", help="DistributedDataParallel over gloo, loopback")
    parser.add_argument("--ranks", type=int, default=2, help="processes with --ddp")
    parser.add_argument("--adamw", choices=["default", "foreach", "fused"], default="default",
                        help="AdamW implementation (default: PyTorch's own choice for CPU tensors)")
    args = parser.parse_args(argv)
    for name in ("threads", "steps", "batch", "src_len", "tgt_len", "ranks"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def load_config(name_or_path):
    """Same lookup as RunConfig.load(nameOrPath:): a bare name means configs/NAME.json."""
    candidates = [Path(name_or_path)]
    if "/" not in name_or_path and not name_or_path.endswith(".json"):
        candidates = [Path("configs") / f"{name_or_path}.json", REPO_ROOT / "configs" / f"{name_or_path}.json",
                      Path(name_or_path)]
    for path in candidates:
        if path.is_file():
            with open(path) as handle:
                return json.load(handle)
    sys.exit(f"error: config {name_or_path!r} not found (tried {', '.join(str(p) for p in candidates)})")


def build_model(config):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    m = config["model"]
    d_model, vocab = m["d_model"], m["vocab_size"]

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            with warnings.catch_warnings():
                # nn.Transformer warns that nested tensors are unused with norm_first; we turn them off.
                warnings.simplefilter("ignore")
                self.transformer = nn.Transformer(
                    d_model=d_model, nhead=m["heads"], num_encoder_layers=m["encoder_layers"],
                    num_decoder_layers=m["decoder_layers"], dim_feedforward=m["d_ff"], dropout=m["dropout"],
                    batch_first=True, norm_first=(m.get("norm", "pre") == "pre"))
            encoder = self.transformer.encoder
            encoder.enable_nested_tensor = False
            if hasattr(encoder, "use_nested_tensor"):
                encoder.use_nested_tensor = False
            self.embedding = nn.Embedding(vocab, d_model)
            nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
            self.learned_positions = m.get("positional", "sinusoidal") == "learned"
            if self.learned_positions:
                self.positional = nn.Embedding(m["max_len"], d_model)
                nn.init.normal_(self.positional.weight, std=d_model ** -0.5)
            else:
                position = torch.arange(m["max_len"], dtype=torch.float32).unsqueeze(1)
                rates = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
                table = torch.zeros(m["max_len"], d_model)
                table[:, 0::2] = torch.sin(position * rates)
                table[:, 1::2] = torch.cos(position * rates)
                self.register_buffer("positional_table", table, persistent=False)
            self.tied = m.get("tie_embeddings", True)
            if not self.tied:
                self.generator = nn.Linear(d_model, vocab, bias=False)
            self.dropout = nn.Dropout(m["dropout"])
            self.scale = math.sqrt(d_model)

        def embed(self, tokens):
            length = tokens.shape[1]
            positions = (self.positional.weight[:length] if self.learned_positions
                         else self.positional_table[:length])
            return self.dropout(self.embedding(tokens) * self.scale + positions)

        def forward(self, source, target_input, causal_mask):
            hidden = self.transformer(self.embed(source), self.embed(target_input),
                                      tgt_mask=causal_mask, tgt_is_causal=True)
            weight = self.embedding.weight if self.tied else self.generator.weight
            return F.linear(hidden, weight)

    return Seq2Seq()


def make_optimizer(model, training, implementation):
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    options = {}
    if implementation == "foreach":
        options["foreach"] = True
    elif implementation == "fused":
        options["fused"] = True
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": training["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4, betas=tuple(training["betas"]), eps=training["eps"], **options)


def learning_rate(training, d_model, step):
    """The paper's schedule (the benchmark's value does not change the cost of a step)."""
    warmup = max(training.get("warmup_steps", 1), 1)
    return training.get("lr_factor", 1.0) * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def time_training(args, config, rank=0, model_wrapper=None):
    """Builds model, batch and optimizer, runs warm-up + timed steps; returns (step seconds, params)."""
    import torch
    import torch.nn.functional as F

    m, training = config["model"], config["training"]
    if args.src_len > m["max_len"] or args.tgt_len > m["max_len"]:
        sys.exit(f"error: --src-len/--tgt-len exceed model.max_len {m['max_len']}")
    torch.manual_seed(training.get("seed", 1))  # same initial weights on every rank
    model = build_model(config)
    parameter_count = sum(p.numel() for p in model.parameters())
    model.train()
    optimizer = make_optimizer(model, training, args.adamw)
    step_model = model_wrapper(model) if model_wrapper else model

    generator = torch.Generator().manual_seed(12345 + rank)
    vocab = m["vocab_size"]

    def tokens(length):
        return torch.randint(4, vocab, (args.batch, length), generator=generator)

    source, target_input, target_output = tokens(args.src_len), tokens(args.tgt_len), tokens(args.tgt_len)
    causal_mask = torch.nn.Transformer.generate_square_subsequent_mask(args.tgt_len)
    smoothing, clip_norm = training.get("label_smoothing", 0.1), training.get("clip_norm", 1.0)

    times = []
    for step in range(1, args.warmup + args.steps + 1):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(training, m["d_model"], step)
        optimizer.zero_grad(set_to_none=True)
        logits = step_model(source, target_input, causal_mask)
        loss = F.cross_entropy(logits.reshape(-1, vocab), target_output.reshape(-1),
                               label_smoothing=smoothing, ignore_index=0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        elapsed = time.perf_counter() - start
        if not math.isfinite(loss.item()):
            sys.exit(f"error: non-finite loss at step {step}")
        if step > args.warmup:
            times.append(elapsed)
    return times, parameter_count


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def result_line(args, config, torch_version, times, parameter_count, ranks):
    median = statistics.median(times)
    result = {
        "impl": "pytorch-ddp-gloo" if ranks > 1 or args.ddp else "pytorch",
        "torch": torch_version, "config": config.get("name", args.config), "threads": args.threads,
        "batch": args.batch, "src_len": args.src_len, "tgt_len": args.tgt_len, "steps": args.steps,
        "warmup": args.warmup,
        "tokens_per_second": ranks * args.batch * args.tgt_len / median,
        "step_seconds_median": median, "step_seconds_min": min(times), "step_seconds_max": max(times),
        "peak_rss_bytes": peak_rss_bytes(), "parameters": parameter_count, "adamw": args.adamw,
    }
    if args.ddp:
        result.update({"ranks": ranks, "threads_per_rank": args.threads, "global_batch": ranks * args.batch})
    return result


def matmul_peak_gflops(size=2048, repeats=3, min_seconds=0.05):
    """torch's own 2048^3 float32 matmul at the current thread count, timed as `bench train`
    times its sgemm peak (`GemmTimer`): calls doubled until a repetition fills min_seconds,
    then the median GFLOP/s of `repeats` repetitions."""
    import torch

    generator = torch.Generator().manual_seed(99)
    a = torch.rand(size, size, generator=generator) - 0.5
    b = torch.rand(size, size, generator=generator) - 0.5
    out = torch.empty(size, size)

    def seconds(iterations):
        start = time.perf_counter()
        for _ in range(iterations):
            torch.matmul(a, b, out=out)
        return time.perf_counter() - start

    iterations = 1
    while seconds(iterations) < min_seconds and iterations < 1 << 20:
        iterations *= 2
    rates = [2 * size**3 * iterations / seconds(iterations) / 1e9 for _ in range(repeats)]
    return statistics.median(rates)


def run_single(args):
    import torch

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    times, parameter_count = time_training(args, config)
    result = result_line(args, config, torch.__version__, times, parameter_count, 1)
    # Right after the steps, in the same process, as ours measures its sgemm peak.
    result["matmul_peak_gflops_per_second"] = matmul_peak_gflops()
    print(json.dumps(result), flush=True)


def ddp_rank(rank, args, port):
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.ranks)
    try:
        config = load_config(args.config)
        times, parameter_count = time_training(args, config, rank=rank, model_wrapper=DistributedDataParallel)
        # A step ends for everyone when the slowest rank's all-reduce ends: take the max per step.
        step_times = torch.tensor(times, dtype=torch.float64)
        dist.all_reduce(step_times, op=dist.ReduceOp.MAX)
        rss = torch.tensor([peak_rss_bytes()], dtype=torch.float64)
        gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(args.ranks)]
        dist.all_gather(gathered, rss)
        if rank == 0:
            result = result_line(args, config, torch.__version__, step_times.tolist(), parameter_count, args.ranks)
            result["peak_rss_bytes_per_rank"] = [int(t.item()) for t in gathered]
            print(json.dumps(result), flush=True)
    finally:
        dist.destroy_process_group()


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_ddp(args):
    # Before torch starts any thread pool in the children: one process per core, no oversubscription.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    import torch.multiprocessing as mp

    load_config(args.config)  # fail early, in the parent, on a bad name
    mp.spawn(ddp_rank, args=(args, free_loopback_port()), nprocs=args.ranks, join=True)


def main(argv):
    args = parse_arguments(argv)
    if args.ddp:
        run_ddp(args)
    else:
        run_single(args)


if __name__ == "__main__":
    main(sys.argv[1:])
