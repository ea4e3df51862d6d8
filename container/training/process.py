"""Running a child process the way the training toolkit does, and describing its failure (T11)."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

# How much of the child's stderr is kept to explain a failure.
_TAIL_LINES = 200
_OOM_EXIT_CODE = 137


class ProcessError(Exception):
    """A child process (pip, the user's script) exited non-zero.

    `str()` is the text of `/opt/ml/output/failure`, in the toolkit's format, so that a
    FailureReason reads the same locally and in the cloud.
    """

    def __init__(
        self, name: str, exit_code: int, error_message: str, command: Sequence[str]
    ) -> None:
        self.name = name
        self.exit_code = exit_code
        self.error_message = error_message
        self.command = list(command)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = (
            f"{self.name}:\nExitCode {self.exit_code}\nErrorMessage \"{self.error_message}\"\n"
            f"Command \"{' '.join(self.command)}\""
        )
        if self.exit_code == _OOM_EXIT_CODE:
            text += (
                "\nOutOfMemoryError: the process was killed with SIGKILL (exit code 137), "
                "which usually means it ran out of memory"
            )
        return text


def error_message_from(stderr_lines: Sequence[str]) -> str:
    """The last Python error of a stderr stream: the exception lines closing its last traceback,
    or the last few lines when there is no traceback."""
    lines = [line.rstrip("\n") for line in stderr_lines]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if starts:
        block = lines[starts[-1] + 1 :]
        # Frames are indented; the exception (possibly several lines) follows the last frame.
        last_frame = max((i for i, line in enumerate(block) if line.startswith(" ")), default=-1)
        message = [line for line in block[last_frame + 1 :] if line.strip()]
        if message:
            return "\n".join(message)
    return "\n".join([line for line in lines if line.strip()][-5:])


def _pump(source: IO[str], sink: IO[str], tail: collections.deque[str]) -> None:
    for line in source:
        sink.write(line)
        sink.flush()
        tail.append(line)


def run_command(
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None,
    error_name: str,
) -> None:
    """Run `command`, stdout passed through, stderr passed through and remembered.

    SIGTERM sent to this process is forwarded to the child (T6), so a stopped job stops its script.
    Raises ProcessError on a non-zero exit.
    """
    child = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert child.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    reader = threading.Thread(target=_pump, args=(child.stderr, sys.stderr, tail), daemon=True)
    reader.start()
    previous = _forward_sigterm(child)
    try:
        exit_code = child.wait()
    finally:
        _restore_sigterm(previous)
        reader.join()
    if exit_code < 0:  # killed by a signal: report it as a shell would (128 + N)
        exit_code = 128 - exit_code
    if exit_code != 0:
        raise ProcessError(error_name, exit_code, error_message_from(tail), command)


_Handler = signal.Handlers | int | None | object


def _forward_sigterm(child: subprocess.Popen[str]) -> _Handler:
    if threading.current_thread() is not threading.main_thread():
        return None

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    return signal.signal(signal.SIGTERM, forward)


def _restore_sigterm(previous: _Handler) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]
