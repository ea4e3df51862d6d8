"""Eager vs traced (TorchScript) latency of the CoLA classifier on the CPU, in one process.

    python -m harness.benchmarks.trace_latency --model-dir .smlocal/model --runs 20

The traced model is made as `smlocal trace` makes it (harness.trace) and run as the TorchScript
handler runs it, inside `torch.jit.optimized_execution(True)`. Each figure is the median of
`--runs` forward passes after `--warmup` unmeasured ones (the first traced runs profile and
optimize the graph), on batches of CoLA sentences tokenized as the handlers do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before transformers is imported (E8): the model is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from harness.trace import COLA_SENTENCES, load_eager, trace_model


def median_ms(forward: Callable[[torch.Tensor, torch.Tensor], Any], ids: torch.Tensor,
              mask: torch.Tensor, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        forward(ids, mask)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        forward(ids, mask)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(".smlocal/model"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=64)
    args = parser.parse_args(argv)

    eager, tokenizer = load_eager(args.model_dir)
    traced = trace_model(eager, tokenizer, args.max_len)

    def run_eager(ids: torch.Tensor, mask: torch.Tensor) -> Any:
        with torch.no_grad():
            return eager(input_ids=ids, attention_mask=mask)

    def run_traced(ids: torch.Tensor, mask: torch.Tensor) -> Any:
        with torch.no_grad(), getattr(torch.jit, "optimized_execution")(True):  # noqa: B009
            return traced(ids, mask)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.runs} runs after {args.warmup} warm-up")
    print("batch  length  eager ms  traced ms  traced/eager")
    for batch_size in (1, 32):
        sentences = [COLA_SENTENCES[i % len(COLA_SENTENCES)] for i in range(batch_size)]
        encoded = tokenizer(sentences, truncation=True, max_length=args.max_len,
                            padding="longest", return_tensors="pt")
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        eager_ms = median_ms(run_eager, ids, mask, args.runs, args.warmup)
        traced_ms = median_ms(run_traced, ids, mask, args.runs, args.warmup)
        print(f"{batch_size:5d}  {ids.shape[1]:6d}  {eager_ms:8.2f}  {traced_ms:9.2f}  "
              f"{traced_ms / eager_ms:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
