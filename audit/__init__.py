"""neuron-audit: audit a language model's MLP neurons for safety and fairness concepts.

The public surface, in data-flow order: probe sets in, a model, the audit, the typed result out.
"""

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

__all__ = ["Activations", "AuditInputError", "AuditResult", "Model", "ProbeSet", "RunConfig", "SCHEMA_VERSION",
           "Selectivity", "bundled_probeset_paths", "concept_selectivity", "dumps", "harvest", "load_model",
           "load_probesets", "load_results", "parse_probeset", "results_schema", "run_audit", "validate_results",
           "write_outputs"]

__version__ = "0.1.0"
