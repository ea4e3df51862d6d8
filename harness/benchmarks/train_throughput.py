"""Training throughput: the blog's loop against `handlers/train.py`'s, in one run.

The blog's loop: every sentence padded to 64 tokens, random batches, fp32, an AdamW that updates
one tensor at a time (as `transformers.AdamW` did). Ours: each batch padded to its own longest
sentence, batches of similar lengths, the fused AdamW and bf16 autocast where the hardware has it
(the exact functions `handlers/train.py` trains with). Same model, same data, same batch size,
same number of samples; the figure that matters is the ratio.

    python -m harness.benchmarks.train_throughput --data .smlocal/data/cola/train.csv
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

ROOT = Path(__file__).resolve().parents[2]


def load_train_module() -> ModuleType:
    """`handlers/train.py` by path: handlers are user code, not a package of ours."""
    spec = importlib.util.spec_from_file_location("smlocal_handlers_train", ROOT / "handlers" /
                                                  "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while the class body runs.
    sys.modules[spec.name] = module
    # As in /opt/ml/code: the code directory is on sys.path (train.py imports inference.py).
    sys.path.insert(0, str(ROOT / "handlers"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "handlers"))
    return module


def timed_steps(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]],
                optimizer: torch.optim.Optimizer, amp: torch.dtype | None) -> float:
    """Seconds for one optimisation step per batch (forward, backward, clip, step)."""
    model.train()
    start = time.perf_counter()
    for batch in batches:
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def blog_batches(train: ModuleType, examples: Any, batch_size: int, max_len: int,
                 seed: int) -> list[dict[str, torch.Tensor]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        ids = torch.zeros((len(indices), max_len), dtype=torch.long)
        for row, index in enumerate(indices):
            tokens = examples.input_ids[index][:max_len]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        batches.append({"input_ids": ids, "attention_mask": (ids > 0).long(),
                        "labels": torch.tensor([examples.labels[i] for i in indices])})
    return batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".smlocal/data/cola/train.csv")
    parser.add_argument("--samples", type=int, default=1024, help="samples per loop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--warmup-steps", type=int, default=2)
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not data.is_file():
        print(f"train_throughput: {data} not found (run `smlocal data cola` first)",
              file=sys.stderr)
        return 2

    train = load_train_module()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_path = train.embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    sentences, labels = train.read_csv_channel(str(data.parent), data.name)
    examples = train.encode(tokenizer, sentences[: args.samples], labels[: args.samples],
                            args.max_len)
    lengths = [len(ids) for ids in examples.input_ids]
    recipe = train.parse_args(["--data-dir", ".", "--test", "."])
    amp = train.autocast_dtype(recipe.precision, torch.device("cpu"))

    def fresh_model() -> torch.nn.Module:
        torch.manual_seed(0)
        model: torch.nn.Module = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=2
        )
        return model

    ours = [train.collate(examples, indices, tokenizer.pad_token_id or 0) for indices in
            train.train_batches(list(range(len(examples))), lengths, args.batch_size, True, 0)]
    blog = blog_batches(train, examples, args.batch_size, args.max_len, 0)

    loops: dict[str, tuple[list[dict[str, torch.Tensor]],
                           Callable[[torch.nn.Module], torch.optim.Optimizer],
                           torch.dtype | None]] = {
        "blog": (blog, lambda m: torch.optim.AdamW(m.parameters(), lr=2e-5, eps=1e-8,
                                                    foreach=False), None),
        "smlocal": (ours, lambda m: train.make_optimizer(m, recipe), amp),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(examples)} samples per loop, batch {args.batch_size}, "
          f"smlocal precision: {'bf16 autocast' if amp else 'fp32'}")
    rates: dict[str, float] = {}
    for name, (batches, optimizer_for, dtype) in loops.items():
        model = fresh_model()
        optimizer = optimizer_for(model)
        timed_steps(model, batches[: args.warmup_steps], optimizer, dtype)
        seconds = timed_steps(model, batches, optimizer, dtype)
        rates[name] = len(examples) / seconds
        tokens = sum(int(b["attention_mask"].numel()) for b in batches)
        print(f"{name:8s} {seconds:7.2f} s  {rates[name]:7.1f} samples/s  "
              f"{tokens / len(examples):5.1f} padded tokens/sample")
    print(f"ratio smlocal/blog: {rates['smlocal'] / rates['blog']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
