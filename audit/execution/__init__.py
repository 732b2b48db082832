"""Execution: where the corpus-scale work runs — in this process, or on a Ray cluster — through shards.

The work that outgrows one machine has one shape: shards of text in, a small mergeable state per shard out
(here: per-text harvest aggregates), one merge at the end in shard-id order. ``plan`` cuts the work into
shards along the harvest's own batches (so every text meets the same batch however the work is split),
``state`` keeps completed shard states on disk so an interrupted run resumes, ``local`` runs shards in this
process and ``ray_executor`` on Ray actors that load the model once and prove they hold the same weights.
May import ``audit.errors``, ``audit.provenance``, ``audit.config``, ``audit.model`` and ``audit.analysis``;
the stages and the CLI use it, never the other way round. Ray is imported only when the Ray executor is used.
"""
