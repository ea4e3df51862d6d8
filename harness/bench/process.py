"""Memory and open files of a server: the process it started as and every descendant (workers,
TorchServe's JVM and its Python backends; in a container, everything under its PID 1)."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class TreeFigures:
    processes: int
    # Summed over the tree: shared pages (torch's libraries in forked workers) count once per
    # process, so RSS overstates a multi-process server and PSS is the fair total.
    rss_bytes: int
    pss_bytes: int | None
    open_files: int
    threads: int

    @property
    def rss_mb(self) -> float:
        return self.rss_bytes / 2**20

    @property
    def pss_mb(self) -> float | None:
        return None if self.pss_bytes is None else self.pss_bytes / 2**20


def tree_figures(pid: int) -> TreeFigures:
    """Figures of `pid` and its descendants; processes that exit meanwhile are skipped.
    Raises psutil.NoSuchProcess if `pid` itself is gone."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    rss = pss = fds = threads = 0
    pss_known = True
    counted = 0
    for process in processes:
        try:
            with process.oneshot():
                memory = process.memory_info()
                rss += memory.rss
                fds += process.num_fds()
                threads += process.num_threads()
            try:
                pss += getattr(process.memory_full_info(), "pss", 0)
            except psutil.AccessDenied:
                pss_known = False
            counted += 1
        except psutil.NoSuchProcess:
            if process is root:
                raise
    return TreeFigures(processes=counted, rss_bytes=rss, pss_bytes=pss if pss_known else None,
                       open_files=fds, threads=threads)
