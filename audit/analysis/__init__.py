"""Analysis: pure functions over arrays, the statistics the audit stands on.

Selectivity (AUROC, effect size, BH q), paired disparity, LAPE language neurons, polysemanticity rules
and ablation statistics (nulls, gaps, bootstrap CIs). Inputs and outputs are numpy arrays and small
dataclasses; nothing here loads a model, reads a file or renders a report (``resident`` only drops a
memory-mapped input's pages once read). May import only ``audit.errors`` and its own modules (and numpy,
scipy, scikit-learn, threadpoolctl) — never torch.
"""
