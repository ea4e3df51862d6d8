"""`smlocal validate model.tar.gz`: exit 0 only for an archive that would serve; each class of
problem is caught at its step with a message that says what to change."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap

import pytest

from harness.cli import main
from harness.package import package_model
from harness.validate import ValidateUsageError, validate_archive

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def regular(name: str, data: bytes | str = b"") -> tuple[tarfile.TarInfo, bytes]:
    raw = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    return info, raw


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, b""


def write_archive(path, entries, *, compressed: bool = True):
    with tarfile.open(path, "w:gz" if compressed else "w") as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


@pytest.fixture
def tiny_entries(handler_sources):
    """The members of a good archive for the tiny handler, its contract inside."""

    def entries(handler: str = handler_sources.tiny_handler, *, prefix: str = "",
                contract: bool = True, requirements: str | None = None):
        listed = [regular(f"{prefix}scale.json", json.dumps({"scale": 3.0})),
                  regular(f"{prefix}code/inference.py", textwrap.dedent(handler))]
        if contract:
            listed.append(regular(f"{prefix}code/contract.yaml",
                                  textwrap.dedent(handler_sources.tiny_contract)))
        if requirements is not None:
            listed.append(regular(f"{prefix}code/requirements.txt", requirements))
        return listed

    return entries


def steps(validation) -> list[tuple[str, bool]]:
    return [(finding.step, finding.ok) for finding in validation.findings]


def failure(validation) -> str:
    failed = [finding for finding in validation.findings if not finding.ok]
    assert failed, validation.render()
    return failed[0].message


def test_a_good_archive_passes_every_step_and_its_contract(tmp_path, tiny_entries, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pyyaml is installed here: no index needed
    archive = write_archive(tmp_path / "model.tar.gz",
                            tiny_entries(requirements="pyyaml>=6\n"))
    validation = validate_archive(archive)
    assert validation.passed, validation.render()
    assert steps(validation) == [(step, True) for step in (
        "archive", "paths", "layout", "S15", "S14", "S17", "S18", "model", "contract")]
    assert validation.report is not None and len(validation.report.results) == 15
    assert validation.render().endswith("model.tar.gz would serve.")


def test_s14_s15_project_handlers_packaged_with_a_bert_would_serve(
    tmp_path, bert_model_dir, handler_sources, monkeypatch
):
    """`smlocal package` then `smlocal validate`, on what train.py saves; the statuses-only
    contract (the untrained classifier head has no reliable classes)."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # handlers/requirements.txt is installed here
    archive = package_model(bert_model_dir, handler_sources.handlers,
                            tmp_path / "model.tar.gz").path
    cases = tmp_path / "cases.yaml"
    cases.write_text(handler_sources.cola_any_model_contract)
    validation = validate_archive(archive, cases=cases)
    assert validation.passed, validation.render()
    assert "code/requirements.txt resolves" in validation.render()


def test_an_archive_that_is_not_gzip_compressed_is_refused(tmp_path, tiny_entries):
    archive = write_archive(tmp_path / "model.tar.gz", tiny_entries(), compressed=False)
    validation = validate_archive(archive)
    assert steps(validation) == [("archive", False)]
    assert "not gzip-compressed: SageMaker expects model.tar.gz (tar -czf)" in failure(validation)


