"""Masked LMs: the MLM head is loaded when the checkpoint has one, and CrowS-Pairs pseudo-log-likelihood."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from audit.config import RunConfig
from audit.model.loading import load_model
from audit.model.outputs import pseudo_loglik, unmodified_positions
from audit.probes.probeset import load_probesets
from tests import tiny
from tests.conftest import audited


@pytest.fixture(scope="module")
def masked_lm(tmp_path_factory):
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = tiny.build_tokenizer(bert_style=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    folder = tiny.save(BertForMaskedLM(config).eval(), tokenizer, tmp_path_factory.mktemp("mlm"))
    return load_model(str(folder), device="cpu")


def test_unmodified_positions_are_the_tokens_every_version_shares():
    assert unmodified_positions([[1, 2, 3, 4], [1, 9, 3, 4], [1, 2, 3, 8]]) == [[0, 2], [0, 2], [0, 2]]
    assert unmodified_positions([[5, 6, 7], [5, 7]]) == [[0, 2], [0, 1]]


def test_mlm_head_is_loaded_and_the_encoder_inside_is_audited(masked_lm, tmp_path):
    assert masked_lm.mlm is not None and masked_lm.architecture == "BertForMaskedLM"
    assert masked_lm.kind == "encoder" and masked_lm.summary()["mlm_head"] is True
    assert masked_lm.module is masked_lm.mlm.base_model and masked_lm.n_layers == 2


def test_pseudo_loglik_masks_each_shared_token_and_sums(masked_lm):
    a, b = "she walks to the market", "he walks to the market"
    (score_a,), (score_b,) = pseudo_loglik(masked_lm, [[a], [b]])
    tokenizer, mlm = masked_lm.tokenizer, masked_lm.mlm

    def by_hand(text: str) -> float:  # mask "walks to the market" (positions 2..5 after [CLS] she)
        ids = tokenizer(text)["input_ids"]
        total = 0.0
        for at in range(2, len(ids) - 1):
            masked = list(ids)
            masked[at] = tokenizer.mask_token_id
            with torch.no_grad():
                logits = mlm(input_ids=torch.tensor([masked])).logits[0, at]
            total += float(torch.log_softmax(logits, -1)[ids[at]])
        return total

    assert score_a == pytest.approx(by_hand(a), abs=1e-4) and score_b == pytest.approx(by_hand(b), abs=1e-4)


def test_paired_audit_of_a_masked_lm_reports_the_pseudo_loglik_preference(masked_lm, tmp_path):
    from tests.stages.test_paired import gender_items

    items = gender_items(24, seed=3)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"name": "g", "description": "d", "kind": "paired",
                                    "groups": ["female", "male"], "items": items}))
    result = audited(masked_lm, load_probesets([path]), RunConfig(top_k=3, bootstrap_resamples=200,
                                                                  ablation=False, progress=False))
    preference = result["probesets"][0]["disparity"]["output"]["preference"]
    assert preference["metric"].startswith("pseudo-log-likelihood")
    scores = pseudo_loglik(masked_lm, [[i["female"] for i in items], [i["male"] for i in items]])
    wins = np.where(scores[0] > scores[1], 1.0, np.where(scores[0] < scores[1], 0.0, 0.5))
    assert preference["rows"][0]["share"] == pytest.approx(wins.mean())
    assert result["model"]["mlm_head"] is True
