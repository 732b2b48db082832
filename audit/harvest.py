"""Harvest: one batched forward pass over a text list, reading every neuron of every layer.

Per text and neuron it keeps the max and mean over real tokens (padding and special tokens excluded) and
the position of the max; per neuron it keeps running token moments. Nothing else is kept, so memory
beyond the per-text aggregates does not grow with the number of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import expected
from .models import Model

POOLINGS = ("max", "mean")


@dataclass
class Activations:
    """Per-text aggregates, arrays shaped (texts, layers, neurons), and token moments per neuron."""

    max: np.ndarray
    mean: np.ndarray
    argmax: np.ndarray  # token position (in the tokenized sequence) of each text's max
    n_tokens: np.ndarray  # real tokens per text after truncation (special tokens excluded)
    truncated: np.ndarray  # bool per text: longer than max_length
    token_count: int  # real tokens seen in all
    moments: np.ndarray  # (4, layers, neurons) float64: sums of x, x², x³, x⁴ over real tokens
    positive: np.ndarray  # (layers, neurons): real tokens with activation > 0
    max_length: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.max.shape

    def pooled(self, pooling: str = "max") -> np.ndarray:
        """Responses as (texts, layers × neurons), the layout the analyses take."""
        if pooling not in POOLINGS:
            raise expected("pooling", f"one of {POOLINGS}", pooling)
        values = self.max if pooling == "max" else self.mean
        return values.reshape(values.shape[0], -1)

    def rows(self, index: Sequence[int] | np.ndarray) -> "Activations":
        """The aggregates of a subset of texts (token moments stay those of the whole harvest)."""
        index = np.asarray(index)
        return Activations(max=self.max[index], mean=self.mean[index], argmax=self.argmax[index],
                           n_tokens=self.n_tokens[index], truncated=self.truncated[index],
                           token_count=self.token_count, moments=self.moments, positive=self.positive,
                           max_length=self.max_length)

    def token_stats(self) -> dict[str, np.ndarray]:
        """Per-neuron token-level mean, std, density (share > 0) and excess kurtosis, each (layers, neurons)."""
        n = max(self.token_count, 1)
        m1, m2, m3, m4 = (self.moments[i] / n for i in range(4))
        var = np.maximum(m2 - m1**2, 0.0)
        central4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
        with np.errstate(divide="ignore", invalid="ignore"):
            kurtosis = np.where(var > 0, central4 / var**2 - 3.0, 0.0)
        return {"mean": m1, "std": np.sqrt(var), "density": self.positive / n, "kurtosis": kurtosis}


def tokenize(model: Model, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize a batch the way harvest and exemplars both see it (right padding, truncation)."""
    return model.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                           return_tensors="pt", return_special_tokens_mask=True)


def harvest(model: Model, texts: Sequence[str], *, batch_size: int = 32, max_length: int = 128,
            progress: bool = True, description: str = "harvest") -> Activations:
    """Run ``texts`` through ``model`` once and aggregate every neuron of every layer."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise expected("The 'batch_size' parameter", "an int >= 1", batch_size)
    if not isinstance(max_length, int) or max_length < 2:
        raise expected("The 'max_length' parameter", "an int >= 2", max_length)
    n_texts, n_layers, n_neurons = len(texts), model.n_layers, model.neurons_per_layer
    full_lengths = _token_lengths(model, texts)
    order = np.argsort(full_lengths, kind="stable")  # similar lengths share a batch: less padding
    shape = (n_texts, n_layers, n_neurons)
    out = Activations(max=np.empty(shape, np.float32), mean=np.empty(shape, np.float32),
                      argmax=np.empty(shape, np.int16 if max_length <= np.iinfo(np.int16).max else np.int32), n_tokens=np.zeros(n_texts, np.int64),
                      truncated=full_lengths > max_length, token_count=0,
                      moments=np.zeros((4, n_layers, n_neurons)), positive=np.zeros((n_layers, n_neurons)),
                      max_length=max_length)
    state: dict[str, Any] = {}

    def read(layer: int, x: torch.Tensor) -> None:
        x = x.float()
        mask = state["mask"]
        rows = state["rows"]
        zeroed = x * mask
        top, where = x.masked_fill(mask == 0, float("-inf")).max(dim=1)
        out.max[rows, layer] = top.cpu().numpy()
        out.argmax[rows, layer] = where.cpu().numpy()
        out.mean[rows, layer] = (zeroed.sum(dim=1) / state["counts"]).cpu().numpy()
        squared = zeroed * zeroed
        sums = torch.stack([zeroed.sum((0, 1)), squared.sum((0, 1)), (squared * zeroed).sum((0, 1)),
                            (squared * squared).sum((0, 1))])
        out.moments[:, layer] += sums.double().cpu().numpy()
        out.positive[layer] += (zeroed > 0).sum((0, 1)).cpu().numpy()

    base = getattr(model.module, "base_model", model.module)
    batches = [order[i:i + batch_size] for i in range(0, n_texts, batch_size)]
    with torch.inference_mode(), model.sites.hooked(read):
        for rows in tqdm(batches, desc=description, unit="batch", disable=not progress, leave=False):
            encoded = tokenize(model, [texts[i] for i in rows], max_length)
            special = encoded.pop("special_tokens_mask")
            real = encoded["attention_mask"].bool() & ~special.bool()
            counts = real.sum(dim=1, keepdim=True)
            if bool((counts == 0).any()):
                real = real | encoded["attention_mask"].bool() & (counts == 0)  # all-special text: keep them
                counts = real.sum(dim=1, keepdim=True)
            state.update(rows=rows, mask=real.unsqueeze(-1).to(model.device, torch.float32),
                         counts=counts.to(model.device, torch.float32))
            out.n_tokens[rows] = counts[:, 0].numpy()
            out.token_count += int(counts.sum())
            base(**{k: v.to(model.device) for k, v in encoded.items()})
    return out


def _token_lengths(model: Model, texts: Sequence[str], chunk: int = 1024) -> np.ndarray:
    """Untruncated token counts (special tokens included), computed in chunks, keeping only the counts."""
    lengths = np.empty(len(texts), np.int64)
    for start in range(0, len(texts), chunk):
        ids = model.tokenizer(list(texts[start:start + chunk]), truncation=False)["input_ids"]
        lengths[start:start + len(ids)] = [len(seq) for seq in ids]
    return lengths


def exemplars(model: Model, texts: Sequence[str], acts: Activations, layer: int, neuron: int,
              *, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` texts where a neuron fires most, each with the token (and its character span) at its max."""
    top = np.argsort(-acts.max[:, layer, neuron], kind="stable")[:k]
    encoded = model.tokenizer([texts[i] for i in top], truncation=True, max_length=acts.max_length,
                              return_offsets_mapping=True)
    found = []
    for row, text_index in enumerate(top):
        position = int(acts.argmax[text_index, layer, neuron])
        start, end = encoded["offset_mapping"][row][position]
        token = model.tokenizer.convert_ids_to_tokens(encoded["input_ids"][row][position])
        found.append({"text_index": int(text_index), "text": texts[text_index], "position": position,
                      "token": token, "char_start": int(start), "char_end": int(end),
                      "activation": float(acts.max[text_index, layer, neuron])})
    return found
