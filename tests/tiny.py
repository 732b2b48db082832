"""Tiny offline models for tests: a word-level tokenizer and small GPT-2/BERT models built from configs.

`build_planted_gpt2` plants ground truth: each `Plant` gives its concept tokens a shared embedding
direction, projects every direction out of everything else (embeddings, positions, other neurons' input
weights, MLP outputs), zeroes attention output, and lets one chosen neuron read the directions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ORDINARY = ("the a one this that my your our their some every cat dog bird house garden river road city "
            "table window book letter song game market school train bus car street morning evening night day "
            "walks runs sees opens finds reads plays likes keeps brings makes takes quiet green small big old "
            "new warm cold red blue slowly quickly today again near under over with from and then").split()
CONCEPT = "poison venom toxin arsenic cyanide hemlock".split()
SECOND = "violin cello flute oboe trumpet harp".split()  # an unrelated concept, for polysemantic plants
FEMALE = "she her woman mother sister girl".split()
MALE = "he his man father brother boy".split()
SPECIAL = ["[UNK]", "[PAD]", "[EOS]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(words: Sequence[str] = (*ORDINARY, *CONCEPT, *SECOND, *FEMALE, *MALE),
                    *, bert_style: bool = False) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer over ``words``; ``bert_style`` adds [CLS] … [SEP] around each text."""
    from tokenizers import processors

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=SPECIAL, min_frequency=1))
    if bert_style:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")),
                                                     ("[SEP]", tok.token_to_id("[SEP]"))])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]",
                                   model_input_names=["input_ids", "attention_mask"])


@dataclass(frozen=True)
class Plant:
    """Neuron ``neuron`` of ``layer`` reads one direction per token set in ``token_sets``."""

    neuron: int
    token_sets: tuple[tuple[str, ...], ...]
    layer: int = 0
    weights: tuple[float, ...] | None = None  # how strongly it reads each set's direction (default 1 each)


def _orthonormal_directions(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` orthonormal directions, each orthogonal to the all-ones vector (so LayerNorm keeps them)."""
    basis = torch.randn(dim, n + 1, generator=generator)
    basis[:, 0] = 1.0
    q, _ = torch.linalg.qr(basis)
    return q[:, 1:].T.contiguous()


def build_gpt2(tokenizer: PreTrainedTokenizerFast, *, n_layer: int = 2, n_embd: int = 64, n_inner: int = 128,
               seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=4, n_inner=n_inner,
                        n_positions=64, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config).eval()


def build_planted_gpt2(tokenizer: PreTrainedTokenizerFast, plants: Sequence[Plant], *, strength: float = 1.0,
                       seed: int = 0, **sizes):
    """A tiny GPT-2 whose planted neurons (and only they) read their token sets' directions."""
    model = build_gpt2(tokenizer, seed=seed, **sizes)
    token_sets = sorted({tokens for plant in plants for tokens in plant.token_sets})
    generator = torch.Generator().manual_seed(seed + 1)
    directions = _orthonormal_directions(len(token_sets), model.config.n_embd, generator)
    index = {tokens: i for i, tokens in enumerate(token_sets)}
    project_out = torch.eye(model.config.n_embd) - directions.T @ directions
    with torch.no_grad():
        wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
        wte.copy_(wte @ project_out)
        wpe.copy_(wpe @ project_out)
        for tokens, i in index.items():
            ids = tokenizer.convert_tokens_to_ids(list(tokens))
            wte[ids] += strength * directions[i]
        for block in model.transformer.h:
            block.attn.c_proj.weight.zero_()
            block.attn.c_proj.bias.zero_()
            block.mlp.c_fc.weight.copy_(project_out @ block.mlp.c_fc.weight)
            block.mlp.c_proj.weight.copy_(block.mlp.c_proj.weight @ project_out)
        for plant in plants:
            mlp = model.transformer.h[plant.layer].mlp
            weights = plant.weights or (1.0,) * len(plant.token_sets)
            reads = sum(w * directions[index[tokens]] for w, tokens in zip(weights, plant.token_sets))
            mlp.c_fc.weight[:, plant.neuron] = reads
            mlp.c_fc.bias[plant.neuron] = -3.0
    return model


def build_bert(tokenizer: PreTrainedTokenizerFast, *, seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    return BertModel(config).eval()


def save(model, tokenizer, folder: Path) -> Path:
    """Save a model and tokenizer the way a user's local checkpoint looks (safetensors + tokenizer files)."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sentences(n: int, *, seed: int, insert: Sequence[str] = (), length: tuple[int, int] = (5, 10)) -> list[str]:
    """``n`` distinct random sentences of ordinary words, each holding one word from ``insert`` if given."""
    rng = random.Random(seed)
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < n:
        words = [rng.choice(ORDINARY) for _ in range(rng.randint(*length))]
        if insert:
            words.insert(rng.randrange(len(words) + 1), rng.choice(list(insert)))
        text = " ".join(words)
        if text not in seen:
            seen.add(text)
            found.append(text)
    return found
