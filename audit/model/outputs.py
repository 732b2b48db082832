"""Per-text summaries of a model's own outputs, from the same forward pass that harvest reads.

Causal LMs: the log-likelihood of each text, as lm-evaluation-harness scores a sentence with an empty context:
the text follows the model's prefix token (BOS, else EOS; see :mod:`audit.model.encoding`) and every one of
its tokens is predicted from what precedes it and counted — the sum per text, and the mean per token. Encoders:
the mean-pooled last hidden state (the sentence-transformers embedding). Ablation reuses these functions so
clean and intervened runs are measured the same way.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any, Sequence

import numpy as np
import torch

from .encoding import encode, prefixed_ids
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


def sentence_loglik(logprobs: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per text: the summed log-probability of every attended token after the first (with a causal LM's
    prefix token first, that is every token of the text: lm-evaluation-harness's sentence log-likelihood)."""
    token = logprobs.gather(-1, inputs["input_ids"][:, 1:].unsqueeze(-1))[..., 0]
    return (token * inputs["attention_mask"][:, 1:].to(token.dtype)).sum(dim=1)


def warm_up() -> None:
    """One throwaway float32 product right before a pass's first batch. Without it, about one `compare` process
    in eight gave its first batch activations ~1e-5 (relative) off what every later forward of the same texts
    gives, so a resumed run (whose first batch is another shard's) differed from a clean one in the last digits.
    The cause, some first-call state of the CPU kernels after the models load, was not isolated: the same
    product made before loading does not help; made here, 64 runs in a row gave the same bits. Costs well
    under a millisecond."""
    torch.nn.functional.linear(torch.ones(20, 128), torch.ones(512, 128), torch.ones(512))


def mean_loglik(logprobs: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per text: :func:`sentence_loglik` divided by the number of tokens it scores."""
    predicted = inputs["attention_mask"][:, 1:].to(logprobs.dtype)
    return sentence_loglik(logprobs, inputs) / predicted.sum(dim=1).clamp(min=1)


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
        logprobs = next_token_logprobs(result.logits)
        return {"loglik": mean_loglik(logprobs, inputs).cpu().numpy(),
                "sentence_loglik": sentence_loglik(logprobs, inputs).cpu().numpy(),
                "n_predicted": inputs["attention_mask"][:, 1:].sum(dim=1).cpu().numpy()}
    return {"embedding": pooled_embedding(result.last_hidden_state, inputs["attention_mask"]).cpu().numpy()}


def allocate(model: Model, n_texts: int) -> dict[str, np.ndarray]:
    """Empty per-text output arrays for ``n_texts`` texts."""
    if model.kind == "causal-lm":
        return {"loglik": np.zeros(n_texts), "sentence_loglik": np.zeros(n_texts), "n_predicted": np.zeros(n_texts)}
    hidden = model.module.config.hidden_size
    return {"embedding": np.zeros((n_texts, hidden), np.float32)}


def encode_targets(model: Model, prompts: Sequence[str], targets: Sequence[str], *,
                   max_length: int = 128) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Tokenize ``prompt + " " + target`` pairs as every pass does (after a causal LM's prefix token); also
    returns, per pair, the log-prob index of the first target token (the target's tokens are those the joined
    text adds beyond the tokenized prompt)."""
    joined = [f"{p} {t}" for p, t in zip(prompts, targets)]
    if model.prefix_token is None:
        prompt_lengths = [len(ids) for ids in model.tokenizer(list(prompts))["input_ids"]]
    else:
        prompt_lengths = [len(prefixed_ids(model, ids))
                          for ids in model.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    encoded = encode(model, joined, max_length)
    return ({k: v.to(model.device) for k, v in encoded.items() if k != "special_tokens_mask"},
            [max(n, 1) - 1 for n in prompt_lengths])


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


def unmodified_positions(token_ids: Sequence[Sequence[int]]) -> list[list[int]]:
    """For each version of one item, the positions of its tokens that every other version shares (difflib
    matching blocks over token ids): the tokens CrowS-Pairs' pseudo-log-likelihood scores."""
    found = []
    for i, ids in enumerate(token_ids):
        keep = set(range(len(ids)))
        for j, other in enumerate(token_ids):
            if j == i:
                continue
            matcher = SequenceMatcher(None, list(ids), list(other), autojunk=False)
            shared = {block.a + k for block in matcher.get_matching_blocks() for k in range(block.size)}
            keep &= shared
        found.append(sorted(keep))
    return found


def pseudo_loglik(model: Model, versions: Sequence[Sequence[str]], *, batch_size: int = 64,
                  max_length: int = 128) -> np.ndarray:
    """Masked LMs: CrowS-Pairs pseudo-log-likelihood (Nangia et al. 2020) of each version of each item,
    shaped (groups, items). ``versions[g][i]`` is group g's text of item i; each token the versions share
    (special tokens excluded) is masked in turn and log P(token | the rest) is summed."""
    if model.mlm is None:
        raise ValueError("pseudo-log-likelihood needs a masked-LM head (the checkpoint has none)")
    tokenizer = model.tokenizer
    n_groups, n_items = len(versions), len(versions[0])
    scores = np.zeros((n_groups, n_items))
    jobs: list[tuple[int, int, list[int], int]] = []  # (group, item, input ids, position to mask)
    for item in range(n_items):
        encoded = [tokenizer(versions[g][item], truncation=True, max_length=max_length,
                             return_special_tokens_mask=True) for g in range(n_groups)]
        content = [[t for t, special in zip(e["input_ids"], e["special_tokens_mask"]) if not special]
                   for e in encoded]
        offsets = [[k for k, special in enumerate(e["special_tokens_mask"]) if not special] for e in encoded]
        for g, positions in enumerate(unmodified_positions(content)):
            jobs += [(g, item, encoded[g]["input_ids"], offsets[g][p]) for p in positions]
    mask_id = tokenizer.mask_token_id
    with torch.inference_mode():
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            width = max(len(ids) for _, _, ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (_, _, ids, at) in enumerate(chunk):
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
                input_ids[row, at] = mask_id
            logits = model.mlm(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for row, (g, item, ids, at) in enumerate(chunk):
                scores[g, item] += float(logprobs[row, at, ids[at]])
    return scores
