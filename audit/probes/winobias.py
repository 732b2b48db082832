"""Import WinoBias (Zhao et al. 2018, the ``*_stereotyped_type{1,2}.txt.{dev,test}`` files) as paired probe sets.

Each pro-stereotyped line and its anti-stereotyped twin become one item with a stable ``id`` (file and line)
and metadata: the pronoun gender of each version, the referent occupation (and every listed occupation in the
sentence when ``female_occupations.txt`` / ``male_occupations.txt`` sit beside the files), type, split, and
whether the pair is *minimal* (differs only in gendered pronouns). Two groupings are offered: ``stereotype``
(pro / anti) balances pronoun gender, so it measures stereotype-consistency only; ``gender`` (female / male)
groups the same sentences by pronoun gender. A malformed line is an input error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ..errors import AuditInputError
from ..inputs import check_input_folder, read_input_text

WINOBIAS_LINE = re.compile(r"^\s*\d+\s+(\S.*?)\s*$")
WINOBIAS_FILE = re.compile(r"^pro_stereotyped_(type[12])\.txt\.(dev|test)$")
FEMALE = {"she", "her", "hers", "herself"}
MALE = {"he", "him", "his", "himself"}
GROUPINGS = ("stereotype", "gender", "both")
LICENCE = "Imported from WinoBias (uclanlp/corefBias); see the dataset's licence (MIT)."

Grouping = Literal["stereotype", "gender", "both"]


def import_winobias(folder: str | Path, *, grouping: Grouping = "stereotype") -> list[dict[str, Any]]:
    """WinoBias pro-/anti-stereotyped files → paired sets: ``winobias`` (groups ``pro`` / ``anti``) and/or
    ``winobias-gender`` (groups ``female`` / ``male``), items in file order (type1 dev, type1 test, type2 …),
    ``marker`` = type1/type2. Brackets are removed."""
    if grouping not in GROUPINGS:
        raise AuditInputError(f"--grouping: expected one of {', '.join(GROUPINGS)}, got {grouping!r}")
    folder = check_input_folder(folder, "the WinoBias data folder (*_stereotyped_type*.txt.* files)")
    pro_files = sorted(p for p in folder.iterdir() if WINOBIAS_FILE.match(p.name))
    if not pro_files:
        raise AuditInputError(f"{folder}: no pro_stereotyped_type{{1,2}}.txt.{{dev,test}} files")
    occupations = _occupations(folder)
    items = []
    for pro in pro_files:
        kind, split = WINOBIAS_FILE.match(pro.name).groups()
        anti = pro.with_name(pro.name.replace("pro_", "anti_", 1))
        if not anti.exists():
            raise AuditInputError(f"{anti}: missing (every pro_stereotyped file needs its anti_stereotyped twin)")
        pro_lines, anti_lines = _winobias_lines(pro), _winobias_lines(anti)
        if len(pro_lines) != len(anti_lines):
            raise AuditInputError(f"{anti}: {len(anti_lines)} sentences, but {pro.name} has {len(pro_lines)}; "
                                  "the files must align line by line")
        for (line, pro_raw), (anti_line, anti_raw) in zip(pro_lines, anti_lines):
            items.append(_item(pro, anti, line, anti_line, pro_raw, anti_raw, kind, split, occupations))
    documents = []
    if grouping in ("stereotype", "both"):
        documents.append(
            {"name": "winobias", "kind": "paired", "tags": ["fairness"], "groups": ["pro", "anti"],
             "description": "WinoBias sentences: pro-stereotypical versus anti-stereotypical pronoun for the same "
                            "occupation; marker = sentence type. Pronoun gender is balanced across the groups, "
                            "so this grouping measures stereotype-consistency, not gender.",
             "source": LICENCE, "items": [{"id": i["id"], "pro": i["pro"], "anti": i["anti"], "marker": i["marker"],
                                           "meta": i["meta"]} for i in items]})
    if grouping in ("gender", "both"):
        swapped = [i for i in items if i["meta"]["pro_gender"] != i["meta"]["anti_gender"]]
        left_out = [i["id"] for i in items if i not in swapped]
        gender_items = []
        for item in swapped:
            female = "pro" if item["meta"]["pro_gender"] == "female" else "anti"
            male = "anti" if female == "pro" else "pro"
            gender_items.append({"id": item["id"], "female": item[female], "male": item[male],
                                 "marker": item["marker"], "meta": item["meta"]})
        note = (f" {len(left_out)} pair(s) whose versions share a pronoun gender are left out: "
                f"{', '.join(left_out)}." if left_out else "")
        documents.append(
            {"name": "winobias-gender", "kind": "paired", "tags": ["fairness"], "groups": ["female", "male"],
             "description": "WinoBias sentences grouped by pronoun gender: the version with a female pronoun versus "
                            "the one with a male pronoun; marker = sentence type; meta.stereotyped_gender says "
                            f"which version is pro-stereotypical.{note}",
             "source": LICENCE, "items": gender_items})
    return documents


def _item(pro: Path, anti: Path, line: int, anti_line: int, pro_raw: str, anti_raw: str, kind: str, split: str,
          occupations: list[str]) -> dict[str, Any]:
    pro_text, anti_text = _clean(pro_raw), _clean(anti_raw)
    pro_gender, anti_gender = _gender(pro_raw), _gender(anti_raw)
    meta: dict[str, Any] = {
        "file": pro.name, "line": line, "anti_file": anti.name, "anti_line": anti_line, "type": kind, "split": split,
        "referent": _referent(pro_raw), "pro_gender": pro_gender, "anti_gender": anti_gender,
        "stereotyped_gender": pro_gender, "minimal": _minimal(pro_text, anti_text)}
    if occupations:
        lowered = f" {pro_text.lower()} "
        meta["occupations"] = [o for o in occupations if re.search(rf"\b{re.escape(o)}\b", lowered)]
    return {"id": f"{pro.name}:{line}", "pro": pro_text, "anti": anti_text, "marker": kind, "meta": meta}


def _winobias_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, raw sentence with brackets) for every non-blank line."""
    sentences = []
    for number, line in enumerate(read_input_text(path, "WinoBias file").splitlines(), start=1):
        if not line.strip():
            continue
        match = WINOBIAS_LINE.match(line)
        if not match:
            raise AuditInputError(f"{path}: row {number}: expected '<number> <sentence>', got {line[:60]!r}")
        sentences.append((number, match.group(1)))
    return sentences


