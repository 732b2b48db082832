"""Write imported probe-set documents as one validated YAML text."""

from __future__ import annotations

from typing import Any

import yaml

from .probeset import parse_probeset


def to_yaml(documents: list[dict[str, Any]], *, source: str) -> str:
    """Validate imported documents as probe sets and return them as one YAML text."""
    for document in documents:
        parse_probeset(document, source=source)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=1000)
