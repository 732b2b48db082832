"""neuron-audit: audit a language model's MLP neurons for safety and fairness concepts.

The public surface, in data-flow order: probe sets in, a model, the audit, the typed result out. Names load on
first use (PEP 562), so ``import audit.cli`` stays light and the command line can take Ctrl-C from its
first moment instead of while torch is still importing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Selectivity": ".analysis.selectivity", "concept_selectivity": ".analysis.selectivity",
    "RunConfig": ".config", "AuditInputError": ".errors",
    "Activations": ".model.harvest", "harvest": ".model.harvest",
    "Model": ".model.loading", "load_model": ".model.loading",
    "ProbeSet": ".probes.probeset", "bundled_probeset_paths": ".probes.probeset",
    "load_probesets": ".probes.probeset", "parse_probeset": ".probes.probeset",
    "SCHEMA_VERSION": ".results.contract", "AuditResult": ".results.contract",
    "dumps": ".results.io", "load_results": ".results.io", "write_outputs": ".results.io",
    "results_schema": ".results.schema", "validate_results": ".results.schema",
    "run_audit": ".stages.audit",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from .analysis.selectivity import Selectivity, concept_selectivity
    from .config import RunConfig
    from .errors import AuditInputError
    from .model.harvest import Activations, harvest
    from .model.loading import Model, load_model
    from .probes.probeset import ProbeSet, bundled_probeset_paths, load_probesets, parse_probeset
    from .results.contract import SCHEMA_VERSION, AuditResult
    from .results.io import dumps, load_results, write_outputs
    from .results.schema import results_schema, validate_results
    from .stages.audit import run_audit
