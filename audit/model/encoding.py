"""How texts become model inputs, the same for harvest, sentence scores, ablation and comparison.

Encoders: the tokenizer's own framing (e.g. BERT's [CLS] … [SEP]). Causal LMs: the model's prefix token
(:attr:`Model.prefix_token`: BOS, else EOS) followed by every token of the text, with no other special
tokens — lm-evaluation-harness's input for a loglikelihood request with an empty context (CrowS-Pairs and
the like). So every token of a text is predicted from something and scored, and the text's first word is
not the attention sink (without a prefix a causal LM dumps attention on position 0, and its MLP activations
there are far smaller than elsewhere). The prefix is marked special: aggregates leave it out.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .loading import Model


def prefix_id(model: Model) -> int | None:
    """The token id every causal-LM text starts with, or None (encoders; tokenizers with neither BOS nor EOS)."""
    prefix = model.prefix_token
    return None if prefix is None else prefix["id"]


def scoring_convention(model: Model) -> str | None:
    """One sentence naming how a causal LM's sentences are scored (None for encoders)."""
    if model.kind != "causal-lm":
        return None
    prefix = model.prefix_token
    if prefix is None:
        return ("each sentence scored from its own tokens only (the tokenizer has neither BOS nor EOS, so its "
                "first token is context and is not scored)")
    return (f"lm-evaluation-harness: every token of each sentence scored after the model's prefix token "
            f"(BOS, else EOS; here {prefix['kind'].upper()} {prefix['text']!r}, id {prefix['id']})")


def prefixed_ids(model: Model, ids: Sequence[int]) -> list[int]:
    """A text's token ids (no special tokens) with the prefix in front, unless the text already starts with it
    (then, as in lm-evaluation-harness, that first token is the context)."""
    prefix = prefix_id(model)
    ids = list(ids)
    if prefix is None or (ids and ids[0] == prefix):
        return ids
    return [prefix, *ids]


def encode(model: Model, texts: Sequence[str], max_length: int, **extra: Any) -> dict[str, torch.Tensor]:
    """Tokenize a batch as every pass sees it: right padding, truncation to ``max_length`` tokens (prefix
    included), a ``special_tokens_mask`` (the prefix counts as special); ``return_offsets_mapping=True`` adds
    character spans ((0, 0) for the prefix and padding)."""
    texts = list(texts)
    prefix = prefix_id(model)
    if prefix is None:
        return model.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                               return_special_tokens_mask=True, **extra)
    spans = bool(extra.pop("return_offsets_mapping", False))
    body = model.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max(max_length - 1, 1),
                           return_special_tokens_mask=True, return_offsets_mapping=spans, **extra)
    rows = []
    for row, ids in enumerate(body["input_ids"]):
        special = list(body["special_tokens_mask"][row])
        offsets = [tuple(span) for span in body["offset_mapping"][row]] if spans else []
        if not ids or ids[0] != prefix:
            ids, special = [prefix, *ids], [0, *special]
            offsets = [(0, 0), *offsets] if spans else []
        special[0] = 1
        rows.append((list(ids), special, offsets))
    width = max(len(ids) for ids, _, _ in rows)
    pad = model.tokenizer.pad_token_id
    pad = pad if pad is not None else prefix
    out = {"input_ids": torch.full((len(rows), width), pad, dtype=torch.long),
           "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
           "special_tokens_mask": torch.ones((len(rows), width), dtype=torch.long)}
    if spans:
        out["offset_mapping"] = torch.zeros((len(rows), width, 2), dtype=torch.long)
    for row, (ids, special, offsets) in enumerate(rows):
        n = len(ids)
        out["input_ids"][row, :n] = torch.tensor(ids)
        out["attention_mask"][row, :n] = 1
        out["special_tokens_mask"][row, :n] = torch.tensor(special)
        if spans:
            out["offset_mapping"][row, :n] = torch.tensor(offsets, dtype=torch.long).reshape(n, 2)
    return out


def token_counts(model: Model, texts: Sequence[str]) -> list[int]:
    """Untruncated token counts of the texts as :func:`encode` would feed them (special tokens included)."""
    if not texts:  # the fast tokenizers fail on an empty batch
        return []
    if prefix_id(model) is None:
        return [len(ids) for ids in model.tokenizer(list(texts), truncation=False)["input_ids"]]
    body = model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    return [len(prefixed_ids(model, ids)) for ids in body]


__all__ = ["encode", "prefix_id", "prefixed_ids", "scoring_convention", "token_counts"]
