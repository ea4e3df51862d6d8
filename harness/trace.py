"""`smlocal trace`: the fine-tuned classifier as TorchScript, checked and packaged (issue 6).

As the AWS blog does, the model is traced on one [1, max_len] example of (input_ids,
attention_mask). transformers 5 has no `torchscript=True` (E8), so it is loaded with
`return_dict=False`, which makes the outputs a tuple that tracing accepts. A trace records one
run, so before anything is written the traced model is compared with the eager one on real
CoLA sentences at other batch sizes and lengths (padded to the longest, truncated at max_len, as
the handler tokenizes): a larger difference than the tolerance refuses the archive.

The archive is `smlocal package`'s layout (harness.package): model.pt and the tokenizer files at
the top, and code/ holding only inference_torchscript.py and requirements.txt.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.package import Packaged, package_model

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "handlers"
ENTRY_POINT = "inference_torchscript.py"
CODE_FILES = (ENTRY_POINT, "requirements.txt")
MODEL_FILE = "model.pt"
DEFAULT_MAX_LEN = 64
DEFAULT_TOLERANCE = 1e-4
BATCH_SIZES = (1, 4, 32)

# Sentences from CoLA's in-domain training set, grammatical and not: what the endpoint sees.
COLA_SENTENCES = (
    "Our friends won't buy this analysis, let alone the next one we propose.",
    "One more pseudo generalization and I'm giving up.",
    "The more we study verbs, the crazier they get.",
    "Day by day the facts are getting murkier.",
    "They drank the pub.",
    "The professor talked us.",
    "Somebody just left - guess who.",
    "Him would have been fired.",
)
# Longer than any max_len: exercises truncation and the full-length graph.
LONG_SENTENCE = (
    "The sailors rode the breeze clear of the rocks while the captain, who had sailed these "
    "waters for forty years and knew every reef and current between the harbour and the "
    "lighthouse, shouted orders that nobody on deck could hear over the wind and the waves "
    "breaking against the bow of the old ship, and the passengers below, who had been promised a "
    "calm crossing by the agent in town, wondered aloud whether they would ever see dry land again."
)


class TraceError(Exception):
    """The traced model does not match the eager one, or the inputs are unusable."""


@dataclass(frozen=True)
class Check:
    batch_size: int
    length: int
    max_abs_diff: float


@dataclass(frozen=True)
class Traced:
    packaged: Packaged
    checks: tuple[Check, ...]

    @property
    def max_abs_diff(self) -> float:
        return max(check.max_abs_diff for check in self.checks)


def load_eager(model_dir: Path) -> tuple[torch.nn.Module, Any]:
    """The fine-tuned classifier (eval, tuple outputs) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (model_dir / "config.json").is_file():
        raise TraceError(f"{model_dir} holds no config.json: not a save_pretrained directory")
    model: torch.nn.Module = AutoModelForSequenceClassification.from_pretrained(
        model_dir, return_dict=False)
    model.eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def trace_model(model: torch.nn.Module, tokenizer: Any, max_len: int) -> torch.jit.ScriptModule:
    """Trace on one [1, max_len] example, as the blog does."""
    example = tokenizer(COLA_SENTENCES[0], truncation=True, max_length=max_len,
                        padding="max_length", return_tensors="pt")
    with torch.no_grad():
        # torch.jit.trace has no annotations.
        traced: torch.jit.ScriptModule = torch.jit.trace(  # type: ignore[no-untyped-call]
            model, (example["input_ids"], example["attention_mask"]))
    return traced


def batches(max_len: int) -> list[list[str]]:
    """Short and long (truncated) batches at each of BATCH_SIZES."""
    out = []
    for size in BATCH_SIZES:
        short = [COLA_SENTENCES[i % len(COLA_SENTENCES)] for i in range(size)]
        out.append(short)
        # One long sentence in the batch pads every row to max_len.
        out.append([LONG_SENTENCE, *short[1:]])
    return out


def compare(eager: torch.nn.Module, traced: torch.jit.ScriptModule, tokenizer: Any,
            max_len: int) -> tuple[Check, ...]:
    checks = []
    for sentences in batches(max_len):
        encoded = tokenizer(sentences, truncation=True, max_length=max_len, padding="longest",
                            return_tensors="pt")
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        with torch.no_grad():
            expected = eager(input_ids=ids, attention_mask=mask)[0]
            actual = traced(ids, mask)[0]
        checks.append(Check(len(sentences), int(ids.shape[1]),
                            float((expected - actual).abs().max())))
    return tuple(checks)


def _figures(checks: Sequence[Check]) -> str:
    return ", ".join(f"[{c.batch_size}x{c.length}] {c.max_abs_diff:.2e}" for c in checks)


def trace_and_package(model_dir: Path, out: Path, max_len: int = DEFAULT_MAX_LEN,
                      tolerance: float = DEFAULT_TOLERANCE,
                      handlers: Path = HANDLERS) -> Traced:
    if max_len < 2:
        raise TraceError(f"--max-len must be at least 2 ([CLS] and [SEP]), got {max_len}")
    for name in CODE_FILES:
        if not (handlers / name).is_file():
            raise TraceError(f"{handlers / name} does not exist")
    eager, tokenizer = load_eager(model_dir)
    traced = trace_model(eager, tokenizer, max_len)
    checks = compare(eager, traced, tokenizer, max_len)
    worst = max(check.max_abs_diff for check in checks)
    if not worst <= tolerance:  # NaN refuses too
        raise TraceError(f"traced and eager logits differ by {worst:.2e} > {tolerance:.0e}: "
                         f"{_figures(checks)}; nothing written")
    with tempfile.TemporaryDirectory(prefix="smlocal-trace-") as staging:
        model_out = Path(staging) / "model"
        code_out = Path(staging) / "code"
        model_out.mkdir()
        code_out.mkdir()
        torch.jit.save(traced, str(model_out / MODEL_FILE))
        tokenizer.save_pretrained(model_out)
        for name in CODE_FILES:
            shutil.copyfile(handlers / name, code_out / name)
        packaged = package_model(model_out, code_out, out, entry_point=ENTRY_POINT)
    return Traced(packaged=packaged, checks=checks)
