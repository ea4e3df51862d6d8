"""Every `smlocal` command answers bad arguments and missing files with exit 2 and one line
(issue 14 item 6): argparse's usage and its error line for a bad argument, one line and no
traceback for a file or directory that is not there.

The bad-argument cases are generated from the parser, so a new subcommand is covered the day it
is added; the missing-file cases are a table, one row per option that names a file.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import build_parser, main

MISSING = "/nonexistent/smlocal-test"


def leaf_commands(parser: argparse.ArgumentParser,
                  prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                   argparse.ArgumentParser]]:
    """Every runnable command path (`("local-mode", "fit")`, ...) with its parser."""
    subparsers = [action for action in parser._actions
                  if isinstance(action, argparse._SubParsersAction)]
    if not subparsers:
        yield prefix, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from leaf_commands(child, (*prefix, name))


COMMANDS = sorted(path for path, _ in leaf_commands(build_parser()))


def test_the_table_knows_every_command() -> None:
    assert ("train",) in COMMANDS and ("local-mode", "deploy") in COMMANDS
    assert len(COMMANDS) >= 14


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own exit
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_usage_error(code: int, err: str, command: tuple[str, ...]) -> None:
    """argparse's answer: a usage block, then one `PROG: error: ...` line. An unrecognized option
    is reported by the top-level parser (usage: smlocal ...), a bad or missing value by the
    command's own."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines[0].startswith("usage: smlocal"), err
    assert lines[-1].startswith("smlocal") and ": error: " in lines[-1], err
    assert sum(": error: " in line for line in lines) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS, ids=["-".join(c) for c in COMMANDS])
def test_an_unknown_option_exits_2_with_usage_and_one_error_line(
        command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([*command, "--no-such-option"], capsys)
    assert_usage_error(code, err, command)


@pytest.mark.parametrize("command", COMMANDS, ids=["-".join(c) for c in COMMANDS])
def test_an_option_given_a_bad_value_or_a_missing_argument_exits_2(
        command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """The last option of each command without its value, or a required argument left out."""
    parser = dict(leaf_commands(build_parser()))[command]
    options = [a for a in parser._actions if a.option_strings and a.nargs != 0
               and not isinstance(a, argparse._HelpAction)]
    argv = [*command, options[-1].option_strings[-1]] if options else [*command, "a", "b", "c"]
    code, _, err = run(argv, capsys)
    assert_usage_error(code, err, command)


# One row per option that names a file or directory: the command line with MISSING in it.
MISSING_FILES = {
    "data-cola-source": ["data", "cola", "--source", f"{MISSING}.zip", "--out", "{tmp}/out"],
    "train-data": ["train", "--data", MISSING, "--work-dir", "{tmp}/job"],
    "train-code": ["train", "--data", "{data}", "--code", MISSING, "--work-dir", "{tmp}/job"],
    "serve-model-dir": ["serve", "--model-dir", MISSING, "--port", "0"],
    "serve-code": ["serve", "--model-dir", "{tmp}", "--code", MISSING, "--port", "0"],
    "contract-model-dir": ["contract", "--target", "asgi", "--model-dir", MISSING],
    "contract-cases": ["contract", "--target", "asgi", "--model-dir", "{tmp}", "--cases",
                       f"{MISSING}.yaml"],
    "package-model-dir": ["package", "--model-dir", MISSING, "-o", "{tmp}/m.tar.gz"],
    "package-code": ["package", "--model-dir", "{tmp}", "--code", MISSING,
                     "-o", "{tmp}/m.tar.gz"],
    "validate-archive": ["validate", f"{MISSING}.tar.gz"],
    "validate-cases": ["validate", "{archive}", "--cases", f"{MISSING}.yaml"],
    "trace-model-dir": ["trace", "--model-dir", MISSING, "--out", "{tmp}/t.tar.gz"],
    "local-mode-fit-data": ["local-mode", "fit", "--data", MISSING, "--root", "{tmp}/root"],
    "local-mode-fit-code": ["local-mode", "fit", "--data", "{data}", "--code", MISSING,
                            "--root", "{tmp}/root"],
    "local-mode-deploy-model-data": ["local-mode", "deploy", "--model-data",
                                     f"{MISSING}.tar.gz", "--root", "{tmp}/root"],
    "local-mode-deploy-no-model": ["local-mode", "deploy", "--root", "{tmp}/empty-root"],
}


@pytest.mark.parametrize("row", sorted(MISSING_FILES))
def test_a_missing_file_exits_2_with_one_line(row: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("label,sentence\n1,Good.\n")
    (data / "test.csv").write_text("label,sentence\n0,Bad bad.\n")
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"")
    argv = [part.format(tmp=tmp_path, data=data, archive=archive) for part in MISSING_FILES[row]]
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("smlocal "), err
    assert "Traceback" not in err
