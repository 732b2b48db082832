"""Import StereoSet (Nadeem et al. 2021, ``dev.json`` / ``test.json``) intrasentence examples as a paired set.

Each intrasentence example fills one context's ``BLANK`` three ways; its sentences become the groups
``stereotype`` / ``anti_stereotype`` / ``unrelated`` (by ``gold_label``), ``bias_type`` the marker, and the
target, context and sentence ids item metadata. Intersentence examples (a context followed by a separate
sentence) do not fit the one-text-per-group model and are counted, not imported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import AuditInputError
from ..inputs import read_input_text

LABELS = {"stereotype": "stereotype", "anti-stereotype": "anti_stereotype", "unrelated": "unrelated"}
EXAMPLE_KEYS = ("id", "target", "bias_type", "context", "sentences")


def import_stereoset(path: str | Path) -> list[dict[str, Any]]:
    """StereoSet JSON → one paired set ``stereoset-intrasentence`` with three groups, in file order."""
    path = Path(path)
    text = read_input_text(path, "StereoSet JSON file")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditInputError(f"{path}: not a readable JSON file ({exc})") from None
    except RecursionError:
        raise AuditInputError(f"{path}: not a readable JSON file (nested too deeply)") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("intrasentence"), list):
        raise AuditInputError(f"{path}: data.intrasentence: missing (expected StereoSet's "
                              "{\"version\", \"data\": {\"intrasentence\": [...]}} layout)")
    items = [_item(example, path, i) for i, example in enumerate(data["intrasentence"])]
    if not items:
        raise AuditInputError(f"{path}: data.intrasentence: no examples")
    inter = data.get("intersentence")
    if inter is not None and not isinstance(inter, list):
        raise AuditInputError(f"{path}: data.intersentence: expected a list of examples, got {type(inter).__name__}")
    n_inter = len(inter or [])
    version = document.get("version")
    if version is not None and not isinstance(version, (str, int, float)):
        raise AuditInputError(f"{path}: version: expected a string, got {type(version).__name__}")
    skipped = f" {n_inter} intersentence examples are not imported (context + separate sentence)." if n_inter else ""
    return [{"name": "stereoset-intrasentence", "kind": "paired", "tags": ["fairness"],
             "groups": list(LABELS.values()),
             "description": "StereoSet intrasentence examples: one context completed with a stereotypical, an "
                            f"anti-stereotypical and an unrelated word; marker = bias type.{skipped}",
             "source": f"Imported from StereoSet ({path.name}" + (f", version {version}" if version else "")
                       + "); see the dataset's licence (CC BY-SA 4.0).",
             "items": items}]


def _item(example: Any, path: Path, index: int) -> dict[str, Any]:
    where = f"{path}: data.intrasentence[{index}]"
    if not isinstance(example, dict):
        raise AuditInputError(f"{where}: expected an example mapping, got {type(example).__name__}")
    for key in EXAMPLE_KEYS:
        if key not in example:
            raise AuditInputError(f"{where}.{key}: missing (StereoSet examples need {', '.join(EXAMPLE_KEYS)})")
    for key in ("id", "target", "bias_type", "context"):
        value = example[key]
        if not isinstance(value, str) or not value.strip():
            raise AuditInputError(f"{where}.{key}: expected a non-empty string, got {_shown(value)}")
    if not isinstance(example["sentences"], list):
        raise AuditInputError(f"{where}.sentences: expected a list of sentences, got {_shown(example['sentences'])}")
    texts: dict[str, str] = {}
    sentence_ids: dict[str, str] = {}
    for j, sentence in enumerate(example["sentences"]):
        here = f"{where}.sentences[{j}]"
        if not isinstance(sentence, dict):
            raise AuditInputError(f"{here}: expected a sentence mapping, got {_shown(sentence)}")
        if not isinstance(sentence.get("sentence"), str) or not sentence["sentence"].strip():
            raise AuditInputError(f"{here}.sentence: expected a non-empty string, got {_shown(sentence.get('sentence'))}")
        if "id" in sentence and not isinstance(sentence["id"], str):
            raise AuditInputError(f"{here}.id: expected a string, got {_shown(sentence['id'])}")
        label = sentence.get("gold_label")
        if not isinstance(label, str) or label not in LABELS:
            raise AuditInputError(f"{here}.gold_label: expected one of {', '.join(LABELS)}, got {label!r}")
        group = LABELS[label]
        if group in texts:
            raise AuditInputError(f"{here}.gold_label: a second {label!r} sentence in one example")
        texts[group] = sentence["sentence"].strip()
        sentence_ids[group] = str(sentence.get("id", ""))
    missing = [label for label, group in LABELS.items() if group not in texts]
    if missing:
        raise AuditInputError(f"{where}.sentences: no {missing[0]!r} sentence")
    bias = re.sub(r"[^a-z0-9-]+", "-", example["bias_type"].lower()).strip("-")
    if not bias:
        raise AuditInputError(f"{where}.bias_type: expected a name with letters or digits, got {example['bias_type']!r}")
    meta = {"file": path.name, "index": index, "example_id": example["id"], "bias_type": example["bias_type"],
            "target": example["target"], "context": example["context"],
            **{f"{group}_id": sentence_ids[group] for group in LABELS.values()}}
    return {"id": f"{path.name}:intrasentence:{example['id']}", **texts, "marker": bias, "meta": meta}


def _shown(value: Any) -> str:
    """A value's JSON type (and the value when short), for messages."""
    kind = {str: "string", bool: "boolean", int: "number", float: "number", list: "list", dict: "mapping",
            type(None): "null"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 and kind != "string" else kind
