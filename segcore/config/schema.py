"""Typed, validated configuration: YAML 1.2 floats and dict -> frozen dataclass.

Two traps are handled here once, for every params section:

* PyYAML implements YAML 1.1, where ``1e-4`` and ``1e-05`` (what ``dvc exp run -S lr=1e-5``
  writes) are *strings*; DVC reads the same file as YAML 1.2, where they are floats.
  :func:`load_yaml` resolves them as floats, like DVC does.
* A typo in params.yaml must not silently fall back to a default: :func:`build` rejects unknown
  keys, missing keys, wrong types and out-of-range values with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from segcore.core.errors import UserError


class ConfigError(UserError, ValueError):
    """A params value is missing, unknown, of the wrong type or out of range."""


# YAML 1.2 core-schema floats: "1e-4", "1.0e-05", ".5", "-2.", "1E5" (no dot needed before e).
_FLOAT_12 = re.compile(
    r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
)


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader that reads scientific notation as YAML 1.2 (and DVC) do."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789.")
)


def _int_or_float(loader: yaml.SafeLoader, node: yaml.Node) -> int | float:
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    special = text.lstrip("+-").lower()
    if special in (".inf", ".nan"):  # YAML's spellings of infinity and not-a-number
        return float(("-" if text.startswith("-") else "") + special[1:])
    return float(text)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _int_or_float)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with YAML 1.2 number rules; error names the file if it is not one."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read params file {path}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of params, got {type(data).__name__}")
    return data


def field(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, doc: str = "", **kw: Any) -> Any:
    """A dataclass field carrying range bounds that :func:`build` enforces."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "doc": doc}
    return dataclasses.field(metadata=meta, **kw)


T = TypeVar("T")


def build(cls: type[T], data: Any, where: str = "") -> T:
    """Turn a mapping into the frozen dataclass ``cls``, validating every key on the way."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'params'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {_join(where, unknown[0])}; allowed keys: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise ConfigError(f"missing key {key}")
        value = _coerce(hints[name], data[name], key)
        _check_range(f, value, key)
        values[name] = value
    return cls(**values)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; returns it converted where lossless."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise ConfigError(f"{key} = {value!r} is not allowed; use one of: "
                              f"{', '.join(map(str, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(option, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[-1])
    if origin is dict:  # a named mapping, e.g. schedules: {voc: 250, voc_skip: 120}
        if not isinstance(value, dict) or not value:
            raise ConfigError(f"{key} = {value!r} must be a non-empty mapping of names to values")
        key_type, item = get_args(tp)
        return {_coerce(key_type, k, key): _coerce(item, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} = {value!r} must be a list")
        (item,) = get_args(tp)[:1]
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = " (write numbers without quotes)" if isinstance(value, str) else ""
            raise ConfigError(f"{key} = {value!r} must be a number{hint}")
        if not math.isfinite(value):
            raise ConfigError(f"{key} = {value!r} must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r} must be a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # programming error, not input


def _check_range(f: dataclasses.Field, value: Any, key: str) -> None:
    m = f.metadata
    if isinstance(value, dict):  # bounds of a mapping's field apply to each of its values
        for name, item in value.items():
            _check_range(f, item, f"{key}.{name}")
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    bounds = [("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b),
              ("le", "<=", lambda a, b: a <= b), ("lt", "<", lambda a, b: a < b)]
    for name, sign, ok in bounds:
        bound = m.get(name)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{key} = {value!r} is out of range; it must be {sign} {bound}")
