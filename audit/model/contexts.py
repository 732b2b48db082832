"""Top contexts from any text stream: one pass, a few neurons, memory bounded by k × neurons.

Texts stream through in batches (from the probe sets, the reference corpus or a ``--corpus`` file of
any size); a hook reads only the tracked neurons' layers and folds each text's per-neuron maximum and
its position into a :class:`~audit.analysis.topk.TopContexts` state.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Sequence

import torch

from ..analysis.topk import TopContexts
from .harvest import model_inputs, real_token_mask, tokenize
from .loading import Model
from .outputs import forward


def top_contexts(model: Model, texts: Iterable[tuple[str, str]], neurons: Sequence[tuple[int, int]], *,
                 k: int = 20, batch_size: int = 32, max_length: int = 128,
                 state: TopContexts | None = None) -> TopContexts:
    """Stream (key, text) pairs through ``model`` and keep each neuron's ``k`` strongest texts.

    Positions count real tokens (special tokens excluded), as exemplars and traces do. Pass ``state`` to
    continue an earlier pass (or a shard's) instead of starting afresh.
    """
    state = state if state is not None else TopContexts(neurons=list(neurons), k=k)
    columns: dict[int, list[int]] = {}
    for column, (layer, _) in enumerate(state.neurons):
        columns.setdefault(layer, []).append(column)
    index = {layer: torch.tensor([state.neurons[c][1] for c in cols]) for layer, cols in columns.items()}
    stream = iter(texts)
    current: dict[str, torch.Tensor] = {}

    def read(layer: int, x: torch.Tensor) -> None:
        if layer in index:
            values = x[:, :, index[layer].to(x.device)].float() + current["bias"]
            best = values.max(dim=1)
            current["max"][:, columns[layer]] = best.values.cpu()
            current["at"][:, columns[layer]] = best.indices.cpu()

    with torch.inference_mode(), model.sites.hooked(read):
        while batch := list(islice(stream, batch_size)):
            keys, batch_texts = [key for key, _ in batch], [text for _, text in batch]
            encoded = tokenize(model, batch_texts, max_length)
            real = real_token_mask(encoded)
            current["bias"] = torch.zeros(real.shape).masked_fill(~real, float("-inf")).unsqueeze(-1).to(model.device)
            current["max"] = torch.empty(len(batch), len(state.neurons))
            current["at"] = torch.empty(len(batch), len(state.neurons), dtype=torch.long)
            forward(model, model_inputs(model, encoded), outputs=False)
            # a token's index among the text's real tokens: real positions before it
            before = torch.cumsum(real.long(), dim=1) - 1
            positions = before.gather(1, current["at"])
            state.update(keys, batch_texts, current["max"].numpy(), positions.numpy())
    return state


def keyed(texts: Sequence[str], source: str) -> Iterable[tuple[str, str]]:
    """(key, text) pairs with keys ``{source}:{index}``."""
    return ((f"{source}:{i}", text) for i, text in enumerate(texts))


def state_bytes(state: TopContexts) -> int:
    """Bytes held by the state's arrays and texts (what bounds its memory)."""
    return int(state.values.nbytes + state.positions.nbytes + state.keys.size * 8
               + sum(len(t) + len(k) for k, t in state.texts.items()))


__all__ = ["keyed", "state_bytes", "top_contexts"]
