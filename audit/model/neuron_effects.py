"""Single-neuron ablation effects per context: the causal check of an explanation.

Each row is (context, neuron): the context runs once clean and once with that one neuron set to zero at every
token; rows with different neurons share a batch (each row's hook zeroes its own neuron). The output change is
the model's own: mean KL(clean ‖ ablated) of next-token distributions for causal LMs, 1 − cosine of the
mean-pooled last hidden state (the sentence embedding) for encoders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .loading import Model
from .outputs import mean_kl, model_outputs
from .variants import length_batches, wrap


def _inputs(model: Model, sequences: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    pad = model.tokenizer.pad_token_id
    pad = pad if pad is not None else 0
    wrapped = [wrap(model, s)[0] for s in sequences]
    width = max(len(w) for w in wrapped)
    ids = torch.full((len(wrapped), width), pad, dtype=torch.long)
    mask = torch.zeros((len(wrapped), width), dtype=torch.long)
    for r, full in enumerate(wrapped):
        ids[r, :len(full)] = torch.tensor(full)
        mask[r, :len(full)] = 1
    return {"input_ids": ids.to(model.device), "attention_mask": mask.to(model.device)}


def ablation_output_change(model: Model, sequences: Sequence[Sequence[int]],
                           rows: Sequence[tuple[int, int, int]], *, batch_size: int = 32) -> np.ndarray:
    """For each row (sequence index, layer, neuron): the output change when that neuron is zeroed.
    ``sequences``: real-token id lists (special tokens are added as the tokenizer adds them)."""
    changes = np.zeros(len(rows))
    if not rows:
        return changes
    state: dict[str, object] = {"targets": None}

    def rewrite(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        targets = state["targets"]
        if targets is None or layer not in targets:
            return None
        batch_rows, neurons = targets[layer]
        x = x.clone()
        x[batch_rows, :, neurons] = 0
        return x

    # rows sharing a context sit together; each batch runs its contexts clean and its rows ablated at once,
    # so clean outputs (vocabulary-wide for causal LMs) are held for one batch only
    order = sorted(range(len(rows)), key=lambda i: (len(sequences[rows[i][0]]), rows[i][0]))
    lengths = [len(sequences[row[0]]) for row in rows]
    with torch.inference_mode(), model.sites.hooked(rewrite):
        for chunk in length_batches(lengths, order, batch_size):
            contexts = list(dict.fromkeys(rows[i][0] for i in chunk))
            at = {s: r for r, s in enumerate(contexts)}
            inputs = _inputs(model, [sequences[s] for s in contexts] + [sequences[rows[i][0]] for i in chunk])
            targets: dict[int, tuple[list[int], list[int]]] = {}
            for r, i in enumerate(chunk):
                _, layer, neuron = rows[i]
                targets.setdefault(layer, ([], []))
                targets[layer][0].append(len(contexts) + r)
                targets[layer][1].append(neuron)
            state["targets"] = {layer: (torch.tensor(b), torch.tensor(n)) for layer, (b, n) in targets.items()}
            try:
                out = model_outputs(model, inputs)
            finally:
                state["targets"] = None
            n = len(contexts)
            index = torch.tensor([at[rows[i][0]] for i in chunk], device=out.device)
            clean, ablated = out[:n][index], out[n:]
            if model.kind == "causal-lm":
                change = mean_kl(clean, ablated, {"attention_mask": inputs["attention_mask"][n:]})
            else:
                change = 1 - torch.nn.functional.cosine_similarity(clean, ablated)
            changes[chunk] = change.cpu().numpy()
    return changes
