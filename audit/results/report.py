"""Render the audit report (HTML, and PDF through weasyprint) from a result dict alone, so an old
results.json can be re-drawn without the model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

import jinja2
from markupsafe import Markup

from ..provenance import sha256_json
from . import conclusions, plots, scope
from .io import dumps

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
CARDS_PER_SET = 5
PRINT_CARDS_PER_SET = 2  # the PDF keeps the first cards of each set; report.html shows them all
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _num(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    """Counts with a thousands separator (1,946)."""
    return "—" if value is None else f"{int(value):,}"


def _truncate_words(text: str, limit: int = 90) -> str:
    """A long example text cut to ``limit`` characters at a word boundary, with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def report_id(result: Mapping[str, Any]) -> str:
    """The report's id: sha256 of the canonical JSON (sorted keys, no spacing) of the results file as written,
    so anyone can recompute it from results.json and match it against the PDF's footer."""
    return sha256_json(json.loads(dumps(result)))


def display_name(model: Mapping[str, Any], override: str | None = None) -> str:
    """How a report names a model: the override, else its config or package name rather than a bare folder name
    (a folder inside an installed package is named after the package)."""
    if override:
        return override
    name, source = str(model.get("name", "")), str(model.get("source", ""))
    if source.startswith("local:"):
        parts = Path(source[len("local:"):]).parts
        for marker in ("site-packages", "dist-packages"):
            if marker in parts and parts.index(marker) + 1 < len(parts):
                package = parts[parts.index(marker) + 1].replace("_", "-")
                return package if package == name else f"{package} ({name})"
    return name


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["count"] = _count
    env.filters["short"] = _truncate_words
    env.filters["pct"] = lambda value, digits=1: "—" if value is None else f"{100 * value:.{digits}f} %"
    env.filters["plural"] = lambda count, noun: f"{count} {noun}{'' if count == 1 else 's'}"
    env.filters["sci"] = lambda value: "—" if value is None else f"{value:.2e}"
    env.filters["css_string"] = lambda value: Markup(re.sub(r'[^\w .,:/@+()-]', "", str(value)))
    env.filters["layer_labels"] = lambda values: [f"L{i}" for i in range(len(values))]
    env.filters["bars_svg"] = lambda labels, series, title, x_label="layer", y_label="neurons": Markup(
        plots.bars(labels, series, title, x_label=x_label, y_label=y_label))
    env.filters["histogram_svg"] = lambda edges, series, title, x_label="per-text maximum activation", \
        y_label="texts": Markup(plots.histogram(edges, series, title, x_label=x_label, y_label=y_label))
    env.filters["graph_svg"] = lambda patterns, title: Markup(plots.neuron_graph(patterns, title))
    env.filters["effect_svg"] = lambda null, effect, title, x_label="effect of ablation": Markup(
        plots.effect_vs_null(null, effect, title, x_label=x_label))
    env.filters["dose_svg"] = lambda rows, title, y_title: Markup(plots.dose_response(rows, title, y_title=y_title))
    env.filters["deactivation_svg"] = lambda d: Markup(plots.heatmap(
        [f"{row['deactivated']} ({row['n_neurons']})" for row in d["rows"]], d["languages"],
        [[row["ratio"].get(g) for g in d["languages"]] for row in d["rows"]],
        "Perplexity ratio (deactivated / clean) of each language's reference text",
        x_title="perplexity measured on", y_title="neurons set to zero"))
    return env


def render_html(result: Mapping[str, Any]) -> str:
    """The self-contained HTML report for one audit result: verdict first, then plain-English conclusions,
    scope and limits, glossary, the evidence, and the reproduce-and-sign page."""
    return _environment().get_template("report.html.j2").render(
        r=result, notes=font_notes(result), cards_per_set=CARDS_PER_SET, print_cards_per_set=PRINT_CARDS_PER_SET,
        report_id=report_id(result),
        model_name=display_name(result["model"]), scope=scope.scope(result),
        conclusions=conclusions.conclusions(result), glossary=scope.GLOSSARY)


def render_pdf(html: str) -> bytes:
    """The same report as PDF (print CSS: running header and footer, page numbers)."""
    import weasyprint

    return weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()


def font_notes(result: Mapping[str, Any]) -> list[str]:
    """A visible note when probe texts need CJK glyphs that no installed font provides."""
    text = str(result.get("probesets", ""))
    if not CJK.search(text) or _has_cjk_font():
        return []
    return ["Some probe texts use Chinese, Japanese or Korean characters, but no CJK font is installed, so the PDF "
            "shows them as empty boxes; install a CJK font (Debian: fonts-noto-cjk) and re-render."]


def _has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listing = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(listing.stdout.strip())


def render_compare_html(result: Mapping[str, Any], *, cards: int = 3) -> str:
    """The self-contained HTML report for one checkpoint comparison (comparison.json)."""
    names = result["run"].get("names", {})
    return _environment().get_template("compare.html.j2").render(
        r=result, notes=[], cards=matched_cards(result, cards), report_id=report_id(result),
        name_a=display_name(result["model_a"], names.get("a")), name_b=display_name(result["model_b"], names.get("b")),
        conclusions=conclusions.compare_conclusions(result), glossary=scope.GLOSSARY)


def matched_cards(result: Mapping[str, Any], per_set: int) -> list[dict[str, Any]]:
    """For each probe set, A's top reported neurons with their sections and, where B reported the partner, B's."""
    audits = result.get("audits")
    if not audits:
        return []
    found = []
    for diff in result["probesets"]:
        sections = [next(s for s in audits[side]["probesets"] if s["name"] == diff["name"]) for side in ("a", "b")]
        entries = [{n["name"]: n for n in (s["neurons"] if s["kind"] == "concept" else s["disparity"]["neurons"])}
                   for s in sections]
        for pair in diff["pairs_a"][:per_set]:
            if pair["name"] in entries[0]:
                found.append({"pair": pair, "section_a": sections[0], "neuron_a": entries[0][pair["name"]],
                              "section_b": sections[1], "neuron_b": entries[1].get(pair["partner_name"])})
    return found
