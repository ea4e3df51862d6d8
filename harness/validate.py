"""`smlocal validate model.tar.gz`: would this archive serve on a SageMaker PyTorch endpoint?

In order, each step only when the earlier ones allow it: the archive reads as gzip-compressed
tar; every member is a plain file or directory with a safe relative name; the layout is the one
SageMaker unpacks into /opt/ml/model (model files at the top, code/ with the entry point); code/
requirements.txt resolves with pip (S15, a dry run: nothing is installed); the entry point
imports and its handlers obey S14, S17 and S18; model_fn loads the model; and the contract suite
passes against the archive served in-process.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from harness.package import CODE_DIR, entry_point_file
from harness.testing.asgi import AsgiTarget
from harness.testing.contract import Contract, ContractFileError, load_contract
from harness.testing.report import Report
from harness.testing.suite import run_suite

GZIP_MAGIC = b"\x1f\x8b"
PIP_TIMEOUT_S = 300.0
PIP_TAIL_CHARS = 1500
SHOWN_MEMBERS = 5


class ValidateUsageError(Exception):
    """validate cannot start (exit 2): no such archive, or an unusable contract file."""


@dataclass(frozen=True)
class Finding:
    step: str
    ok: bool
    message: str


@dataclass
class Validation:
    archive: Path
    findings: list[Finding] = field(default_factory=list)
    report: Report | None = None

    @property
    def passed(self) -> bool:
        return bool(self.findings) and all(finding.ok for finding in self.findings)

    def add(self, step: str, ok: bool, message: str) -> bool:
        self.findings.append(Finding(step, ok, message))
        return ok

    def render(self) -> str:
        width = max(len(finding.step) for finding in self.findings)
        lines = [f"validate {self.archive}", ""]
        for finding in self.findings:
            mark = "PASS" if finding.ok else "FAIL"
            first, *rest = finding.message.splitlines() or [""]
            lines.append(f"  {mark}  {finding.step:<{width}}  {first}")
            lines.extend(f"{' ' * (10 + width)}{line}" for line in rest)
        if self.report is not None:
            lines += ["", self.report.render()]
        problems = sum(1 for finding in self.findings if not finding.ok)
        lines.append("")
        lines.append(f"{self.archive.name} would serve." if self.passed else
                     f"{self.archive.name} would not serve: {problems} problem(s) above.")
        return "\n".join(lines)


def _member_name(name: str) -> str:
    """`./config.json` -> `config.json` (tar -C DIR . writes the ./ prefix)."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _unsafe(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts or "\\" in name:
        return "a path that leaves the model directory" if ".." in PurePosixPath(
            name).parts else "a path with a backslash"
    if member.issym() or member.islnk():
        return f"a {'symbolic' if member.issym() else 'hard'} link to {member.linkname}"
    if not (member.isfile() or member.isdir()):
        return "a device, FIFO or other special file"
    return None


def check_paths(validation: Validation, members: list[tarfile.TarInfo]) -> bool:
    problems = [f"{member.name}: {reason}" for member in members
                if (reason := _unsafe(member)) is not None]
    if not problems:
        return validation.add("paths", True, f"{len(members)} members, all plain files and "
                              "directories with relative paths inside the archive")
    shown = problems[:SHOWN_MEMBERS]
    more = len(problems) - len(shown)
    return validation.add(
        "paths", False,
        f"{len(problems)} unsafe member(s); SageMaker extracts into /opt/ml/model, so these "
        "would escape it or be refused: rebuild the archive from real files "
        "(`smlocal package` stores links as files)\n" + "\n".join(shown)
        + (f"\n... and {more} more" if more else ""),
    )


