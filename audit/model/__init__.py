"""Model: everything that touches a torch model.

Owns loading and provenance of the weights (``loading``), the neuron-site abstraction (``sites``), the
streaming per-text harvest and its on-disk cache (``harvest``, ``cache``), interventions for ablation
(``interventions``), the model's own outputs (``outputs``) and weight-based statistics such as W_out·W_U
(``vocab``). May import ``audit.errors``, ``audit.provenance``, ``audit.config`` and ``audit.analysis``;
never stages, results or the CLI.
"""
