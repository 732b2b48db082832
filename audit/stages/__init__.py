"""Stages: the orchestration that joins a model and an analysis for one probe set.

``audit.run_audit`` is the single entry: for each probe set it harvests (``model``), runs the concept or
paired analysis (``concept``, ``paired``), validates flagged neurons by ablation (``ablation``) and adds
per-neuron evidence (``evidence``), and returns the typed :class:`~audit.results.contract.AuditResult`.
May import every lower room (config, probes, model, analysis, results); nothing but the CLI imports it.
"""
