"""Execution: where the corpus-scale work runs — in this process, or on a Ray cluster — through shards.

The work that outgrows one machine has one shape: shards of text in, a small mergeable state per shard out
(per-text harvest aggregates, correlation sums between two models, top contexts), one merge at the end in
shard-id order. ``tasks`` says what a shard of each job computes and how its state is stored, ``plan`` cuts
the work into shards along the harvest's own batches (so every text meets the same batch however the work
is split), ``state`` keeps completed shard states on disk so an interrupted run resumes, ``executor`` runs
shards in this process and ``ray_executor`` on Ray actors that load the job's models once and prove they
hold the same weights.
May import ``audit.errors``, ``audit.provenance``, ``audit.config``, ``audit.model`` and ``audit.analysis``;
the stages and the CLI use it, never the other way round. Ray is imported only when the Ray executor is used.
"""
