"""`handlers/train.py`, really training the embedded BERT on a small CoLA subset.

Through the training runtime (as `smlocal train` runs it), and as two gloo ranks on this machine
(T13, T14 and the blog script's defects).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from harness.train import run_process_training

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"

pytestmark = pytest.mark.slow


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    # As in /opt/ml/code: the code directory is on sys.path (train.py imports inference.py).
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(scope="module")
def trained(small_cola_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    job_dir = tmp_path_factory.mktemp("job")
    result = run_process_training(
        data_dir=small_cola_dir, code_dir=HANDLERS, entry_point="train.py",
        hyperparameters={"epochs": "4", "batch-size": "16", "lr": "1e-4", "patience": "0"},
        work_dir=job_dir,
    )
    return result


def test_training_writes_model_tokenizer_metrics_and_success(trained) -> None:
    model_dir = trained.model_dir
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (model_dir / name).is_file(), name
    assert (trained.job_dir / "output" / "success").is_file()
    metrics = json.loads(trained.metrics_file.read_text())
    assert metrics["train_samples"] == 256
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]
    for split in ("testing", "validation"):
        result = metrics["final"][split]
        assert result["n"] == 64
        assert 0.0 <= result["accuracy"] <= 1.0 and -1.0 <= result["mcc"] <= 1.0
    assert metrics["train_samples_per_s"] > 0


def test_training_loss_falls(trained) -> None:
    losses = [e["train_loss"] for e in json.loads(trained.metrics_file.read_text())["epochs"]]
    assert losses[-1] < losses[0] - 0.05, losses


def test_inference_handler_serves_the_trained_model(trained) -> None:
    inference = load_module(HANDLERS / "inference.py")
    model = inference.model_fn(str(trained.model_dir))
    sentences = ["Somebody just left - guess who.", "The professor talked us."]
    data = inference.input_fn(json.dumps(sentences), "application/json")
    logits = inference.predict_fn(data, model)
    result = np.asarray(logits.tolist())
    assert result.shape == (2, 2)
    assert set(np.argmax(result, axis=1)) <= {0, 1}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_t13_t14_two_ranks_sync_gradients_and_only_rank_0_writes(small_cola_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Two gloo ranks on loopback: different shards, identical parameters after training, the
    model written once, both finishing together."""
    hosts = ["algo-1", "algo-2"]
    port = str(_free_port())
    procs = []
    for host in hosts:
        model_dir = tmp_path / host / "model"
        env = dict(
            os.environ,
            SM_HOSTS=json.dumps(hosts), SM_CURRENT_HOST=host,
            SM_MODEL_DIR=str(model_dir), SM_OUTPUT_DATA_DIR=str(tmp_path / host / "output"),
            SM_CHANNEL_TRAINING=str(small_cola_dir), SM_CHANNEL_TESTING=str(small_cola_dir),
            MASTER_ADDR="127.0.0.1", MASTER_PORT=port, SM_CHANNELS='["testing","training"]',
        )
        procs.append(subprocess.Popen(
            [sys.executable, str(HANDLERS / "train.py"), "--epochs", "1", "--batch-size", "16",
             "--num-threads", "1", "--max-train-samples", "128"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    logs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        logs.append(out)
        assert proc.returncode == 0, out
    checksums = [re.search(r"Parameter checksum \(rank \d\): (\w+)", log) for log in logs]
    assert all(checksums), logs
    assert checksums[0].group(1) == checksums[1].group(1)  # type: ignore[union-attr]
    # Each rank trained on its own half of the data (DistributedSampler over the dataset).
    assert all("Training on 128 sentences (64 on this host)" in log for log in logs)
    assert (tmp_path / "algo-1" / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "algo-2" / "model").exists()
    assert (tmp_path / "algo-1" / "output" / "metrics.json").is_file()
    assert not (tmp_path / "algo-2" / "output").exists()


def run_two_ranks(data: Path, base: Path, *args: str) -> list[str]:
    """Both ranks of a two-host job on loopback; their logs, once both exited 0."""
    hosts = ["algo-1", "algo-2"]
    port = str(_free_port())
    procs = []
    for host in hosts:
        env = dict(
            os.environ,
            SM_HOSTS=json.dumps(hosts), SM_CURRENT_HOST=host,
            SM_MODEL_DIR=str(base / host / "model"),
            SM_OUTPUT_DATA_DIR=str(base / host / "output"),
            SM_CHANNEL_TRAINING=str(data), SM_CHANNEL_TESTING=str(data),
            MASTER_ADDR="127.0.0.1", MASTER_PORT=port, SM_CHANNELS='["testing","training"]',
        )
        procs.append(subprocess.Popen(
            [sys.executable, str(HANDLERS / "train.py"), "--epochs", "1", "--batch-size", "16",
             "--num-threads", "1", "--max-train-samples", "128", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    logs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        logs.append(out)
        assert proc.returncode == 0, out
    return logs


def test_t4_t13_two_ranks_resume_together_from_rank_0s_checkpoint(small_cola_dir: Path,
                                                                   tmp_path: Path) -> None:
    """Rank 0 writes the checkpoint, every rank reads it (on SageMaker each host gets its own
    copy of checkpoint_s3_uri; here they share a directory): a restarted two-host job resumes on
    both ranks, trains nothing more, and ends with the same weights."""
    shared = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    first = run_two_ranks(small_cola_dir, tmp_path / "first", *shared)
    again = run_two_ranks(small_cola_dir, tmp_path / "again", *shared)
    saved = re.findall(r"Checkpoint of epoch 1 saved .* \(parameter checksum (\w+)\)",
                       "".join(first))
    assert len(saved) == 1, "rank 0 alone writes"
    for log in again:
        assert re.findall(r"Resuming after epoch (\d+) .* \(parameter checksum (\w+)\)",
                          log) == [("1", saved[0])]
        assert "Train Epoch:" not in log
    final = [re.findall(r"Parameter checksum \(rank \d\): (\w+)", log) for log in first + again]
    assert all(checksums == final[0] for checksums in final), final


# --- the recipe's parts, on small real inputs ---------------------------------------------------

@pytest.fixture(scope="module")
def train_module() -> ModuleType:
    return load_module(HANDLERS / "train.py")


def test_mcc_matches_its_definition(train_module) -> None:
    result = train_module.evaluation_from_counts(tp=90, tn=30, fp=10, fn=20)
    assert result.accuracy == pytest.approx(120 / 150)
    expected = (90 * 30 - 10 * 20) / ((100 * 110 * 40 * 50) ** 0.5)
    assert result.mcc == pytest.approx(expected)
    assert train_module.evaluation_from_counts(tp=10, tn=0, fp=5, fn=0).mcc == 0.0


def test_no_weight_decay_on_biases_and_layer_norms(train_module, embedded_model_dir) -> None:
    import argparse

    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(embedded_model_dir, num_labels=2)
    optimizer = train_module.make_optimizer(model, argparse.Namespace(lr=1e-4, weight_decay=0.01))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim < 2 for p in no_decay["params"])
    counted = len(decay["params"]) + len(no_decay["params"])
    assert counted == len(list(model.parameters()))
    assert {group["lr"] for group in optimizer.param_groups} == {1e-4}


def test_bucketed_batches_cover_every_index_once_and_pad_little(train_module) -> None:
    import random

    lengths = [random.Random(n).randint(5, 40) for n in range(1000)]
    indices = list(range(1000))
    random.Random(0).shuffle(indices)
    batches = train_module.train_batches(indices, lengths, 32, True, seed=1)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    unbucketed = train_module.train_batches(indices, lengths, 32, False, seed=1)
    padded_plain = sum(len(b) * max(lengths[i] for i in b) for b in unbucketed)
    assert padded < 0.8 * padded_plain
