"""Results: the audit's output, from the typed result model to the rendered report.

Owns the results.json contract (``contract``: dataclasses with ``to_dict``/``from_dict``; ``schema``: the
published JSON Schema and validation), reading and atomic writing (``io``), policy checks (``policy``),
SVG plots (``plots``) and HTML/PDF rendering (``report``, templates at the repository root). Renders from
a result alone, so ``render`` can redraw an old results.json: may import ``audit.errors`` and
``audit.provenance`` only — never the model, the analyses or the stages.
"""
