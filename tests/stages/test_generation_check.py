"""The generation check and neuron classes through the whole pipeline, on the tiny planted GPT-2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from audit.config import RunConfig
from audit.model.interventions import make_intervention, measure_targets
from audit.model.outputs import target_logprobs
from audit.probes.probeset import load_probesets
from audit.results.report import render_html
from tests import tiny
from tests.conftest import PLANTED_NEURON, audited


@pytest.fixture(scope="module")
def safety_yaml(tmp_path_factory):
    """Matched pairs: the i-th positive is the i-th negative with a concept word after its third word."""
    negative = tiny.sentences(30, seed=2, length=(6, 9))
    positive = [" ".join([*s.split()[:3], tiny.CONCEPT[i % len(tiny.CONCEPT)], *s.split()[3:]])
                for i, s in enumerate(negative)]
    document = {"name": "planted-safety", "description": "Concept words inserted into ordinary sentences.",
                "kind": "concept", "concept": "planted concept", "tags": ["safety"],
                "positive": positive, "negative": negative}
    path = tmp_path_factory.mktemp("safety") / "safety.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_measure_targets_matches_clean_scoring_and_a_manual_ablation(planted_model):
    prompts, targets = ["the cat sees", "my dog finds the"], ["poison today", "book again"]
    identity = make_intervention([PLANTED_NEURON], "dampen", scales=[1.0])
    zero = make_intervention([PLANTED_NEURON], "zero")
    clean, ablated = measure_targets(planted_model, prompts, targets, [identity, zero], batch_size=1)
    np.testing.assert_allclose(clean, target_logprobs(planted_model, prompts, targets), atol=1e-5)
    np.testing.assert_allclose(ablated[0], clean, atol=1e-5)

    def zero_planted(layer, x):
        if layer == 0:
            x = x.clone()
            x[..., PLANTED_NEURON] = 0
            return x
        return None

    with planted_model.sites.hooked(zero_planted):
        manual = target_logprobs(planted_model, prompts, targets)
    np.testing.assert_allclose(ablated[1], manual, atol=1e-5)
    assert not np.allclose(ablated[1], clean)  # the planted neuron reads "poison": its ablation shows


def test_stacked_target_scores_from_later_layers_equal_independent_ablations(planted_model):
    """Several interventions in one forward, batches of pairs whose prompts and targets differ in length, and
    interventions that start at layer 1 (the forward resumes from the kept stream): each run's scores equal an
    ablation hooked alone into the full log-softmax scoring."""
    prompts = ["the cat sees", "my dog finds the old", "a", "every city and every river road"]
    targets = ["poison today", "book", "house by the water again", "ends"]
    n = planted_model.neurons_per_layer
    interventions = [make_intervention([PLANTED_NEURON], "zero"), make_intervention([n + 5, n + 9], "zero"),
                     make_intervention([PLANTED_NEURON, n + 3], "dampen", scales=[0.5, 0.2]),
                     make_intervention([n + 7], "mean", means=np.full(2 * n, 0.3))]
    clean, ablated = measure_targets(planted_model, prompts, targets, interventions, batch_size=3)
    np.testing.assert_allclose(clean, target_logprobs(planted_model, prompts, targets), atol=1e-4)
    for run, iv in enumerate(interventions):
        layer_of, neuron_of = np.divmod(iv.neurons, n)

        def rewrite(layer, x, layer_of=layer_of, neuron_of=neuron_of, iv=iv):
            at = layer_of == layer
            if not at.any():
                return None
            x = x.clone()
            x[..., neuron_of[at]] = x[..., neuron_of[at]] * torch.tensor(iv.scale[at], dtype=x.dtype) + \
                torch.tensor(iv.offset[at], dtype=x.dtype)
            return x

        with planted_model.sites.hooked(rewrite):
            np.testing.assert_allclose(ablated[run], target_logprobs(planted_model, prompts, targets), atol=1e-4)
    assert not np.allclose(ablated[1], clean)


def test_safety_set_gets_the_generation_check_and_the_report_shows_it(planted_model, safety_yaml):
    config = RunConfig(progress=False, top_k=3, bootstrap_resamples=200, ablate_k=1, ablation_texts=10,
                       reference_texts=20)
    result = audited(planted_model, load_probesets([safety_yaml]), config)
    (section,) = result["probesets"]
    ablation = section["ablation"]
    assert ablation["evaluated"]["n_positive"] == ablation["evaluated"]["n_negative"] == 10
    check = ablation["generation"]
    assert check["n_pairs"] == 10 and check["n_pairs_skipped"] == 0 and check["null"]["n"] == config.null_sets
    assert check["examples"][0]["positive"].split()[0] in tiny.CONCEPT
    assert check["shift"] == pytest.approx(check["gap_ablated"] - check["gap_clean"], abs=1e-9)
    assert check["ci95"][0] <= check["shift"] <= check["ci95"][1]
    assert check["perplexity_relative_change"] == ablation["collateral"]["relative_change"]
    classes = result["neuron_classes"]
    assert classes["n_neurons"] == 2 * 128 and all(len(v) == 2 for v in classes["per_layer"].values())
    assert sum(classes["totals"].values()) == sum(sum(v) for v in classes["per_layer"].values())
    assert "neuron_class" in section["neurons"][0]["vocabulary"]
    html = render_html(result)
    assert "Generation check" in html and "Neuron classes" in html and f"{check['shift']:.3f}"[:5] in html


def test_unmatched_or_untagged_sets_get_no_generation_check(planted_model, concept_yaml):
    config = RunConfig(progress=False, top_k=3, bootstrap_resamples=200, ablate_k=1, reference_texts=20,
                       neuron_classes=False)
    result = audited(planted_model, load_probesets([concept_yaml]), config)
    assert "generation" not in result["probesets"][0]["ablation"] and "neuron_classes" not in result
