"""Per-text summaries of a model's own outputs, from the same forward pass that harvest reads.

Causal LMs: mean log-likelihood per predicted token (each real token given its prefix). Encoders: the
mean-pooled last hidden state (the sentence-transformers embedding). Ablation reuses these functions so
clean and intervened runs are measured the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .loading import Model


def forward(model: Model, inputs: dict[str, torch.Tensor], *, outputs: bool) -> Any:
    """Run the model: the base model alone when no outputs are needed (skips the LM head)."""
    if outputs:
        return model.module(**inputs)
    base = getattr(model.module, "base_model", model.module)
    return base(**inputs)


def next_token_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token at every position but the last (batch × tokens−1 × vocab)."""
    return torch.log_softmax(logits[:, :-1].float(), dim=-1)


def mean_loglik(logprobs: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per text: mean log-probability of each attended token given its prefix."""
    token = logprobs.gather(-1, inputs["input_ids"][:, 1:].unsqueeze(-1))[..., 0]
    predicted = inputs["attention_mask"][:, 1:].to(token.dtype)
    return (token * predicted).sum(dim=1) / predicted.sum(dim=1).clamp(min=1)


def mean_kl(clean: torch.Tensor, other: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per text: mean over predicted positions of KL(clean ‖ other) between next-token distributions."""
    per_position = (clean.exp() * (clean - other)).sum(dim=-1)
    predicted = inputs["attention_mask"][:, 1:].to(per_position.dtype)
    return (per_position * predicted).sum(dim=1) / predicted.sum(dim=1).clamp(min=1)


def pooled_embedding(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden state over attended tokens (the sentence-transformers pooling)."""
    hidden = hidden.float()
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def model_outputs(model: Model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Run the full model: next-token log-probabilities (causal LMs) or pooled embeddings (encoders)."""
    result = model.module(**inputs)
    if model.kind == "causal-lm":
        return next_token_logprobs(result.logits)
    return pooled_embedding(result.last_hidden_state, inputs["attention_mask"])


def summarize(model: Model, inputs: dict[str, torch.Tensor], result: Any) -> dict[str, np.ndarray]:
    """Per-text output summaries of one batch's forward ``result``."""
    if model.kind == "causal-lm":
        loglik = mean_loglik(next_token_logprobs(result.logits), inputs)
        return {"loglik": loglik.cpu().numpy(),
                "n_predicted": inputs["attention_mask"][:, 1:].sum(dim=1).cpu().numpy()}
    return {"embedding": pooled_embedding(result.last_hidden_state, inputs["attention_mask"]).cpu().numpy()}


def allocate(model: Model, n_texts: int) -> dict[str, np.ndarray]:
    """Empty per-text output arrays for ``n_texts`` texts."""
    if model.kind == "causal-lm":
        return {"loglik": np.zeros(n_texts), "n_predicted": np.zeros(n_texts)}
    hidden = model.module.config.hidden_size
    return {"embedding": np.zeros((n_texts, hidden), np.float32)}


def encode_targets(model: Model, prompts: Sequence[str], targets: Sequence[str], *,
                   max_length: int = 128) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Tokenize ``prompt + " " + target`` pairs; also returns, per pair, the log-prob index of the first target
    token (the target's tokens are those the joined text adds beyond the tokenized prompt)."""
    tokenizer = model.tokenizer
    joined = [f"{p} {t}" for p, t in zip(prompts, targets)]
    prompt_lengths = [len(ids) for ids in tokenizer(list(prompts))["input_ids"]]
    encoded = tokenizer(joined, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v.to(model.device) for k, v in encoded.items()}, [max(n, 1) - 1 for n in prompt_lengths]


def target_scores(logprobs: torch.Tensor, inputs: dict[str, torch.Tensor], firsts: Sequence[int]) -> np.ndarray:
    """Per pair: the summed log-probability of its target tokens (``logprobs`` from :func:`next_token_logprobs`)."""
    token = logprobs.gather(-1, inputs["input_ids"][:, 1:].unsqueeze(-1))[..., 0].cpu()
    lengths = inputs["attention_mask"].sum(dim=1).tolist()
    return np.array([float(token[row, first:length - 1].sum()) for row, (first, length)
                     in enumerate(zip(firsts, lengths))])


def target_logprobs(model: Model, prompts: Sequence[str], targets: Sequence[str], *, batch_size: int = 16,
                    max_length: int = 128) -> np.ndarray:
    """Causal LMs: log P(target | prompt), summed over the target's tokens, for each pair."""
    if model.kind != "causal-lm":
        raise ValueError("target log-probabilities need a causal language model")
    scores = np.zeros(len(prompts))
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            inputs, firsts = encode_targets(model, prompts[start:start + batch_size],
                                            targets[start:start + batch_size], max_length=max_length)
            logprobs = next_token_logprobs(model.module(**inputs).logits)
            scores[start:start + len(firsts)] = target_scores(logprobs, inputs, firsts)
    return scores
