"""`smlocal package`: model.tar.gz laid out as the SageMaker SDK's repack lays it out (L5): the
model files at the top, the handler directory as code/ (S14)."""

from __future__ import annotations

import os
import tarfile

import pytest

from harness.cli import main
from harness.package import PackageError, package_model


def members(path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


@pytest.fixture
def model_and_code(tmp_path, handler_sources):
    model = tmp_path / "trained"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "vocab.txt").write_text("a\n")
    code = tmp_path / "handlers"
    (code / "__pycache__").mkdir(parents=True)
    (code / "inference.py").write_text(handler_sources.tiny_handler)
    (code / "requirements.txt").write_text("pyyaml\n")
    (code / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\0")
    return model, code


def test_l5_model_files_at_the_top_and_the_handlers_under_code(model_and_code, tmp_path):
    model, code = model_and_code
    packaged = package_model(model, code, tmp_path / "out" / "model.tar.gz")
    assert list(members(packaged.path)) == [
        "config.json", "sub", "sub/vocab.txt",
        "code", "code/inference.py", "code/requirements.txt",
    ]
    assert (packaged.model_files, packaged.code_files) == (2, 2)
    assert all(info.uid == 0 and info.uname == "" for info in members(packaged.path).values())
    with tarfile.open(packaged.path, "r:gz") as archive:
        extracted = archive.extractfile("code/inference.py")
        assert extracted is not None
        assert extracted.read().decode() == code.joinpath("inference.py").read_text()


def test_l5_a_code_directory_in_the_model_is_replaced_as_the_sdk_does(model_and_code, tmp_path):
    model, code = model_and_code
    (model / "code").mkdir()
    (model / "code" / "stale.py").write_text("")
    names = list(members(package_model(model, code, tmp_path / "model.tar.gz").path))
    assert "code/stale.py" not in names
    assert "code/inference.py" in names


def test_links_are_stored_as_the_files_they_point_to(model_and_code, tmp_path):
    model, code = model_and_code
    (tmp_path / "weights.bin").write_bytes(b"w" * 10)
    os.symlink(tmp_path / "weights.bin", model / "weights.bin")
    info = members(package_model(model, code, tmp_path / "model.tar.gz").path)["weights.bin"]
    assert info.isfile() and info.size == 10


def test_an_archive_written_into_the_model_directory_does_not_contain_itself(model_and_code):
    model, code = model_and_code
    package_model(model, code, model / "model.tar.gz")
    names = members(package_model(model, code, model / "model.tar.gz").path)
    assert "model.tar.gz" not in names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda model, code: (code / "inference.py").rename(code / "serve.py"),
         r"handlers/inference.py does not exist: SageMaker imports SAGEMAKER_PROGRAM "
         r"\(inference.py\) from code/ \(S14\); .py files in .*handlers: serve.py"),
        (lambda model, code: [path.unlink() for path in model.rglob("*") if path.is_file()],
         "holds no model files"),
        (lambda model, code: os.symlink(model / "gone", model / "dangling"),
         "dangling is a link to .*gone, which does not exist"),
    ],
)
def test_inputs_that_would_not_serve_are_refused(model_and_code, tmp_path, change, message):
    model, code = model_and_code
    change(model, code)
    with pytest.raises(PackageError, match=message):
        package_model(model, code, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


def test_cli_prints_the_archive_and_exits_0_or_2(model_and_code, tmp_path, capsys):
    model, code = model_and_code
    out = tmp_path / "model.tar.gz"
    assert main(["package", "--model-dir", str(model), "--code", str(code), "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}\t2 model files, 2 in code/\t")
    assert main(["package", "--model-dir", str(tmp_path / "nope"), "--code", str(code),
                 "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"smlocal package: error: model directory {tmp_path / 'nope'} does not exist")
