"""Import WinoBias (Zhao et al. 2018, the ``*_stereotyped_type{1,2}.txt.{dev,test}`` files) as a paired probe set.

A malformed line is an input error naming the file and line number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import AuditInputError, read_input_text

WINOBIAS_LINE = re.compile(r"^\s*\d+\s+(\S.*?)\s*$")
WINOBIAS_FILE = re.compile(r"^pro_stereotyped_(type[12])\.txt\.(dev|test)$")


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
    for number, line in enumerate(read_input_text(path, "WinoBias file").splitlines(), start=1):
        if not line.strip():
            continue
        match = WINOBIAS_LINE.match(line)
        if not match:
            raise AuditInputError(f"{path}: row {number}: expected '<number> <sentence>', got {line[:60]!r}")
        sentences.append(re.sub(r"\s+", " ", match.group(1).replace("[", "").replace("]", "")).strip())
    return sentences
