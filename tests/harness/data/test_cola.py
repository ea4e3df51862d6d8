"""`smlocal data cola` on the real CoLA archive."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.data.cola import DataError, prepare_cola


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_counts_columns_and_split(cola_dir: Path) -> None:
    counts = {name: len(read_rows(cola_dir / f"{name}.csv")) for name in
              ("train", "test", "dev", "ood")}
    assert counts == {"train": 6413, "test": 2138, "dev": 527, "ood": 516}
    with (cola_dir / "train.csv").open(encoding="utf-8") as handle:
        assert handle.readline().strip() == "label,sentence"
    labels = {row["label"] for row in read_rows(cola_dir / "test.csv")}
    assert labels == {"0", "1"}


def test_train_and_test_partition_in_domain_train(cola_dir: Path, cola_zip: Path) -> None:
    with zipfile.ZipFile(cola_zip) as archive:
        raw = archive.read("cola_public/raw/in_domain_train.tsv").decode("utf-8")
    expected = sorted(
        (fields[1], fields[3]) for fields in (line.split("\t") for line in raw.splitlines())
    )
    both = read_rows(cola_dir / "train.csv") + read_rows(cola_dir / "test.csv")
    assert sorted((row["label"], row["sentence"]) for row in both) == expected


def test_sentences_with_commas_and_quotes_round_trip(cola_dir: Path) -> None:
    sentences = [row["sentence"] for row in read_rows(cola_dir / "train.csv")]
    assert any("," in s for s in sentences)
    assert any('"' in s for s in sentences)


def test_split_is_deterministic_and_seeded(cola_zip: Path, tmp_path: Path) -> None:
    first = prepare_cola(str(cola_zip), tmp_path / "a")
    again = prepare_cola(str(cola_zip), tmp_path / "b")
    other = prepare_cola(str(cola_zip), tmp_path / "c", seed=7)
    train = (first.path("train")).read_bytes()
    assert train == again.path("train").read_bytes()
    assert train != other.path("train").read_bytes()


def test_cli_prints_the_files(cola_zip: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "cola", "--source", str(cola_zip), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'train.csv'}\t6413 rows" in out


def _zip_with(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a zip file", "is not a zip archive"),
        (_zip_with({"readme.txt": "hello"}), "is not the CoLA archive"),
        (_zip_with({
            "cola_public/raw/in_domain_train.tsv": "gj04\t1\t\tGood.\nbroken line\n",
            "cola_public/raw/in_domain_dev.tsv": "gj04\t1\t\tGood.\n",
            "cola_public/raw/out_of_domain_dev.tsv": "gj04\t1\t\tGood.\n",
        }), "line 2 is not a CoLA row"),
    ],
)
def test_bad_archive_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "cola.zip"
    source.write_bytes(content)
    out = tmp_path / "out"
    assert main(["data", "cola", "--source", str(source), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not out.exists() or not any(out.iterdir())


def test_truncated_archive_is_rejected(cola_zip: Path, tmp_path: Path) -> None:
    source = tmp_path / "cut.zip"
    source.write_bytes(cola_zip.read_bytes()[: 100_000])
    with pytest.raises(DataError):
        prepare_cola(str(source), tmp_path / "out")


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        prepare_cola(str(tmp_path / "nope.zip"), tmp_path / "out")


def test_failed_run_keeps_previous_outputs(cola_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_cola(str(cola_zip), out)
    before = (out / "train.csv").read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"junk")
    with pytest.raises(DataError):
        prepare_cola(str(bad), out)
    assert (out / "train.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["dev.csv", "ood.csv", "test.csv", "train.csv"]
