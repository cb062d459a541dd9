"""``FIELD=VALUE`` overrides of a config dataclass, typed by the dataclass's annotations.

Used by ``adaptrl eval --set`` and by the benchmark scripts' ``--set`` options.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

_NONE = ("none", "null")


def _convert(name: str, hint: Any, text: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(name, arg, text)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ValueError(f"{name} must be one of {', '.join(map(str, args))}, got {text!r}")
    if origin is tuple:
        item = args[0] if args else str
        parts = text.replace(",", " ").split()
        return tuple(_convert(name, item, p) for p in parts)
    if hint is bool:
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name}: cannot read {text!r} as bool (true/false)")
        return low in ("true", "1", "yes")
    if hint in (int, float, str):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"{name}: cannot read {text!r} as {hint.__name__}") from None
    raise ValueError(f"{name}: fields of type {hint} cannot be set from the command line")


def parse_overrides(items: list[str], config_cls: type) -> dict[str, Any]:
    """``["field=value", ...]`` -> ``{field: typed value}`` for the dataclass ``config_cls``.

    Dashes in field names may stand for underscores; ``none``/``null`` sets an optional field
    to None; tuples take comma- or space-separated items. Raises ``ValueError`` naming the
    field and what it accepts.
    """
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ValueError(
                f"expected FIELD=VALUE with FIELD one of {', '.join(sorted(fields))}; got {item!r}"
            )
        out[name] = _convert(name, hints[name], text)
    return out
