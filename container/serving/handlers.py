"""The user module and the handler functions the runtime calls (S14, S16-S18).

What the toolkit checks on the first request, we check when the module loads: a missing
context argument or a transform_fn conflict is a start-up error, so /ping reports it before any
traffic arrives instead of every request failing on a healthy endpoint.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from container.serving.context import Context

# Positional arguments each handler takes without the optional trailing `context` (S16, S18).
ARITY = {
    "pre_model_fn": 1,
    "model_fn": 1,
    "model_warmup_fn": 2,
    "input_fn": 2,
    "predict_fn": 2,
    "output_fn": 2,
    "transform_fn": 4,
    # Beyond the toolkit (S27): the predictions for a whole batch in one call. The AWS images
    # ignore it and call predict_fn once per request, so a module that defines both serves
    # correctly on either.
    "predict_batch_fn": 2,
}
TRANSFORM_FN_CONFLICT = (
    "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
    "and/or output_fn implementation"
)


class DefaultHandlers(Protocol):
    """The framework defaults used for whatever the user module leaves out (S19-S22)."""

    def model_fn(self, model_dir: str, context: Context) -> Any: ...

    def input_fn(self, input_data: str | bytes, content_type: str | None, context: Context) -> Any:
        ...

    def predict_fn(self, data: Any, model: Any, context: Context) -> Any: ...

    def output_fn(self, prediction: Any, accept: str, context: Context) -> Any: ...


@dataclass(frozen=True)
class Handler:
    """A handler function and whether it gets the context as its last argument (S18)."""

    name: str
    function: Callable[..., Any]
    takes_context: bool

    def __call__(self, context: Context, *args: Any) -> Any:
        if self.takes_context:
            return self.function(*args, context)
        return self.function(*args)


def bind(name: str, function: object) -> Handler:
    """S18: n parameters, or n + 1 with the context last; anything else is a TypeError."""
    if not callable(function):
        raise TypeError(f"{name} must be a function, not {type(function).__name__}")
    expected = ARITY[name]
    try:
        # All parameters count, defaulted ones too, as in the toolkit.
        count = len(inspect.signature(function).parameters)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot read its signature: {exc}") from exc
    if count not in (expected, expected + 1):
        raise TypeError(
            f"{name} takes {count} arguments but {expected} were given "
            f"({expected + 1} if the last one is the context)."
        )
    return Handler(name, function, takes_context=count == expected + 1)


@dataclass(frozen=True)
class HandlerSet:
    source: str
    pre_model_fn: Handler | None
    model_fn: Handler
    model_warmup_fn: Handler | None
    # The user's transform_fn, or None for the input_fn -> predict_fn -> output_fn chain (S11).
    transform_fn: Handler | None
    input_fn: Handler
    predict_fn: Handler
    output_fn: Handler
    # predict_fn for a list of input_fn results, returning one prediction each; None when the
    # module defines none (then a batch runs the chain once per request).
    predict_batch_fn: Handler | None

    def transform(
        self,
        model: Any,
        input_data: str | bytes,
        content_type: str | None,
        accept: str,
        context: Context,
    ) -> Any:
        """S11: the user's transform_fn, else output_fn(predict_fn(input_fn(...)))."""
        if self.transform_fn is not None:
            return self.transform_fn(context, model, input_data, content_type, accept)
        data = self.input_fn(context, input_data, content_type)
        prediction = self.predict_fn(context, data, model)
        return self.output_fn(context, prediction, accept)


def _is_under(path_text: str | None, directory: Path) -> bool:
    if not path_text:
        return False
    try:
        return Path(path_text).resolve().is_relative_to(directory)
    except (OSError, ValueError):
        return False


def forget_code_dir(code_dir: Path, module_name: str) -> None:
    """Drop the user module and its sibling modules from the import system, so the next import
    reads the files again (a reload, or another model directory in the same process)."""
    directory = code_dir.resolve()
    for name, module in list(sys.modules.items()):
        if name == module_name or _is_under(getattr(module, "__file__", None), directory):
            del sys.modules[name]
            # A .pyc records its source's mtime in whole seconds: a same-size edit within the
            # second would otherwise import the old code again. The code dir may be read-only.
            cached = getattr(module, "__cached__", None)
            if isinstance(cached, str) and _is_under(cached, directory):
                with suppress(OSError):
                    Path(cached).unlink()
    entry = str(code_dir)
    while entry in sys.path:
        sys.path.remove(entry)
    importlib.invalidate_caches()


def load_user_module(code_dir: Path, module_name: str) -> ModuleType | None:
    """S14: import `module_name` from `code_dir` (prepended to sys.path); None if it is not
    there, which means the defaults serve everything. Import errors propagate."""
    forget_code_dir(code_dir, module_name)
    if importlib.machinery.PathFinder.find_spec(module_name, [str(code_dir)]) is None:
        return None
    # On sys.path, so the module can import its siblings as it does on the real image.
    sys.path.insert(0, str(code_dir))
    return importlib.import_module(module_name)


def resolve_handlers(module: ModuleType | None, defaults: DefaultHandlers) -> HandlerSet:
    """S16/S17: the user's functions where defined, the defaults elsewhere."""
    found: dict[str, object] = {}
    if module is not None:
        for name in ARITY:
            value = getattr(module, name, None)
            if value is not None:
                found[name] = value
    if "transform_fn" in found and any(
        name in found for name in ("input_fn", "predict_fn", "output_fn")
    ):
        raise ValueError(TRANSFORM_FN_CONFLICT)

    def user_or_default(name: str, default: Callable[..., Any]) -> Handler:
        return bind(name, found.get(name, default))

    def user_only(name: str) -> Handler | None:
        return bind(name, found[name]) if name in found else None

    pre_model_fn = user_only("pre_model_fn")
    model_warmup_fn = user_only("model_warmup_fn")
    model_fn = user_or_default("model_fn", defaults.model_fn)
    source = (
        f"user module {module.__name__} ({module.__file__})"
        if module is not None
        else "the default handlers (no user module)"
    )
    return HandlerSet(
        source=source,
        pre_model_fn=pre_model_fn,
        model_fn=model_fn,
        model_warmup_fn=model_warmup_fn,
        transform_fn=user_only("transform_fn"),
        input_fn=user_or_default("input_fn", defaults.input_fn),
        predict_fn=user_or_default("predict_fn", defaults.predict_fn),
        output_fn=user_or_default("output_fn", defaults.output_fn),
        # With transform_fn there is no predict step to batch.
        predict_batch_fn=None if "transform_fn" in found else user_only("predict_batch_fn"),
    )
