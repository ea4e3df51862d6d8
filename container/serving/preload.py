"""Imported once by the forkserver that model workers fork from (container.serving.pool).

torch, and transformers with the modules its from_pretrained imports lazily, take about three
seconds to import; here they are imported once, and every worker, first or replacement, starts
with them in memory. The user module is never imported here: a reload must read it afresh.
A package that is not installed is skipped.
"""

from __future__ import annotations

import importlib

PRELOADED = (
    "numpy",
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    # The blog's model family: its modeling code is otherwise imported by every new worker.
    "transformers.models.bert.modeling_bert",
    "container.serving.defaults",
    "container.serving.worker",
)


def _preload() -> None:
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except Exception:  # a missing or broken package is the worker's to report
            continue


_preload()
