"""Integration: the LAPE deactivation matrix on a tiny GPT-2 whose planted "language" neurons help predict their
language's tokens, in float32 and bfloat16; and the separation verdict on texts the model cannot match."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from audit.analysis.language_separation import separation, served
from audit.config import RunConfig
from audit.model.loading import load_model
from audit.probes.reference import language_reference
from audit.stages.languages import RANDOM_ROW, measure_deactivation, reference_language
from tests import tiny

LANG_X, LANG_Y = 3, 4
FAST = RunConfig(top_k=5, bootstrap_resamples=200, progress=False, batch_size=16)


def language_texts(vocabulary, n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def module(tokenizer):
    """Planted neurons whose output raises the logits of their own language's tokens (tied LM head), so zeroing
    one makes its language harder to predict and leaves the other language alone. The words carry their
    language only weakly in their embeddings (strength 0.3), so the model needs the neuron to tell which
    language comes next. Input weights are scaled up and the bias lowered so that elsewhere — at the prefix
    token above all, which predicts a text's first word — the neurons sit at GELU's flat zero, not at its
    small negative values: times the large output weight, those would push the first word's logit down, and
    zeroing the neuron would then help."""
    plants = [tiny.Plant(LANG_X, (tuple(tiny.CONCEPT),)), tiny.Plant(LANG_Y, (tuple(tiny.SECOND),))]
    model = tiny.build_planted_gpt2(tokenizer, plants, strength=0.3)
    wte = model.transformer.wte.weight
    mlp = model.transformer.h[0].mlp
    with torch.no_grad():
        for neuron, words in ((LANG_X, tiny.CONCEPT), (LANG_Y, tiny.SECOND)):
            ids = tokenizer.convert_tokens_to_ids(list(words))
            mlp.c_fc.weight[:, neuron] *= 6.0
            mlp.c_fc.bias[neuron] = -8.0
            mlp.c_proj.weight[neuron] = 200.0 * wte[ids].mean(dim=0)
    return model.eval()


def matrix(module, tokenizer, dtype):
    model = load_model(copy.deepcopy(module).to(dtype), tokenizer=tokenizer, device="cpu")
    texts = {"xx": language_texts(tiny.CONCEPT, 24, 1), "yy": language_texts(tiny.SECOND, 24, 2)}
    n = model.neurons_per_layer
    sets = {"xx": np.array([LANG_X]), "yy": np.array([LANG_Y])}
    perplexity, deactivation = measure_deactivation(model, ["xx", "yy"], texts, sets, np.array([LANG_X, LANG_Y]),
                                                    FAST, seed=0)
    assert deactivation.dtype == str(dtype).removeprefix("torch.")
    rows = {row.deactivated: row for row in deactivation.rows}
    assert rows[RANDOM_ROW].n_neurons == 1 and rows[RANDOM_ROW].per_layer == [1, 0]
    assert all(row.ci95["xx"][0] <= row.ratio["xx"] <= row.ci95["xx"][1] for row in deactivation.rows)
    assert n == 128 and {p.language for p in perplexity} == {"xx", "yy"}
    return np.array([[rows[name].ratio[g] for g in ("xx", "yy")] for name in ("xx", "yy", RANDOM_ROW)]), deactivation


def test_deactivating_a_languages_neurons_raises_its_own_perplexity(module, tokenizer):
    ratios, deactivation = matrix(module, tokenizer, torch.float32)
    assert ratios[0, 0] > 1.01 and ratios[1, 1] > 1.01  # the diagonal rises
    assert abs(ratios[0, 1] - 1) < 0.001 and abs(ratios[1, 0] - 1) < 0.001  # the other language hardly moves
    assert abs(ratios[2] - 1).max() < abs(ratios[0, 0] - 1)  # the random control moves less than the diagonal
    assert deactivation.summary[0].startswith("deactivating xx neurons")
    assert "random neuron in the same layers" in deactivation.summary[-1]


def test_bfloat16_and_float32_agree_on_the_matrix_ordering(module, tokenizer):
    full, _ = matrix(module, tokenizer, torch.float32)
    half, _ = matrix(module, tokenizer, torch.bfloat16)
    cells, low = full.reshape(-1), half.reshape(-1)
    for a in range(cells.size):
        for b in range(cells.size):
            if cells[a] - cells[b] > 0.005:  # orderings the float32 matrix resolves
                assert low[a] > low[b], (a, b, full, half)


def test_separation_tells_translations_from_unrelated_texts():
    rng = np.random.default_rng(0)
    meaning = rng.normal(size=(30, 50))
    responses = np.stack([meaning + 0.1 * rng.normal(size=meaning.shape) + 3.0,  # en
                          meaning + 0.1 * rng.normal(size=meaning.shape) - 2.0,  # a language the model knows
                          rng.normal(size=meaning.shape)])  # word pieces it cannot match to their meaning
    tokens = np.array([np.full(30, 10), np.full(30, 12), np.full(30, 35)])
    result = separation(responses, tokens, reference=0)
    assert result.retrieval[1] == 1.0 and result.retrieval[2] < 0.2 and result.chance == pytest.approx(1 / 30)
    assert result.parity.tolist() == pytest.approx([1.0, 1.2, 3.5])
    assert result.translation_cosine[1] > 0.9 > result.other_cosine[1]
    assert served(result, 0).tolist() == [True, True, False]
    assert reference_language(["fr", "en-GB", "de"]) == 1 and reference_language(["fr", "de"]) == 0


def test_report_shows_the_multilingual_section_with_its_heat_map(module, tokenizer, tmp_path):
    import yaml

    from audit.probes.probeset import load_probesets
    from audit.results.report import render_html
    from tests.conftest import audited

    rng = random.Random(0)
    items = [{"en": " ".join(rng.choice(tiny.ORDINARY) for _ in range(6)),
              "fr": " ".join(rng.choice(tiny.ORDINARY) for _ in range(6))} for _ in range(12)]
    path = tmp_path / "langs.yaml"
    path.write_text(yaml.safe_dump({"name": "langs", "description": "d", "kind": "paired", "groups": ["en", "fr"],
                                    "tags": ["languages"], "items": items}))
    model = load_model(copy.deepcopy(module), tokenizer=tokenizer, device="cpu")
    config = RunConfig(top_k=3, bootstrap_resamples=100, progress=False, ablation=False, evidence=False,
                       explain=False)
    result = audited(model, load_probesets([path]), config)
    multilingual = result["probesets"][0]["multilingual"]
    assert [p["language"] for p in multilingual["perplexity"]] == ["en", "fr"]
    assert multilingual["perplexity"][0]["n_texts"] == len(language_reference("en")[1::2])  # the odd lines
    # random "translations": the model does not separate the languages, so no deactivation matrix is drawn
    assert "deactivation" not in multilingual and any("the deactivation matrix" in s for s in multilingual["skipped"])
    html = render_html(result)
    assert "Multilingual audit" in html and 'class="heatmap"' not in html
    assert "does not separate these languages" in html
    assert "The model does not know fr" in html  # and the findings summary says so
    # on a model that does separate them, the matrix is drawn as a heat map with its axis titles
    _, deactivation = matrix(module, tokenizer, torch.float32)
    multilingual["separation"]["separates"] = True
    multilingual["deactivation"] = deactivation.to_dict()
    html = render_html(result)
    assert 'class="heatmap"' in html and "perplexity measured on" in html and "neurons set to zero" in html
    assert "Deactivation matrix: deactivating xx neurons" in html  # the findings summary carries its proof


def test_language_sets_are_not_ablated_when_unseparated_or_tested_by_the_matrix():
    from types import SimpleNamespace

    from audit.results.contract import SkippedAblation
    from audit.results.record import ABSENT
    from audit.stages.audit import ablation_plan

    def section(separates: bool, deactivation: object) -> SimpleNamespace:
        return SimpleNamespace(multilingual=SimpleNamespace(separation=SimpleNamespace(separates=separates),
                                                            deactivation=deactivation))

    unseparated = ablation_plan(None, None, [], FAST, None, seed=0, section=section(False, ABSENT))
    assert isinstance(unseparated, SkippedAblation) and "does not tell these languages apart" in unseparated.skipped
    tested = ablation_plan(None, None, [], FAST, None, seed=0, section=section(True, object()))
    assert isinstance(tested, SkippedAblation) and "deactivation matrix" in tested.skipped


def test_lape_reads_the_items_counts_from_the_harvest(tokenizer):
    """The set's harvests (``active_counts``) stand in for a second pass over the items: same probabilities."""
    from dataclasses import replace

    from audit.model.harvest import harvest
    from audit.probes.probeset import bundled_probeset_paths, load_probeset_file
    from audit.stages.languages import language_lape

    model = load_model(tiny.build_gpt2(tokenizer), tokenizer=tokenizer, device="cpu")
    path = next(p for p in bundled_probeset_paths() if p.stem == "multilingual")
    full = load_probeset_file(path)[0]
    probeset = replace(full, groups=("en", "fr"), items=tuple({"en": i["en"], "fr": i["fr"]}
                                                                   for i in full.items[:12]))
    runs = [harvest(model, [item[g] for item in probeset.items], batch_size=16, active_counts=True, progress=False)
            for g in probeset.groups]
    alone, read = language_lape(model, probeset, FAST), language_lape(model, probeset, FAST, runs)
    np.testing.assert_allclose(read.probability, alone.probability, rtol=1e-12)
    assert (read.selected == alone.selected).all() and alone.probability.min() < alone.probability.max()
