"""The published JSON Schema of results.json, generated from the typed records, and validation against it.

``neuron-audit schema`` prints it; ``render`` and :func:`audit.results.io.load_results` validate with the
``jsonschema`` library and report the first problem as one line with its JSON path, e.g.
``results.json: probesets[0].neurons[3].auroc: expected number or null, got string``.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache
from typing import Any, Literal, Mapping

from ..errors import AuditInputError
from .compare_contract import COMPARE_SCHEMA_VERSION, ComparisonResult
from .contract import SCHEMA_VERSION, AuditResult
from .record import Record, record_type, union_members

SCHEMA_ID = "https://neuron-audit.invalid/schema/results-v1.json"  # an identifier, never fetched
COMPARE_SCHEMA_ID = "https://neuron-audit.invalid/schema/comparison-v1.json"
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@lru_cache(maxsize=1)
def results_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of results.json, schema_version 1."""
    return _root_schema(AuditResult, SCHEMA_ID, f"neuron-audit results.json (schema_version {SCHEMA_VERSION})")


@lru_cache(maxsize=1)
def comparison_schema() -> dict[str, Any]:
    """The JSON Schema of comparison.json (``neuron-audit compare``), schema_version 1."""
    return _root_schema(ComparisonResult, COMPARE_SCHEMA_ID,
                        f"neuron-audit comparison.json (schema_version {COMPARE_SCHEMA_VERSION})")


def _root_schema(root_type: type[Record], identifier: str, title: str) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    root = _type_schema(root_type, definitions)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": identifier, "title": title,
            "description": (root_type.__doc__ or "").strip(), **root, "$defs": definitions}


def _record_schema(cls: type[Record], definitions: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in definitions:
        definitions[name] = {}  # placeholder: records may refer to themselves through unions
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.metadata.get("extra"):
                continue
            properties[f.name] = _type_schema(hints[f.name], definitions)
            if not f.metadata.get("optional"):
                required.append(f.name)
        definitions[name] = {"type": "object", "description": " ".join((cls.__doc__ or "").split()),
                             "properties": properties, "required": required,
                             "additionalProperties": dict(cls.extra_schema) or True}
    return {"$ref": f"#/$defs/{name}"}


def _type_schema(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    if hint is Any:
        return {}
    if record_type(hint):
        return _record_schema(hint, definitions)
    if hint in JSON_TYPES:
        if hint is float:  # results.json writes NaN and infinities as null
            return {"type": ["number", "null"]}
        return {"type": JSON_TYPES[hint]}
    arms = union_members(hint)
    if arms:
        return _union_schema(arms, definitions)
    origin = typing.get_origin(hint)
    if origin is Literal:
        values = list(typing.get_args(hint))
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return {"type": "array", "items": _type_schema(item, definitions)}
    if origin is dict:
        _, item = typing.get_args(hint)
        return {"type": "object", "additionalProperties": _type_schema(item, definitions)}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _union_schema(arms: tuple[Any, ...], definitions: dict[str, Any]) -> dict[str, Any]:
    nullable = type(None) in arms
    arms = tuple(arm for arm in arms if arm is not type(None))
    records = [arm for arm in arms if record_type(arm)]
    if len(records) > 1:  # tell members apart by their discriminators, so errors point inside the right one
        schema: dict[str, Any] = {"type": "object", "allOf": [
            {"if": arm.discriminator(), "then": _record_schema(arm, definitions)} for arm in records]}
        keys = {key for arm in records for key in arm.discriminator().get("properties", {})}
        if len(keys) == 1:  # members named by one key's value: any other value is an error at that key
            (key,) = keys
            values = [arm.discriminator()["properties"][key]["const"] for arm in records]
            schema.update(properties={key: {"enum": values}}, required=[key])
    elif len(arms) == 1:
        schema = _type_schema(arms[0], definitions)
    else:
        schema = {"anyOf": [_type_schema(arm, definitions) for arm in arms]}
    if not nullable:
        return schema
    if "type" in schema and "$ref" not in schema and isinstance(schema["type"], (str, list)) and len(schema) == 1:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return {"type": [*types, "null"] if "null" not in types else types}
    if "$ref" in schema or schema.get("type") == "object":  # a record: errors point inside it
        return {"if": {"type": "object"}, "then": schema, "else": {"type": "null"}}
    return {"anyOf": [schema, {"type": "null"}]}  # e.g. a list or null


def validate_results(result: Any, *, where: str, schema: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`AuditInputError` naming ``where`` and the JSON path of the first schema violation
    (against results.json's schema unless another, e.g. :func:`comparison_schema`, is given)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema or results_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is not None:
        raise AuditInputError(f"{where}: {describe(error)}")


def json_path(parts: typing.Iterable[Any]) -> str:
    """``probesets[0].neurons[3].auroc`` from a jsonschema error path."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: Any) -> str:
    """One line: the JSON path and what was expected there."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [key for key in error.validator_value
                   if isinstance(error.instance, Mapping) and key not in error.instance]
        return f"{json_path([*path, missing[0] if missing else '?'])}: missing"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{json_path(path)}: expected {' or '.join(wanted)}, got {_json_type(error.instance)}"
    if error.validator in ("const", "enum"):
        allowed = [error.validator_value] if error.validator == "const" else error.validator_value
        return f"{json_path(path)}: expected {' or '.join(repr(v) for v in allowed)}, got {_short(error.instance)}"
    return f"{json_path(path)}: {error.message[:200]}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for kind, name in ((str, "string"), (int, "integer"), (float, "number"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
