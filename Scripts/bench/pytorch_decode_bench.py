#!/usr/bin/env python3
"""PyTorch side of the decoding benchmark (`transformer bench decode`).

The model of `pytorch_train_bench.py` (nn.Transformer(batch_first=True) with the config's shapes,
random weights seeded by the config), in eval mode under `torch.inference_mode()`, decoding as
users run nn.Transformer: no KV cache, every step re-runs the decoder on the whole prefix
(BOS + the tokens so far, causal mask) and projects the last position onto the vocabulary
(only the last position: the cheaper choice, in PyTorch's favour).

  * greedy (`--beam 1`): argmax of the last position's logits, appended to every row;
  * beam (`--beam K`): B*K rows through the same uncached decoder (the memory repeated K times),
    log-softmax, the K best of the K*V continuations of each sentence (`topk`), prefixes
    reordered with the chosen beams.

Fixed length, like ours: `--new-tokens` steps whatever is predicted (greedy does not stop at EOS;
beam search passes over EOS, as `transformer bench decode` does). One timed decode covers the
encoder and every step. `generated_tokens_per_second = batch * new_tokens / median seconds`
(a beam search counts its sentences' tokens, not its hypotheses'). Prints one JSON line with the
fields of `transformer bench decode`.

    python Scripts/bench/pytorch_decode_bench.py --config small --batch 32 --threads 2
    python Scripts/bench/pytorch_decode_bench.py --config base --beam 4
"""

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_train_bench import build_model, load_config, peak_rss_bytes  # noqa: E402

BOS, EOS, FIRST_WORD = 1, 2, 4


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config name (configs/NAME.json) or path")
    parser.add_argument("--batch", type=int, default=1, help="sentences per batch")
    parser.add_argument("--src-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per sentence")
    parser.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed decodes; the median counts")
    parser.add_argument("--warmup", type=int, default=1, help="untimed decodes first")
    args = parser.parse_args(argv)
    for name in ("batch", "src_len", "new_tokens", "beam", "threads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def blas_name(torch):
    """The BLAS torch was built with and the vector ISA it uses, e.g. "mkl AVX512"."""
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return f"{found.group(1) if found else 'unknown'} {torch.backends.cpu.get_cpu_capability()}"


def make_decoder(model, torch):
    """Returns decode(source, new_tokens, beam) -> positions decoded (the uncached loops)."""
    import torch.nn.functional as F

    weight = model.embedding.weight if model.tied else model.generator.weight
    masks = {}

    def next_logits(prefix, memory):
        length = prefix.shape[1]
        if length not in masks:
            masks[length] = torch.nn.Transformer.generate_square_subsequent_mask(length)
        hidden = model.transformer.decoder(model.embed(prefix), memory, tgt_mask=masks[length], tgt_is_causal=True)
        return F.linear(hidden[:, -1], weight)

    def greedy(source, new_tokens):
        memory = model.transformer.encoder(model.embed(source))
        prefix = torch.full((source.shape[0], 1), BOS, dtype=torch.long)
        for _ in range(new_tokens):
            token = next_logits(prefix, memory).argmax(dim=-1, keepdim=True)
            prefix = torch.cat([prefix, token], dim=1)
        return prefix.shape[1] - 1

    def beam_search(source, new_tokens, k):
        b = source.shape[0]
        memory = model.transformer.encoder(model.embed(source)).repeat_interleave(k, dim=0)
        prefix = torch.full((b * k, 1), BOS, dtype=torch.long)
        scores = torch.full((b, k), float("-inf"))
        scores[:, 0] = 0.0  # the K copies of BOS are one hypothesis
        rows = torch.arange(b).unsqueeze(1) * k
        for _ in range(new_tokens):
            log_probs = F.log_softmax(next_logits(prefix, memory), dim=-1)
            log_probs[:, EOS] = float("-inf")  # fixed length, as ours
            vocab = log_probs.shape[1]
            candidates = (scores.unsqueeze(2) + log_probs.view(b, k, vocab)).view(b, k * vocab)
            scores, index = candidates.topk(k, dim=1)
            parents = (rows + index // vocab).view(-1)
            prefix = torch.cat([prefix.index_select(0, parents), (index % vocab).view(-1, 1)], dim=1)
        return prefix.shape[1] - 1

    def decode(source, new_tokens, beam):
        return greedy(source, new_tokens) if beam == 1 else beam_search(source, new_tokens, beam)

    return decode


def main(argv):
    args = parse_arguments(argv)
    import torch

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    m = config["model"]
    if args.src_len > m["max_len"] or args.new_tokens > m["max_len"]:
        sys.exit(f"error: --src-len/--new-tokens exceed model.max_len {m['max_len']}")
    torch.manual_seed(config["training"].get("seed", 1))
    model = build_model(config)
    model.eval()
    parameter_count = sum(p.numel() for p in model.parameters())
    generator = torch.Generator().manual_seed(12345)
    source = torch.randint(FIRST_WORD, m["vocab_size"], (args.batch, args.src_len), generator=generator)
    decode = make_decoder(model, torch)
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            start = time.perf_counter()
            positions = decode(source, args.new_tokens, args.beam)
            elapsed = time.perf_counter() - start
            if positions != args.new_tokens:
                sys.exit(f"error: decoding ran {positions} of {args.new_tokens} steps")
            if i >= args.warmup:
                times.append(elapsed)
    median = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "decoder": "beam" if args.beam > 1 else "greedy",
        "kv_cache": False, "config": config.get("name", args.config), "batch": args.batch, "src_len": args.src_len,
        "new_tokens": args.new_tokens, "beam": args.beam, "threads": args.threads, "repeats": args.repeats,
        "warmup": args.warmup, "blas_kernels": blas_name(torch),
        "generated_tokens_per_second": args.batch * args.new_tokens / median,
        "ms_per_step": median / args.new_tokens * 1000,
        "decode_seconds_median": median, "decode_seconds_min": min(times), "decode_seconds_max": max(times),
        "peak_rss_bytes": peak_rss_bytes(), "parameters": parameter_count,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
