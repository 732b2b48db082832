"""Render report.html from a result dict alone (so an old results.json can be re-drawn without the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = lambda value, digits=3: "—" if value is None else f"{value:.{digits}f}"
    env.filters["sci"] = lambda value: "—" if value is None else f"{value:.2e}"
    return env


def render_html(result: Mapping[str, Any]) -> str:
    """The HTML report for one audit result."""
    return _environment().get_template("report.html.j2").render(r=result)
