"""The PyTorch default handlers (S19-S22) on a real TorchScript model."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import scipy.sparse
import torch

from container.serving.context import Context
from container.serving.defaults import PyTorchDefaults
from container.serving.errors import InputDecodeError

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.load` is deprecated:DeprecationWarning"
)

CONTEXT = Context({"model_dir": "/opt/ml/model", "gpu_id": None, "batch_size": 1})
DEFAULTS = PyTorchDefaults(accelerator_present=False)


def test_s19_model_fn_loads_model_pt_with_torch_jit(model_dir):
    model = DEFAULTS.model_fn(str(model_dir), CONTEXT)
    assert isinstance(model, torch.jit.ScriptModule)
    assert model(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [[1.5, 4.5]]


def test_s19_model_fn_takes_the_only_pt_or_pth_file(model_dir):
    (model_dir / "model.pt").rename(model_dir / "classifier.pth")
    model = DEFAULTS.model_fn(str(model_dir), CONTEXT)
    assert isinstance(model, torch.jit.ScriptModule)


def test_s19_model_fn_needs_exactly_one_model_file(model_dir):
    (model_dir / "model.pt").rename(model_dir / "a.pt")
    shutil.copy(model_dir / "a.pt", model_dir / "b.pth")
    with pytest.raises(ValueError) as raised:
        DEFAULTS.model_fn(str(model_dir), CONTEXT)
    assert str(raised.value) == (
        "Exactly one .pth or .pt file is required for PyTorch models: ['a.pt', 'b.pth']"
    )
    (model_dir / "a.pt").unlink()
    (model_dir / "b.pth").unlink()
    with pytest.raises(ValueError, match=r"required for PyTorch models: \[\]"):
        DEFAULTS.model_fn(str(model_dir), CONTEXT)


def test_s19_model_that_is_not_torchscript_says_to_save_it_with_torchscript(model_dir):
    torch.save(torch.nn.Linear(3, 2).state_dict(), model_dir / "model.pt")
    with pytest.raises(ValueError, match="TorchScript"):
        DEFAULTS.model_fn(str(model_dir), CONTEXT)


def test_s20_input_fn_makes_float32_from_json_and_csv_and_keeps_npy_dtype():
    from_json = DEFAULTS.input_fn("[[1, 2, 3]]", "application/json", CONTEXT)
    from_csv = DEFAULTS.input_fn("1,2,3", "text/csv", CONTEXT)
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2, 3]], dtype=np.int64))
    from_npy = DEFAULTS.input_fn(buffer.getvalue(), "application/x-npy", CONTEXT)
    assert from_json.dtype == from_csv.dtype == torch.float32
    assert from_npy.dtype == torch.int64
    assert from_json.tolist() == from_csv.tolist() == from_npy.tolist() == [[1, 2, 3]]


def test_s20_json_that_is_not_numbers_is_a_decode_error():
    with pytest.raises(InputDecodeError, match="not an array of numbers"):
        DEFAULTS.input_fn('["a sentence"]', "application/json", CONTEXT)


def test_s20_npz_cannot_become_a_tensor_in_the_default_input_fn_as_on_the_dlc():
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix([[1.0, 0.0]]))
    with pytest.raises(TypeError, match="sparse matrix"):
        DEFAULTS.input_fn(buffer.getvalue(), "application/x-npz", CONTEXT)


def test_s21_predict_fn_runs_in_eval_mode_without_gradients(model_dir):
    model = DEFAULTS.model_fn(str(model_dir), CONTEXT)
    model.train()
    output = DEFAULTS.predict_fn(torch.tensor([[1.0, 2.0, 3.0]]), model, CONTEXT)
    assert not model.training
    assert not output.requires_grad
    assert output.tolist() == [[1.5, 4.5]]


def test_s21_accelerator_present_runs_on_cpu_in_optimized_execution(model_dir):
    # Locally optimized_execution takes one argument; the DLC's eia:0 dict would be a TypeError.
    eia = PyTorchDefaults(accelerator_present=True)
    model = eia.model_fn(str(model_dir), CONTEXT)
    output = eia.predict_fn(torch.tensor([[1.0, 2.0, 3.0]]), model, CONTEXT)
    assert output.device.type == "cpu"
    assert output.tolist() == [[1.5, 4.5]]


def test_s22_output_fn_turns_tensors_into_lists_in_the_accepted_type():
    prediction = torch.tensor([[1.5, 4.5]], requires_grad=True) * 1
    assert DEFAULTS.output_fn(prediction, "application/json", CONTEXT) == "[[1.5, 4.5]]"
    assert DEFAULTS.output_fn(prediction, "text/csv", CONTEXT) == b"1.5,4.5\n"
