"""Reading a report PDF as a reader sees it (pypdf): the checks every report must pass, shared by the tiny-model
and default-model tests."""

from __future__ import annotations

import re
from pathlib import Path

SENTENCE_JOIN = re.compile(r"[a-z)\]%]\.[A-Z][a-z]")  # ".In-context", ").Word": a missing space between sentences
WORD_PIECE = re.compile(r"\S*##\S*")
SPLIT_ID = re.compile(r"L\d+/\.N\d+|L\d+\.\s+N\d+")


def page_texts(pdf: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(pdf).pages]


def page_fill(pdf: Path) -> list[float]:
    """Share of each page's text area (between running header and footer) that its text spans, top to bottom."""
    from pypdf import PdfReader

    fills = []
    for page in PdfReader(pdf).pages:
        height = float(page.mediabox.height)
        top_margin, bottom_margin = 20 / 297 * height, 18 / 297 * height  # the @page margins, in points
        ys: list[float] = []

        def visit(text, cm, tm, font, size, ys=ys):  # noqa: ANN001
            y = tm[5] * cm[3] + cm[5] if cm else tm[5]
            if text.strip() and bottom_margin < y < height - top_margin:
                ys.append(y)

        page.extract_text(visitor_text=visit)
        area = height - top_margin - bottom_margin
        fills.append((height - top_margin - min(ys)) / area if ys else 0.0)
    return fills


SECTION_TITLES = ["Verdict", "What we found", "Scope and limits", "Glossary", "Model provenance", "Run metadata",
                  "Methods", "Probe set:", "Neuron classes", "Neuron cards", "Limitations", "Caveats for this run",
                  "Reproduce and sign", "Checkpoint comparison", "Summary of what changed", "Models and method",
                  "Persistence per layer", "Neurons that changed most", "Audit diff", "Matched pairs", "Caveats"]


def problems(pdf: Path, section_titles: list[str] = SECTION_TITLES) -> list[str]:
    """What a reader would trip over: word pieces, sentences run together, split neuron ids, and pages less than
    a quarter full that are not the last page of a section (the next page starts a section) or of the report."""
    texts = page_texts(pdf)
    fills = page_fill(pdf)
    found = []
    for number, text in enumerate(texts, 1):
        for piece in WORD_PIECE.finditer(text):
            found.append(f"page {number}: word piece {piece.group(0)!r}")
        for join in SENTENCE_JOIN.finditer(text):
            found.append(f"page {number}: sentences joined {text[max(join.start() - 10, 0):join.end() + 8]!r}")
        for split in SPLIT_ID.finditer(text):
            found.append(f"page {number}: split id {split.group(0)!r}")
        if number < len(texts) and fills[number - 1] < 0.25:
            following = texts[number].lstrip()
            if not any(following.startswith(title) for title in section_titles):
                found.append(f"page {number}: {100 * fills[number - 1]:.0f} % full and not a section's last page")
    return found
