"""Feature packages plug into the app, the CLI and the demo by fixed module names. A package
that is not installed is skipped; one that is present but broken fails loudly."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from types import ModuleType


def optional_modules(names: Iterable[str]) -> Iterator[ModuleType]:
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            parts = name.split(".")
            missing_self_or_parent = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
            if exc.name not in missing_self_or_parent:
                raise
