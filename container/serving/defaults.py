"""The PyTorch default handlers (S19-S22), used for whatever the user module leaves out.

Imported in the loading thread, never at start-up: torch takes seconds to import and the port
must be open (S1) and /ping answering (S2) long before that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from container.serving import codecs
from container.serving.context import Context
from container.serving.errors import InputDecodeError

MODEL_FILE = "model.pt"


def _device(context: Context) -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    gpu_id = context.system_properties.get("gpu_id")
    return torch.device(f"cuda:{gpu_id}" if isinstance(gpu_id, int) else "cuda")


class PyTorchDefaults:
    def __init__(self, accelerator_present: bool) -> None:
        self.accelerator_present = accelerator_present

    def model_fn(self, model_dir: str, context: Context) -> Any:
        """S19: model_dir/model.pt, else the only *.pt/*.pth file, loaded with torch.jit.load."""
        directory = Path(model_dir)
        path = directory / MODEL_FILE
        if not path.is_file():
            candidates = sorted(
                entry.name
                for entry in (directory.iterdir() if directory.is_dir() else ())
                if entry.is_file() and entry.suffix in (".pt", ".pth")
            )
            if len(candidates) != 1:
                raise ValueError(
                    f"Exactly one .pth or .pt file is required for PyTorch models: {candidates}"
                )
            path = directory / candidates[0]
        try:
            return torch.jit.load(  # type: ignore[no-untyped-call]
                str(path), map_location=_device(context)
            )
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"Failed to load {path}: the default model_fn loads TorchScript only. Save the "
                "model with torch.jit.save(torch.jit.trace(model, example) or "
                "torch.jit.script(model), path), or define model_fn in the user module."
            ) from exc

    def input_fn(
        self, input_data: str | bytes, content_type: str | None, context: Context
    ) -> torch.Tensor:
        """S20: JSON and CSV become float32 tensors, npy arrays keep their dtype."""
        array = codecs.decode(input_data, content_type)
        if content_type in codecs.UTF8_TYPES:
            try:
                return torch.as_tensor(array, dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise InputDecodeError(
                    f"the {content_type} body is not an array of numbers: {exc}"
                ) from exc
        if content_type == codecs.NPZ:
            # As on the DLC, whose default turns the sparse matrix into a tensor with
            # torch.from_numpy and fails: a handler that relies on it would fail in the cloud.
            raise TypeError(
                "the default input_fn decodes application/x-npz to a scipy sparse matrix, which "
                "it cannot turn into a tensor (neither can the SageMaker PyTorch image); define "
                "input_fn to use sparse input"
            )
        return torch.from_numpy(array)

    def predict_fn(self, data: Any, model: Any, context: Context) -> Any:
        """S21: eval mode, no gradients, model and data on the worker's device."""
        with torch.no_grad():
            if self.accelerator_present:
                # The DLC passes {"target_device": "eia:0"} as well; stock torch takes one
                # argument (E9), and Elastic Inference is gone (S28), so the inputs stay on CPU.
                cpu = torch.device("cpu")
                model = model.to(cpu)
                model.eval()
                with torch.jit.optimized_execution(True):  # type: ignore[attr-defined]
                    return model(data.to(cpu))
            device = _device(context)
            model = model.to(device)
            model.eval()
            return model(data.to(device))

    def output_fn(self, prediction: Any, accept: str, context: Context) -> str | bytes:
        """S22: tensors become nested lists, encoded in the first supported Accept type."""
        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy().tolist()
        return codecs.encode_for_accept(prediction, accept)
