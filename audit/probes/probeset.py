"""Probe sets: YAML files of texts that express a concept (or the same content across groups).

Loading validates every rule of the v1 format and raises :class:`AuditInputError` naming the file and
field, so the CLI can answer bad input with one line and exit code 2.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import yaml

from ..errors import AuditInputError, AuditWarning
from ..inputs import read_input_text
from ..provenance import sha256_file, sha256_json

NAME_PATTERN = re.compile(r"[a-z0-9-]+")
GROUP_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
KINDS = ("concept", "paired")
COMMON_KEYS = {"name", "description", "kind", "tags", "source"}
REQUIRED = {"concept": ("name", "description", "kind", "concept", "positive", "negative"),
            "paired": ("name", "description", "kind", "groups", "items")}
ALLOWED = {"concept": COMMON_KEYS | {"concept", "positive", "negative"},
           "paired": COMMON_KEYS | {"groups", "items"}}
ITEM_KEYS = ("marker", "target", "id", "meta")  # optional per-item keys of paired sets, besides one text per group
RESERVED_GROUPS = (*ITEM_KEYS, "rest", "item", "difference")  # names the analyses and results use themselves
MIN_TEXTS = 2

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "probesets"


@dataclass(frozen=True)
class ProbeSet:
    """One validated probe set.

    Concept sets hold ``positive`` and ``negative`` texts. Paired sets hold ``items``, each mapping every
    group to its text; ``texts`` lists them group by group (all items of the first group, then the next).
    """

    name: str
    kind: Literal["concept", "paired"]
    description: str
    sha256: str
    path: str | None = None
    file_sha256: str | None = None
    concept: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    items: tuple[Mapping[str, str], ...] = field(default=())
    markers: tuple[str | None, ...] = ()
    targets: tuple[Mapping[str, str] | None, ...] = ()
    ids: tuple[str | None, ...] = ()
    meta: tuple[Mapping[str, Any] | None, ...] = ()

    @property
    def compares_languages(self) -> bool:
        """A paired set whose groups are languages (tagged ``languages`` or ``multilingual``): its versions
        are translations, so language-specific analyses apply and preference scores do not."""
        return self.kind == "paired" and any(tag in ("languages", "multilingual") for tag in self.tags)

    def item_id(self, index: int) -> str:
        """The item's own ``id`` (its dataset row), or ``item <index>`` when the set gives none."""
        given = self.ids[index] if index < len(self.ids) else None
        return given if given is not None else f"item {index}"

    @property
    def texts(self) -> list[str]:
        """Every text to run through the model, in a fixed order."""
        if self.kind == "concept":
            return [*self.positive, *self.negative]
        return [item[group] for group in self.groups for item in self.items]

    @property
    def labels(self) -> np.ndarray:
        """Concept sets: True for positive texts, aligned with :attr:`texts`."""
        if self.kind != "concept":
            raise TypeError(f"probe set {self.name!r} is paired; it has groups, not labels")
        return np.r_[np.ones(len(self.positive), bool), np.zeros(len(self.negative), bool)]

    def summary(self) -> dict[str, Any]:
        """The identifying fields results.json records for this probe set."""
        info: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description,
                                "sha256": self.sha256, "file": self.path, "file_sha256": self.file_sha256,
                                "n_texts": len(self.texts), "tags": list(self.tags), "source": self.source}
        if self.kind == "concept":
            info.update(concept=self.concept, n_positive=len(self.positive), n_negative=len(self.negative))
        else:
            info.update(groups=list(self.groups), n_items=len(self.items))
        return info


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, got a {type(key).__name__}", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_probesets(paths: Iterable[str | Path]) -> list[ProbeSet]:
    """Load and validate probe-set files (each may hold several YAML documents); names must be unique."""
    sets: list[ProbeSet] = []
    origin: dict[str, str] = {}
    for path in paths:
        for probeset in load_probeset_file(path):
            if probeset.name in origin:
                raise AuditInputError(f"{path}: name: duplicate probe-set name {probeset.name!r} "
                                      f"(already defined in {origin[probeset.name]})")
            origin[probeset.name] = str(path)
            sets.append(probeset)
    return sets


def bundled_probeset_paths() -> list[Path]:
    """The probe sets shipped with neuron-audit, in name order."""
    return sorted(BUNDLED_DIR.glob("*.yaml"))


