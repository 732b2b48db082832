"""Import public bias benchmarks into probe-set YAML: CrowS-Pairs (CSV) and WinoBias (text files).

Each importer builds a paired probe-set document, validates it like any probe set, and reports a
malformed row with its file and row number.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import AuditInputError
from .probes import parse_probeset

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
WINOBIAS_LINE = re.compile(r"^\s*\d+\s+(\S.*?)\s*$")
WINOBIAS_FILE = re.compile(r"^pro_stereotyped_(type[12])\.txt\.(dev|test)$")


def import_crows_pairs(path: str | Path, *, split: bool = False) -> list[dict[str, Any]]:
    """CrowS-Pairs rows → paired items with groups ``stereotypical`` / ``anti_stereotypical``.

    ``stereo_antistereo`` says which of sent_more/sent_less holds the stereotype; ``bias_type`` becomes
    the item's ``marker`` (or, with ``split``, one probe set per bias type).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CROWS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AuditInputError(f"{path}: missing column {missing[0]!r} (CrowS-Pairs needs "
                                      f"{', '.join(CROWS_COLUMNS)})")
            rows = list(enumerate(reader, start=2))  # row 1 is the header
    except FileNotFoundError:
        raise AuditInputError(f"{path}: no such CSV file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AuditInputError(f"{path}: not a readable CSV file ({exc})") from None
    items: dict[str, list[dict[str, str]]] = {}
    for number, row in rows:
        values = {c: (row.get(c) or "").strip() for c in CROWS_COLUMNS}
        for column in CROWS_COLUMNS:
            if not values[column]:
                raise AuditInputError(f"{path}: row {number}: {column} is empty")
        direction = values["stereo_antistereo"]
        if direction not in ("stereo", "antistereo"):
            raise AuditInputError(f"{path}: row {number}: stereo_antistereo must be 'stereo' or 'antistereo', "
                                  f"got {direction!r}")
        stereo, anti = ((values["sent_more"], values["sent_less"]) if direction == "stereo"
                        else (values["sent_less"], values["sent_more"]))
        bias = re.sub(r"[^a-z0-9-]+", "-", values["bias_type"].lower()).strip("-")
        items.setdefault(bias, []).append({"stereotypical": stereo, "anti_stereotypical": anti, "marker": bias})
    if not items:
        raise AuditInputError(f"{path}: no data rows")
    common = {"kind": "paired", "tags": ["fairness"], "groups": ["stereotypical", "anti_stereotypical"],
              "source": f"Imported from CrowS-Pairs ({path.name}); see the dataset's licence (CC BY-SA 4.0)."}
    if not split:
        every = [item for group in items.values() for item in group]
        return [{"name": "crows-pairs", "description": "CrowS-Pairs sentence pairs: the stereotypical versus "
                 "the anti-stereotypical version; marker = bias type.", **common, "items": every}]
    return [{"name": f"crows-pairs-{bias}", "description": f"CrowS-Pairs sentence pairs about {bias}: the "
             "stereotypical versus the anti-stereotypical version.", **common, "items": group}
            for bias, group in sorted(items.items())]


def import_winobias(folder: str | Path) -> list[dict[str, Any]]:
    """WinoBias pro-/anti-stereotyped files (``pro_stereotyped_type1.txt.dev`` …) → one paired set with
    groups ``pro`` / ``anti``, items aligned by line, ``marker`` = type1/type2. Brackets are removed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AuditInputError(f"{folder}: not a folder (expected WinoBias *_stereotyped_type*.txt.* files)")
    pro_files = sorted(p for p in folder.iterdir() if WINOBIAS_FILE.match(p.name))
    if not pro_files:
        raise AuditInputError(f"{folder}: no pro_stereotyped_type{{1,2}}.txt.{{dev,test}} files")
    items = []
    for pro in pro_files:
        kind = WINOBIAS_FILE.match(pro.name).group(1)
        anti = pro.with_name(pro.name.replace("pro_", "anti_", 1))
        if not anti.is_file():
            raise AuditInputError(f"{anti}: missing (every pro_stereotyped file needs its anti_stereotyped twin)")
        pro_lines, anti_lines = _winobias_lines(pro), _winobias_lines(anti)
        if len(pro_lines) != len(anti_lines):
            raise AuditInputError(f"{anti}: {len(anti_lines)} sentences, but {pro.name} has {len(pro_lines)}; "
                                  "the files must align line by line")
        items += [{"pro": p, "anti": a, "marker": kind} for p, a in zip(pro_lines, anti_lines)]
    return [{"name": "winobias", "kind": "paired", "tags": ["fairness"], "groups": ["pro", "anti"],
             "description": "WinoBias sentences: pro-stereotypical versus anti-stereotypical pronoun for the "
                            "same occupation; marker = sentence type.",
             "source": "Imported from WinoBias; see the dataset's licence (MIT).", "items": items}]


def _winobias_lines(path: Path) -> list[str]:
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = WINOBIAS_LINE.match(line)
        if not match:
            raise AuditInputError(f"{path}: row {number}: expected '<number> <sentence>', got {line[:60]!r}")
        sentences.append(re.sub(r"\s+", " ", match.group(1).replace("[", "").replace("]", "")).strip())
    return sentences


def to_yaml(documents: list[dict[str, Any]], *, source: str) -> str:
    """Validate imported documents as probe sets and return them as one YAML text."""
    for document in documents:
        parse_probeset(document, source=source)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=1000)
