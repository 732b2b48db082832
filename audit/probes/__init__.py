"""Probes: what the audit feeds the model.

Owns the probe-set YAML contract (``probeset``: schema, loading, validation), the general reference
corpus (``reference``), and one importer module per public benchmark (``crows_pairs``, ``winobias``) with
their YAML writer (``export``). May import only ``audit.errors`` and ``audit.provenance``: probe sets are
plain data, known before any model is loaded.
"""
