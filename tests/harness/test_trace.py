"""`smlocal trace` (issue 6): the traced model matches the eager one, a mismatch refuses the
archive, and the archive has the layout SageMaker's PyTorch serving expects (S14, S19)."""

from __future__ import annotations

import copy
import tarfile

import pytest
import torch

import harness.trace as trace_module
from harness.cli import main
from harness.trace import BATCH_SIZES, compare, load_eager, trace_model


def test_s19_traced_logits_equal_eager_within_1e_4_at_each_batch_size_and_length(
    bert_model_dir, torchscript_model_dir
):
    eager, tokenizer = load_eager(bert_model_dir)
    # torch.jit.load of the archived model.pt, as the S19 default model_fn would load it.
    traced = torch.jit.load(str(torchscript_model_dir / "model.pt"))
    checks = compare(eager, traced, tokenizer, max_len=64)
    assert {check.batch_size for check in checks} == set(BATCH_SIZES)
    lengths = {check.length for check in checks}
    assert 64 in lengths  # truncated batches
    assert min(lengths) < 64  # short batches, padded only to their longest sentence
    assert max(check.max_abs_diff for check in checks) <= 1e-4


def test_s14_s19_archive_layout_model_pt_tokenizer_and_only_the_torchscript_handler(
    torchscript_archive,
):
    with tarfile.open(torchscript_archive) as archive:
        names = set(archive.getnames())
    # S19: model.pt at the top, where the default model_fn looks too.
    assert "model.pt" in names
    assert "tokenizer.json" in names
    # S14: code/ holds the entry point and its requirements (S15), nothing else.
    assert {name for name in names if name.startswith("code")} == {
        "code", "code/inference_torchscript.py", "code/requirements.txt"}
    # No eager weights travel with the traced model.
    assert not names & {"model.safetensors", "pytorch_model.bin"}


def _perturbed_trace(model: torch.nn.Module, tokenizer, max_len: int) -> torch.jit.ScriptModule:
    """Traces a copy whose classifier bias is off by 1e-2: a trace that does not match."""
    copied = copy.deepcopy(model)
    with torch.no_grad():
        copied.classifier.bias.add_(1e-2)
    return trace_model(copied, tokenizer, max_len)


def test_a_mismatching_trace_is_refused_with_the_figures_and_nothing_written(
    bert_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(trace_module, "trace_model", _perturbed_trace)
    out = tmp_path / "model.tar.gz"
    code = main(["trace", "--model-dir", str(bert_model_dir), "--out", str(out),
                 "--max-len", "32"])
    assert code == 1
    # transformers' loading progress bar shares stderr; the refusal is one line of its own.
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("smlocal trace: error:")]
    assert len(errors) == 1
    error = errors[0]
    assert "differ by 1.00e-02 > 1e-04" in error
    assert "[32x32]" in error
    assert not out.exists()


def test_a_directory_without_a_model_is_refused(tmp_path, capsys):
    code = main(["trace", "--model-dir", str(tmp_path), "--out", str(tmp_path / "m.tar.gz")])
    assert code == 1
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize("max_len", [1, 0])
def test_a_max_len_without_room_for_cls_and_sep_is_refused(bert_model_dir, tmp_path, max_len):
    with pytest.raises(trace_module.TraceError, match="at least 2"):
        trace_module.trace_and_package(bert_model_dir, tmp_path / "m.tar.gz", max_len=max_len)
