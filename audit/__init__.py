"""neuron-audit: audit a language model's MLP neurons for safety and fairness concepts."""

from .errors import AuditInputError
from .findings import dumps, load_results, write_outputs
from .harvest import Activations, harvest
from .models import Model, load_model
from .pipeline import RunConfig, run_audit
from .probes import ProbeSet, bundled_probeset_paths, load_probesets, parse_probeset
from .selectivity import Selectivity, concept_selectivity

__all__ = ["Activations", "AuditInputError", "Model", "ProbeSet", "RunConfig", "Selectivity",
           "bundled_probeset_paths", "concept_selectivity", "dumps", "harvest", "load_model",
           "load_probesets", "load_results", "parse_probeset", "run_audit", "write_outputs"]

__version__ = "0.1.0"