def check_layout(validation: Validation, names: list[str], program: str) -> bool:
    files = [name for name in names if name]
    code_files = [name for name in files if name.startswith(f"{CODE_DIR}/")]
    model_files = [name for name in files if name != CODE_DIR and not name.startswith(
        f"{CODE_DIR}/")]
    entry = f"{CODE_DIR}/{program}"
    ok = True
    if entry not in code_files:
        nested = [name for name in files if name.endswith(f"/{entry}")]
        hint = (f"it is at {nested[0]}: the archive has an extra top-level directory; create it "
                "from inside the model directory (`tar -C DIR -czf model.tar.gz .` or "
                "`smlocal package`)" if nested else
                f"code/ holds: {', '.join(sorted(code_files)) or 'nothing'}")
        ok = validation.add("layout", False,
                            f"{entry} is missing: SageMaker imports SAGEMAKER_PROGRAM ({program}) "
                            f"from /opt/ml/model/code (S14); {hint}")
    top_level = {name.split("/", 1)[0] for name in model_files}
    top_files = [name for name in model_files if "/" not in name]
    if not model_files:
        ok = validation.add("layout", False, "no model files outside code/: model_fn would find "
                            "nothing in /opt/ml/model")
    elif not top_files and len(top_level) == 1:
        wrapper = next(iter(top_level))
        ok = validation.add(
            "layout", False,
            f"every model file is under {wrapper}/: SageMaker unpacks into /opt/ml/model, so "
            f"model_fn(model_dir) would find them in /opt/ml/model/{wrapper}; create the archive "
            f"from inside the directory (`tar -C {wrapper} -czf model.tar.gz .`)")
    if ok:
        extra = ", code/requirements.txt" if f"{CODE_DIR}/requirements.txt" in files else (
            " (no code/requirements.txt: nothing is installed before model_fn, S15)")
        validation.add("layout", True, f"{len(top_files)} model file(s) at the top, "
                       f"{len(model_files) - len(top_files)} below; {entry}{extra}")
    return ok


def check_requirements(validation: Validation, requirements: Path, python: str,
                       timeout_s: float = PIP_TIMEOUT_S) -> bool:
    """S15 as a dry run: pip resolves every requirement against this environment and the index
    (pip's own configuration applies, e.g. PIP_NO_INDEX, PIP_FIND_LINKS)."""
    if not requirements.is_file():
        return True
    command = [python, "-m", "pip", "install", "--dry-run", "--no-input",
               "--disable-pip-version-check", "-r", str(requirements)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                check=False)
    except subprocess.TimeoutExpired:
        return validation.add("S15", False, f"pip could not resolve code/requirements.txt within "
                              f"{timeout_s:g} s (is the package index reachable?)")
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        return validation.add(
            "S15", False,
            "code/requirements.txt does not install (`pip install --dry-run -r` failed); the "
            "endpoint would fail at start-up. pip said:\n" + output[-PIP_TAIL_CHARS:])
    return validation.add("S15", True, "code/requirements.txt resolves "
                          "(pip install --dry-run: nothing installed)")


def check_handlers(validation: Validation, code_dir: Path, module_name: str) -> bool:
    """S14 (the module imports), S17 (no transform_fn conflict), S18 (arities), with the
    serving runtime's own loading code."""
    from container.serving.defaults import PyTorchDefaults
    from container.serving.handlers import (
        TRANSFORM_FN_CONFLICT,
        forget_code_dir,
        load_user_module,
        resolve_handlers,
    )

    entry = f"{CODE_DIR}/{module_name}.py"
    try:
        try:
            module = load_user_module(code_dir, module_name)
        except Exception as exc:
            hint = (" — add the package to code/requirements.txt (S15) or the module to code/"
                    if isinstance(exc, ImportError) else "")
            return validation.add("S14", False, f"importing {entry} raised "
                                  f"{type(exc).__name__}: {exc}{hint}")
        if module is None:
            return validation.add("S14", False, f"{entry} is not importable")
        validation.add("S14", True, f"{entry} imports as module {module_name}")
        try:
            resolve_handlers(module, PyTorchDefaults(accelerator_present=False))
        except ValueError as exc:
            if str(exc) != TRANSFORM_FN_CONFLICT:
                raise
            return validation.add("S17", False, f"{exc}: define transform_fn alone, or "
                                  "input_fn/predict_fn/output_fn without it")
        except TypeError as exc:
            validation.add("S17", True, "transform_fn is not combined with the other handlers")
            return validation.add("S18", False, f"{exc} (S18: each handler takes its own "
                                  "arguments plus, optionally, a trailing context)")
        validation.add("S17", True, "transform_fn is not combined with the other handlers")
        return validation.add("S18", True, "every handler takes its arguments "
                              "(and at most a trailing context)")
    finally:
        forget_code_dir(code_dir, module_name)


