"""CoLA (the Corpus of Linguistic Acceptability) as the blog's train/test CSV files.

Reads the official `cola_public_1.1.zip`, from a local path or downloaded, and writes
`train.csv` and `test.csv` (a seeded 75/25 split of `in_domain_train.tsv`, like the blog's
`train_test_split`), `dev.csv` (`in_domain_dev.tsv`) and `ood.csv` (`out_of_domain_dev.tsv`), each
with the columns `label,sentence`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

OFFICIAL_URL = "https://nyu-mll.github.io/CoLA/cola_public_1.1.zip"
TEST_FRACTION = 0.25
DEFAULT_SEED = 42

_MEMBERS = {
    "train": "cola_public/raw/in_domain_train.tsv",
    "dev": "cola_public/raw/in_domain_dev.tsv",
    "ood": "cola_public/raw/out_of_domain_dev.tsv",
}

Row = tuple[int, str]


class DataError(Exception):
    """The CoLA archive is missing, unreadable or not what it should be."""


@dataclass(frozen=True)
class PreparedCola:
    out_dir: Path
    counts: dict[str, int]

    def path(self, split: str) -> Path:
        return self.out_dir / f"{split}.csv"


def read_archive(source: str, timeout_s: float = 60.0) -> bytes:
    """The zip's bytes from a local path, a file:// URL or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout_s) as response:
                return bytes(response.read())
        except OSError as exc:
            raise DataError(f"cannot download {source}: {exc}") from exc
    path = Path(source.removeprefix("file://"))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def parse_tsv(text: str, member: str) -> list[Row]:
    """CoLA's raw files: tab-separated, no header: source, label, original mark, sentence."""
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or fields[1] not in ("0", "1"):
            raise DataError(f"{member} line {number} is not a CoLA row: {line[:80]!r}")
        rows.append((int(fields[1]), fields[3]))
    if not rows:
        raise DataError(f"{member} is empty")
    return rows


def load_splits(archive: bytes, source: str) -> dict[str, list[Row]]:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            texts = {name: zipped.read(member).decode("utf-8") for name, member in _MEMBERS.items()}
    except zipfile.BadZipFile as exc:
        raise DataError(f"{source} is not a zip archive ({exc})") from exc
    except KeyError as exc:
        raise DataError(f"{source} is not the CoLA archive: {exc.args[0]}") from exc
    except (UnicodeDecodeError, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise DataError(f"{source} is corrupt: {exc}") from exc
    return {name: parse_tsv(text, _MEMBERS[name]) for name, text in texts.items()}


def split_train_test(rows: list[Row], seed: int) -> tuple[list[Row], list[Row]]:
    """A seeded shuffle, then 25% (rounded up, as scikit-learn does) for test."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = math.ceil(len(rows) * TEST_FRACTION)
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    return train, test


def _csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "sentence"])
    writer.writerows(rows)
    return buffer.getvalue()


def _write_all(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file to a temporary name first, then rename: never a partial set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in files.items():
            handle, temp_name = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                stream.write(text)
            staged.append((name, Path(temp_name)))
        for name, temp in staged:
            os.replace(temp, out_dir / name)
    finally:
        for _, temp in staged:
            temp.unlink(missing_ok=True)


def prepare_cola(source: str, out_dir: Path, seed: int = DEFAULT_SEED) -> PreparedCola:
    splits = load_splits(read_archive(source), source)
    train, test = split_train_test(splits["train"], seed)
    rows = {"train": train, "test": test, "dev": splits["dev"], "ood": splits["ood"]}
    _write_all(out_dir, {f"{name}.csv": _csv_text(split) for name, split in rows.items()})
    return PreparedCola(out_dir=out_dir, counts={name: len(split) for name, split in rows.items()})
