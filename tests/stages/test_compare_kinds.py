"""compare across model kinds and tokenizations (issue 23): a causal LM against an encoder completes with
output-level scores marked not comparable; ``--align auto`` falls back to texts whenever the real tokens differ;
truncation is counted and the length each model really used is recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from audit.config import CompareConfig, RunConfig
from audit.model.loading import load_model
from audit.results.io import to_json
from audit.results.schema import comparison_schema, validate_results
from audit.stages.compare import run_compare
from tests import tiny
from tests.stages.test_paired import gender_items, write

FAST = RunConfig(progress=False, ablation=False, bootstrap_resamples=100, top_k=3)


def test_causal_lm_against_encoder_with_a_paired_set_marks_outputs_not_comparable(tokenizer, tmp_path):
    gpt2 = load_model(tiny.build_gpt2(tokenizer), tokenizer=tokenizer, device="cpu")
    bert_tokenizer = tiny.build_tokenizer(bert_style=True)
    bert = load_model(tiny.build_bert(bert_tokenizer), tokenizer=bert_tokenizer, device="cpu")
    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(tiny.sentences(12, seed=9)))
    sets = write(tmp_path, {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": gender_items(12, seed=2)})
    result = to_json(run_compare(gpt2, bert, tiny.sentences(30, seed=5), corpus_name="tiny",
                                 corpus_sha256="0" * 64, probesets=sets,
                                 config=replace(FAST, reference=str(reference), explain=False),
                                 compare=CompareConfig(memory_budget_mb=16)))  # was KeyError: 'loglik'
    validate_results(result, where="comparison.json", schema=comparison_schema())
    (diff,) = result["probesets"]
    assert "output" not in diff
    assert "causal LM" in diff["output_not_comparable"] and "encoder" in diff["output_not_comparable"]
    assert any("not comparable" in note for note in result["caveats"])


def test_auto_alignment_falls_back_to_texts_when_one_model_cuts_a_long_line(tokenizer):
    from transformers import GPT2LMHeadModel

    long_model = tiny.build_gpt2(tokenizer)
    short_config = long_model.config.__class__(**{**long_model.config.to_dict(), "n_positions": 12})
    short = load_model(GPT2LMHeadModel(short_config).eval(), tokenizer=tokenizer, device="cpu")
    long = load_model(long_model, tokenizer=tokenizer, device="cpu")
    corpus = tiny.sentences(20, seed=7) + [" ".join(tiny.sentences(4, seed=8))]  # one line of ~30 tokens
    result = run_compare(long, short, corpus, corpus_name="tiny", corpus_sha256="0" * 64, config=FAST,
                         compare=CompareConfig(memory_budget_mb=16, align="auto"))
    settings = result.correlation
    assert settings.alignment == "texts" and "cut at different lengths" in settings.alignment_reason
    assert settings.max_length == 128 and settings.max_length_used == [64, 12]
    assert settings.truncated_texts[0] == 0 and settings.truncated_texts[1] >= 1
    assert result.run.truncated_texts == settings.truncated_texts[1]  # was a constant 0
    with pytest.raises(Exception, match="--align tokens"):  # asked for tokens explicitly: still refused
        run_compare(long, short, corpus, corpus_name="tiny", corpus_sha256="0" * 64, config=FAST,
                    compare=CompareConfig(memory_budget_mb=16, align="tokens"))