@contextmanager
def _scratch(work_dir: Path | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="smlocal-validate-", dir=work_dir) as path:
        yield Path(path)


def check_serving(validation: Validation, model_dir: Path, program: str,
                  contract: Contract | None) -> bool:
    """model_fn loads the model, then the contract suite runs against the app in-process.
    Requirements are not installed here (S15 was the dry run): this environment stays as is."""
    contract_file = model_dir / CODE_DIR / "contract.yaml"
    if contract is not None:
        source = contract.source
    elif contract_file.is_file():
        source = "code/contract.yaml"
        try:
            contract = replace(load_contract(contract_file), source=source)
        except ContractFileError as exc:
            return validation.add("contract", False, str(exc).replace(str(contract_file), source))
    else:
        source = "built-in checks only: no code/contract.yaml"
    started = time.perf_counter()
    with AsgiTarget.serving(model_dir, model_dir / CODE_DIR,
                            environ={"SAGEMAKER_PROGRAM": program},
                            install_requirements=False) as target:
        if target.load_failure is not None:
            return validation.add("model", False, f"model_fn failed, so /ping would stay 500 "
                                  f"(S2): {target.load_failure}")
        validation.add("model", True, f"model_fn loaded the model in "
                       f"{time.perf_counter() - started:.1f} s")
        report = run_suite(target, contract or Contract(), target_name="the archive, in-process")
    validation.report = report
    if report.passed:
        return validation.add("contract", True, f"{len(report.results)} checks passed ({source})")
    return validation.add("contract", False, f"{len(report.failures)} of {len(report.results)} "
                          f"checks failed ({source}); see the report below")


def validate_archive(
    archive: Path,
    *,
    entry_point: str = "inference.py",
    cases: Path | None = None,
    requirements: bool = True,
    python: str = sys.executable,
    work_dir: Path | None = None,
) -> Validation:
    """Every check, in order; stops at the first step that makes the later ones meaningless."""
    if not archive.is_file():
        raise ValidateUsageError(f"{archive} does not exist")
    try:
        contract = load_contract(cases) if cases is not None else None
    except ContractFileError as exc:
        raise ValidateUsageError(str(exc)) from exc
    validation = Validation(archive)
    program = entry_point_file(entry_point)
    with archive.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    try:
        with tarfile.open(archive, "r:*") as tar, _scratch(work_dir) as scratch:
            members = tar.getmembers()
            if not validation.add(
                "archive", compressed,
                f"gzip-compressed tar, {len(members)} members" if compressed else
                "a tar archive but not gzip-compressed: SageMaker expects model.tar.gz "
                "(tar -czf)",
            ):
                return validation
            if not check_paths(validation, members):
                return validation
            if not check_layout(validation, [_member_name(m.name) for m in members], program):
                return validation
            model_dir = scratch / "model"
            tar.extractall(model_dir, filter="data")
            code_dir = model_dir / CODE_DIR
            if requirements and not check_requirements(
                validation, code_dir / "requirements.txt", python
            ):
                return validation
            if not check_handlers(validation, code_dir, program.removesuffix(".py")):
                return validation
            check_serving(validation, model_dir, program, contract)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        validation.add("archive", False, f"not a readable tar.gz archive: {exc}")
    return validation
