"""The machinery under the typed result model: dataclass records that convert to and from JSON dicts.

A :class:`Record` is a keyword-only dataclass whose fields are results.json keys, in the order they are
written. Fields made with :func:`optional` are left out of the dict while they hold :data:`ABSENT` (a key
that only some runs produce); ``None`` is written as ``null``. Keys a record does not declare (written by
a newer version, or dynamic keys such as a histogram's side names) are kept in ``extra`` and written back,
so reading and re-writing a results.json never loses data. The same type hints generate the JSON Schema
(:mod:`audit.results.schema`), so the contract is written down once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Mapping, TypeVar, Union

R = TypeVar("R", bound="Record")


class _Absent:
    """The value of an optional field whose key is not in the dict."""

    _instance: ClassVar[_Absent | None] = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


def optional(**kwargs: Any) -> Any:
    """A field whose key only some results carry: absent from the dict until it is set."""
    return dataclasses.field(default=ABSENT, metadata={"optional": True, **kwargs})


def extra_field() -> Any:
    """The catch-all for keys the record does not declare."""
    return dataclasses.field(default_factory=dict, metadata={"extra": True})


class Record:
    """Base of result records: ``to_dict`` / ``from_dict`` driven by the dataclass fields and type hints."""

    extra_schema: ClassVar[Mapping[str, Any]] = {}  # JSON Schema for undeclared keys ({}: anything)

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` is this record rather than another member of a union (see ``discriminator``)."""
        return True

    @classmethod
    def discriminator(cls) -> Mapping[str, Any] | None:
        """The JSON Schema condition that tells this record apart within a union (None: not in a union)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (numpy values are converted later, by ``dumps``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("extra"):
                out.update({k: _plain(v) for k, v in value.items() if k not in out})
            elif value is not ABSENT:
                out[f.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """Build the record from a dict already valid under the schema; unknown keys go to ``extra``."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        declared = set()
        extra_name = None
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.metadata.get("extra"):
                extra_name = f.name
                continue
            declared.add(f.name)
            if f.name in data:
                values[f.name] = _build(hints[f.name], data[f.name])
        if extra_name is not None:
            values[extra_name] = {k: v for k, v in data.items() if k not in declared}
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def union_members(hint: Any) -> tuple[Any, ...]:
    """The arms of ``X | Y`` / ``Optional[X]`` (empty for a non-union)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return ()


def record_type(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Record)


def _build(hint: Any, value: Any) -> Any:
    arms = union_members(hint)
    if arms:
        if value is None and type(None) in arms:
            return None
        records = [arm for arm in arms if record_type(arm)]
        if records and isinstance(value, Mapping):
            chosen = next((arm for arm in records if arm.matches(value)), records[-1])
            return chosen.from_dict(value)
        other = [arm for arm in arms if arm is not type(None) and not record_type(arm)]
        return _build(other[0], value) if other else value
    if record_type(hint):
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    if origin in (list, tuple) and isinstance(value, list):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_build(item, v) for v in value]
    if origin is dict and isinstance(value, Mapping):
        _, item = typing.get_args(hint)
        return {k: _build(item, v) for k, v in value.items()}
    return value
