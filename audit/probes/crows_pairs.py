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

from ..errors import AuditInputError, AuditWarning
from ..inputs import read_input_text

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")


def import_crows_pairs(path: str | Path, *, split: bool = False) -> list[dict[str, Any]]:
    """CrowS-Pairs rows → paired items with groups ``stereotypical`` / ``anti_stereotypical``, in source order.

    In every row ``sent_more`` is the more stereotypical sentence; ``stereo_antistereo`` only says whether it
    demonstrates (``stereo``) or violates (``antistereo``) a stereotype about the disadvantaged group, and is
    kept as item metadata. So ``stereotypical`` is always ``sent_more``, as in the paper's metric. Each item's
    ``id`` is ``<file>:<record>`` (the header is record 1); ``bias_type`` becomes its ``marker`` (or, with
    ``split``, one probe set per bias type).
    """
    path = Path(path)
    text = read_input_text(path, "CSV file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = reader.fieldnames or []
        missing = [c for c in CROWS_COLUMNS if c not in fields]
        if missing:
            raise AuditInputError(f"{path}: missing column {missing[0]!r} (CrowS-Pairs needs "
                                  f"{', '.join(CROWS_COLUMNS)})")
        index_column = fields[0] if fields and fields[0] not in CROWS_COLUMNS else None
        rows = list(enumerate(reader, start=2))  # row 1 is the header
    except csv.Error as exc:
        raise AuditInputError(f"{path}: not a readable CSV file ({exc})") from None
    items: list[dict[str, Any]] = []
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
        if values["sent_more"] == values["sent_less"]:
            identical.append(number)
        bias = re.sub(r"[^a-z0-9-]+", "-", values["bias_type"].lower()).strip("-")
        meta: dict[str, Any] = {"file": path.name, "row": number, "stereo_antistereo": direction,
                                "bias_type": values["bias_type"]}
        if index_column is not None and (row.get(index_column) or "").strip():
            meta["index"] = row[index_column].strip()
        items.append({"id": f"{path.name}:{number}", "stereotypical": values["sent_more"],
                      "anti_stereotypical": values["sent_less"], "marker": bias, "meta": meta})
    if not items:
        raise AuditInputError(f"{path}: no data rows")
    if identical:
        shown = ", ".join(map(str, identical[:5])) + (f" and {len(identical) - 5} more" if len(identical) > 5 else "")
        warnings.warn(f"{path}: rows {shown}: sent_more equals sent_less; such pairs show no difference",
                      AuditWarning, stacklevel=2)
    common = {"kind": "paired", "tags": ["fairness"], "groups": ["stereotypical", "anti_stereotypical"],
              "source": f"Imported from CrowS-Pairs ({path.name}); see the dataset's licence (CC BY-SA 4.0)."}
    if not split:
        return [{"name": "crows-pairs", "description": "CrowS-Pairs sentence pairs: the more stereotypical "
                 "sentence (sent_more) versus the less stereotypical one (sent_less); marker = bias type.",
                 **common, "items": items}]
    by_bias: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_bias.setdefault(item["marker"], []).append(item)
    return [{"name": f"crows-pairs-{bias}", "description": f"CrowS-Pairs sentence pairs about {bias}: the more "
             "stereotypical sentence (sent_more) versus the less stereotypical one (sent_less).", **common,
             "items": group} for bias, group in sorted(by_bias.items())]