def load_probeset_file(path: str | Path) -> list[ProbeSet]:
    """Load every probe set in one YAML file."""
    path = Path(path)
    text = read_input_text(path, "probe-set file")
    try:
        documents = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AuditInputError(f"{path}: invalid YAML{where}: {problem}") from None
    if not documents:
        raise AuditInputError(f"{path}: the file holds no probe set")
    file_hash = sha256_file(path)
    return [parse_probeset(doc, source=str(path), file_sha256=file_hash) for doc in documents]


def parse_probeset(document: Any, *, source: str = "<probe set>", file_sha256: str | None = None) -> ProbeSet:
    """Validate one parsed YAML document and build its :class:`ProbeSet`."""
    if not isinstance(document, dict):
        raise AuditInputError(f"{source}: a probe set must be a mapping of fields, got {type(document).__name__}")
    where = source if "name" not in document else f"{source} ({document['name']!r})"
    kind = document.get("kind")
    if kind is None:
        raise AuditInputError(f"{where}: kind: missing required field (one of {', '.join(KINDS)})")
    if kind not in KINDS:
        raise AuditInputError(f"{where}: kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(document) - ALLOWED[kind], key=str)
    if unknown:
        raise AuditInputError(f"{where}: {unknown[0]}: unknown field for a {kind} probe set "
                              f"(allowed: {', '.join(sorted(ALLOWED[kind]))})")
    for key in REQUIRED[kind]:
        if key not in document:
            raise AuditInputError(f"{where}: {key}: missing required field")
    name = _string(document["name"], where, "name")
    if not NAME_PATTERN.fullmatch(name):
        raise AuditInputError(f"{where}: name: must match [a-z0-9-]+, got {name!r}")
    description = _string(document["description"], where, "description")
    tags = tuple(_strings(document.get("tags", []), where, "tags", minimum=0))
    source_note = _string(document["source"], where, "source") if "source" in document else None
    common = dict(name=name, kind=kind, description=description, tags=tags, source=source_note,
                  path=None if source.startswith("<") else source, file_sha256=file_sha256)
    if kind == "concept":
        positive = _strings(document["positive"], where, "positive")
        negative = _strings(document["negative"], where, "negative")
        _reject_duplicates(positive, negative, where)
        fields = dict(concept=_string(document["concept"], where, "concept"), positive=tuple(positive),
                      negative=tuple(negative))
    else:
        groups = _groups(document["groups"], where)
        items, markers, targets, ids, meta = _items(document["items"], groups, where)
        _warn_identical(items, groups, where)
        fields = dict(groups=groups, items=items, markers=markers, targets=targets)
        if any(i is not None for i in ids) or any(m is not None for m in meta):
            fields.update(ids=ids, meta=meta)  # hashed only when present: older sets keep their sha256
    # hashed once valid: the content (not the file's formatting) identifies the probe set
    content = {key: common[key] for key in ("name", "kind", "description", "tags", "source")} | fields
    return ProbeSet(sha256=sha256_json(content), **common, **fields)


def _string(value: Any, where: str, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuditInputError(f"{where}: {field_name}: expected a non-empty string, got {_describe(value)}")
    return value


def _strings(value: Any, where: str, field_name: str, *, minimum: int = MIN_TEXTS) -> list[str]:
    if not isinstance(value, list):
        raise AuditInputError(f"{where}: {field_name}: expected a list of strings, got {_describe(value)}")
    if len(value) < minimum:
        raise AuditInputError(f"{where}: {field_name}: needs at least {minimum} texts for a statistical "
                              f"comparison, got {len(value)}")
    return [_string(item, where, f"{field_name}[{i}]") for i, item in enumerate(value)]


def _reject_duplicates(positive: Sequence[str], negative: Sequence[str], where: str) -> None:
    seen: dict[str, str] = {}
    for field_name, texts in (("positive", positive), ("negative", negative)):
        for i, text in enumerate(texts):
            here = f"{field_name}[{i}]"
            if text in seen:
                raise AuditInputError(f"{where}: {here}: duplicates {seen[text]} ({text[:60]!r})")
            seen[text] = here


def _groups(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise AuditInputError(f"{where}: groups: expected a list of at least 2 group names, got {_describe(value)}")
    for i, group in enumerate(value):
        if not isinstance(group, str) or not GROUP_PATTERN.fullmatch(group) or group in RESERVED_GROUPS:
            raise AuditInputError(f"{where}: groups[{i}]: expected a name matching [A-Za-z0-9_-]+ other than "
                                  f"{', '.join(RESERVED_GROUPS)}, got {_describe(group)}")
    if len(set(value)) != len(value):
        raise AuditInputError(f"{where}: groups: group names must be unique, got {value}")
    return tuple(value)


def _items(value: Any, groups: tuple[str, ...], where: str):
    if not isinstance(value, list):
        raise AuditInputError(f"{where}: items: expected a list of mappings, got {_describe(value)}")
    if len(value) < MIN_TEXTS:
        raise AuditInputError(f"{where}: items: needs at least {MIN_TEXTS} items for a statistical "
                              f"comparison, got {len(value)}")
    items, markers, targets, ids, meta = [], [], [], [], []
    seen_ids: dict[str, int] = {}
    for i, item in enumerate(value):
        here = f"items[{i}]"
        if not isinstance(item, dict):
            raise AuditInputError(f"{where}: {here}: expected a mapping of group to text, got {_describe(item)}")
        unknown = sorted((key for key in item if key not in groups and key not in ITEM_KEYS), key=str)
        if unknown:
            raise AuditInputError(f"{where}: {here}.{unknown[0]}: not a group of this set "
                                  f"(groups: {', '.join(groups)}; optional: {', '.join(ITEM_KEYS)})")
        for group in groups:
            if group not in item:
                raise AuditInputError(f"{where}: {here}.{group}: missing the text for group {group!r}")
        items.append({group: _string(item[group], where, f"{here}.{group}") for group in groups})
        markers.append(_string(item["marker"], where, f"{here}.marker") if "marker" in item else None)
        targets.append(_target(item["target"], groups, where, f"{here}.target") if "target" in item else None)
        item_id = _string(item["id"], where, f"{here}.id") if "id" in item else None
        if item_id is not None:
            if item_id in seen_ids:
                raise AuditInputError(f"{where}: {here}.id: duplicates the id of items[{seen_ids[item_id]}] "
                                      f"({item_id!r})")
            seen_ids[item_id] = i
        ids.append(item_id)
        meta.append(_meta(item["meta"], where, f"{here}.meta") if "meta" in item else None)
    return tuple(items), tuple(markers), tuple(targets), tuple(ids), tuple(meta)


def _meta(value: Any, where: str, here: str) -> dict[str, Any]:
    """Item metadata: a flat mapping of names to strings, numbers, booleans, null or lists of strings."""
    if not isinstance(value, dict):
        raise AuditInputError(f"{where}: {here}: expected a mapping of names to values, got {_describe(value)}")
    for key, entry in value.items():
        if not isinstance(key, str) or not GROUP_PATTERN.fullmatch(key):
            raise AuditInputError(f"{where}: {here}: keys must match [A-Za-z0-9_-]+, got {_describe(key)}")
        scalar = entry is None or isinstance(entry, (str, int, float, bool))
        strings = isinstance(entry, list) and all(isinstance(e, str) for e in entry)
        if not (scalar or strings):
            raise AuditInputError(f"{where}: {here}.{key}: expected a string, number, boolean, null or list of "
                                  f"strings, got {_describe(entry)}")
    return dict(value)


def _warn_identical(items: Sequence[Mapping[str, str]], groups: Sequence[str], where: str) -> None:
    """Items whose groups share a text cannot show a difference between those groups: say which."""
    same = [i for i, item in enumerate(items) if len({item[group] for group in groups}) < len(groups)]
    if same:
        shown = ", ".join(f"items[{i}]" for i in same[:5]) + (f" and {len(same) - 5} more" if len(same) > 5 else "")
        warnings.warn(f"{where}: {shown}: the same text for two groups ({items[same[0]][groups[0]][:60]!r}); "
                      "such items add no group difference and weaken every paired statistic", AuditWarning,
                      stacklevel=4)


def _target(value: Any, groups: tuple[str, ...], where: str, here: str) -> dict[str, str]:
    """A target continuation: one string for every group, or a mapping with one per group."""
    if isinstance(value, str):
        return {group: _string(value, where, here) for group in groups}
    if isinstance(value, dict) and set(value) == set(groups):
        return {group: _string(value[group], where, f"{here}.{group}") for group in groups}
    raise AuditInputError(f"{where}: {here}: expected a string or a mapping with one string per group "
                          f"({', '.join(groups)}), got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)}"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"[:80]