@pytest.mark.parametrize("content", [b"\x1f\x8bnot really gzip", b"", b"plain text"])
def test_an_unreadable_archive_is_refused(tmp_path, content):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(content)
    validation = validate_archive(archive)
    assert steps(validation) == [("archive", False)]
    assert failure(validation).startswith("not a readable tar.gz archive: ")


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (regular("/etc/cron.d/job", "x"), "/etc/cron.d/job: an absolute path"),
        (regular("../outside.py", "x"), "../outside.py: a path that leaves the model directory"),
        (regular("code/../../x", "x"), "code/../../x: a path that leaves the model directory"),
        (special("weights.bin", tarfile.SYMTYPE, "/etc/passwd"),
         "weights.bin: a symbolic link to /etc/passwd"),
        (special("copy.json", tarfile.LNKTYPE, "scale.json"),
         "copy.json: a hard link to scale.json"),
        (special("pipe", tarfile.FIFOTYPE), "pipe: a device, FIFO or other special file"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_extracted(tmp_path, tiny_entries,
                                                                  member, reason):
    archive = write_archive(tmp_path / "model.tar.gz", [*tiny_entries(), member])
    validation = validate_archive(archive)
    assert steps(validation) == [("archive", True), ("paths", False)]
    message = failure(validation)
    assert message.startswith("1 unsafe member(s); SageMaker extracts into /opt/ml/model")
    assert message.splitlines()[-1] == reason


def test_l5_everything_under_one_directory_is_refused_with_the_tar_command(tmp_path,
                                                                          tiny_entries):
    archive = write_archive(tmp_path / "model.tar.gz", tiny_entries(prefix="model/"))
    validation = validate_archive(archive)
    messages = [finding.message for finding in validation.findings if not finding.ok]
    assert messages[0] == (
        "code/inference.py is missing: SageMaker imports SAGEMAKER_PROGRAM (inference.py) from "
        "/opt/ml/model/code (S14); it is at model/code/inference.py: the archive has an extra "
        "top-level directory; create it from inside the model directory (`tar -C DIR -czf "
        "model.tar.gz .` or `smlocal package`)")
    assert "every model file is under model/" in messages[1]
    assert "`tar -C model -czf model.tar.gz .`" in messages[1]


def test_s14_a_missing_entry_point_is_refused_naming_what_code_holds(tmp_path, tiny_entries):
    entries = [(info, data) if info.name != "code/inference.py" else
               regular("code/serve.py", data) for info, data in tiny_entries()]
    validation = validate_archive(write_archive(tmp_path / "model.tar.gz", entries))
    assert steps(validation)[-1] == ("layout", False)
    assert failure(validation).endswith("code/ holds: code/contract.yaml, code/serve.py")
    # The entry point is SAGEMAKER_PROGRAM: named, it is found.
    assert validate_archive(write_archive(tmp_path / "model.tar.gz", entries),
                            entry_point="serve").passed


def test_no_model_files_is_refused(tmp_path, tiny_entries):
    entries = [entry for entry in tiny_entries() if entry[0].name.startswith("code/")]
    validation = validate_archive(write_archive(tmp_path / "model.tar.gz", entries))
    assert "no model files outside code/" in failure(validation)


@pytest.mark.parametrize(
    ("requirements", "said"),
    [
        ("this is not a requirement!!\n", "Invalid requirement"),
        ("smlocal-no-such-package==1.0\n", "No matching distribution found"),
    ],
)
def test_s15_requirements_that_do_not_install_are_refused(tmp_path, tiny_entries, monkeypatch,
                                                         requirements, said):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: only what is installed resolves
    archive = write_archive(tmp_path / "model.tar.gz", tiny_entries(requirements=requirements))
    validation = validate_archive(archive)
    assert steps(validation)[-1] == ("S15", False)
    message = failure(validation)
    assert message.startswith("code/requirements.txt does not install (`pip install --dry-run "
                              "-r` failed); the endpoint would fail at start-up. pip said:")
    assert said in message


@pytest.mark.parametrize(
    ("edit", "step", "message"),
    [
        ({"import json\n": "import json\nimport smlocal_not_installed_anywhere\n"}, "S14",
         "importing code/inference.py raised ModuleNotFoundError: No module named "
         "'smlocal_not_installed_anywhere' — add the package to code/requirements.txt (S15) or "
         "the module to code/"),
        ({"import json\n": "import json\n1 / 0\n"}, "S14",
         "importing code/inference.py raised ZeroDivisionError: division by zero"),
        ({"def predict_fn": "def transform_fn(model, data, content_type, accept):\n"
                            "    return data\n\n\ndef predict_fn"}, "S17",
         "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
         "and/or output_fn implementation: define transform_fn alone, or "
         "input_fn/predict_fn/output_fn without it"),
        ({"def input_fn(body, content_type):": "def input_fn(body, content_type, context, x):"},
         "S18", "input_fn takes 4 arguments but 2 were given (3 if the last one is the "
                "context). (S18: each handler takes its own arguments plus, optionally, a "
                "trailing context)"),
        ({"with open(": "raise RuntimeError('weights missing')\n    with open("}, "model",
         "model_fn failed, so /ping would stay 500 (S2): RuntimeError: weights missing"),
    ],
)
def test_handler_rules_and_model_loading(tmp_path, tiny_entries, handler_sources, edit, step,
                                         message):
    handler = textwrap.dedent(handler_sources.tiny_handler)
    for old, new in edit.items():
        assert old in handler
        handler = handler.replace(old, new)
    validation = validate_archive(write_archive(tmp_path / "model.tar.gz",
                                                tiny_entries(handler)))
    assert steps(validation)[-1] == (step, False)
    assert failure(validation) == message


def test_a_handler_that_breaks_its_contract_is_refused_with_the_report(tmp_path, tiny_entries,
                                                                      handler_sources):
    handler = textwrap.dedent(handler_sources.tiny_handler).replace(
        "raise RequestError(415, ", "raise ValueError(")
    validation = validate_archive(write_archive(tmp_path / "model.tar.gz",
                                                tiny_entries(handler)))
    assert steps(validation)[-2:] == [("model", True), ("contract", False)]
    assert failure(validation) == ("2 of 15 checks failed (code/contract.yaml); see the report "
                                   "below")
    assert "FAIL  S24      Content-Type text/plain is refused with 415" in validation.render()


def test_without_a_contract_file_the_built_in_checks_run(tmp_path, tiny_entries):
    validation = validate_archive(write_archive(tmp_path / "model.tar.gz",
                                                tiny_entries(contract=False)))
    assert validation.passed, validation.render()
    assert validation.findings[-1].message == (
        "2 checks passed (built-in checks only: no code/contract.yaml)")


def test_cli_exit_codes(tmp_path, tiny_entries, capsys):
    good = write_archive(tmp_path / "good.tar.gz", tiny_entries())
    bad = write_archive(tmp_path / "bad.tar.gz", [*tiny_entries(), regular("../x", "")])
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("good.tar.gz would serve.")
    assert main(["validate", str(bad)]) == 1
    assert "bad.tar.gz would not serve: 1 problem(s) above." in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "nope.tar.gz")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"smlocal validate: error: {tmp_path / 'nope.tar.gz'} does not exist")
    (tmp_path / "broken.yaml").write_text("cases: 1")
    assert main(["validate", str(good), "--cases", str(tmp_path / "broken.yaml")]) == 2
    with pytest.raises(ValidateUsageError, match="cases: expected a list"):
        validate_archive(good, cases=tmp_path / "broken.yaml")