def _clean(raw: str) -> str:
    return re.sub(r"\s+", " ", raw.replace("[", "").replace("]", "")).strip()


def _words(text: str) -> list[str]:
    return [w.strip(".,;:!?'\"").lower() for w in text.split()]


def _gender(raw: str) -> str:
    """The gender of the bracketed pronoun(s) (else any gendered pronoun): female, male, mixed or none."""
    bracketed = [w for span in re.findall(r"\[([^\]]*)\]", raw) for w in _words(span)]
    for words in (bracketed, _words(raw)):
        found = {"female" for w in words if w in FEMALE} | {"male" for w in words if w in MALE}
        if found:
            return found.pop() if len(found) == 1 else "mixed"
    return "none"


def _referent(raw: str) -> str:
    """The bracketed entity the pronoun refers to (its first bracket), without the determiner."""
    spans = re.findall(r"\[([^\]]*)\]", raw)
    entity = next((s for s in spans if not set(_words(s)) <= FEMALE | MALE), spans[0] if spans else "")
    return re.sub(r"^(the|a|an)\s+", "", entity.strip(), flags=re.IGNORECASE).strip()


def _minimal(pro: str, anti: str) -> bool:
    """Whether the two versions differ only in swapped gendered pronouns, word for word."""
    a, b = _words(pro), _words(anti)
    if len(a) != len(b):
        return False
    pronouns = FEMALE | MALE
    return all(x == y or (x in pronouns and y in pronouns and (x in FEMALE) != (y in FEMALE)) for x, y in zip(a, b))


def _occupations(folder: Path) -> list[str]:
    """The occupation lists shipped with WinoBias, longest first, when they are in the folder."""
    names: set[str] = set()
    for file in ("female_occupations.txt", "male_occupations.txt"):
        path = folder / file
        if path.exists():
            text = read_input_text(path, "WinoBias occupation list")
            names |= {line.strip().lower() for line in text.splitlines() if line.strip()}
    return sorted(names, key=lambda o: (-len(o), o))
