"""Import CrowS-Pairs (Nangia et al. 2020, CSV) as a paired probe set.

Rows become paired items; a malformed row is an input error naming the file and row number.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path
from typing import Any

from ..errors import AuditInputError, AuditWarning, read_input_text

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")


def import_crows_pairs(path: str | Path, *, split: bool = False) -> list[dict[str, Any]]:
    """CrowS-Pairs rows → paired items with groups ``stereotypical`` / ``anti_stereotypical``.

    ``stereo_antistereo`` says which of sent_more/sent_less holds the stereotype; ``bias_type`` becomes
    the item's ``marker`` (or, with ``split``, one probe set per bias type).
    """
    path = Path(path)
    text = read_input_text(path, "CSV file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in CROWS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AuditInputError(f"{path}: missing column {missing[0]!r} (CrowS-Pairs needs "
                                  f"{', '.join(CROWS_COLUMNS)})")
        rows = list(enumerate(reader, start=2))  # row 1 is the header
    except csv.Error as exc:
        raise AuditInputError(f"{path}: not a readable CSV file ({exc})") from None
    items: dict[str, list[dict[str, str]]] = {}
    identical: list[int] = []
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
        if stereo == anti:
            identical.append(number)
        bias = re.sub(r"[^a-z0-9-]+", "-", values["bias_type"].lower()).strip("-")
        items.setdefault(bias, []).append({"stereotypical": stereo, "anti_stereotypical": anti, "marker": bias})
    if not items:
        raise AuditInputError(f"{path}: no data rows")
    if identical:
        shown = ", ".join(map(str, identical[:5])) + (f" and {len(identical) - 5} more" if len(identical) > 5 else "")
        warnings.warn(f"{path}: rows {shown}: sent_more equals sent_less; such pairs show no difference",
                      AuditWarning, stacklevel=2)
    common = {"kind": "paired", "tags": ["fairness"], "groups": ["stereotypical", "anti_stereotypical"],
              "source": f"Imported from CrowS-Pairs ({path.name}); see the dataset's licence (CC BY-SA 4.0)."}
    if not split:
        every = [item for group in items.values() for item in group]
        return [{"name": "crows-pairs", "description": "CrowS-Pairs sentence pairs: the stereotypical versus "
                 "the anti-stereotypical version; marker = bias type.", **common, "items": every}]
    return [{"name": f"crows-pairs-{bias}", "description": f"CrowS-Pairs sentence pairs about {bias}: the "
             "stereotypical versus the anti-stereotypical version.", **common, "items": group}
            for bias, group in sorted(items.items())]
