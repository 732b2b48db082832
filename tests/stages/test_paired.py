"""Integration: disparity on a tiny GPT-2 with planted group and language neurons."""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from audit.config import RunConfig
from audit.errors import AuditWarning
from audit.model.loading import load_model
from audit.probes.probeset import load_probesets
from tests import tiny
from tests.conftest import audited

GROUP_NEURON, SHE_NEURON, LANG_X, LANG_Y = 5, 9, 3, 4
PAIRS = {"pronoun": [("she", "he"), ("her", "his")],
         "noun": [("woman", "man"), ("mother", "father"), ("sister", "brother"), ("girl", "boy")]}
FAST = RunConfig(top_k=5, bootstrap_resamples=200, progress=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory, tokenizer):
    plants = [tiny.Plant(GROUP_NEURON, (tuple(tiny.FEMALE),)), tiny.Plant(SHE_NEURON, (("she",),)),
              tiny.Plant(LANG_X, (tuple(tiny.CONCEPT),)), tiny.Plant(LANG_Y, (tuple(tiny.SECOND),))]
    folder = tiny.save(tiny.build_planted_gpt2(tokenizer, plants), tokenizer, tmp_path_factory.mktemp("groups"))
    return load_model(str(folder), device="cpu")


def write(tmp_path, document) -> list:
    path = tmp_path / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_probesets([path])


def gender_items(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for k in range(n):
        marker = "pronoun" if k % 2 else "noun"
        female, male = rng.choice(PAIRS[marker])
        words = tiny.sentences(1, seed=seed * 1000 + k)[0].split()
        at = rng.randrange(len(words) + 1)
        items.append({"female": " ".join(words[:at] + [female] + words[at:]),
                      "male": " ".join(words[:at] + [male] + words[at:]), "marker": marker})
    return items


def test_planted_group_neuron_ranks_first_and_single_word_neuron_is_inconsistent(model, tmp_path):
    sets = write(tmp_path, {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": gender_items(60, seed=1)})
    section = audited(model, sets, FAST)["probesets"][0]
    top = section["disparity"]["by_contrast"]["female vs male"][0]
    assert (top["layer"], top["neuron"], top["group"], top["versus"]) == (0, GROUP_NEURON, "female", "male")
    assert top["auroc"] == 1.0 and top["q_value"] < 1e-6 and top["consistency"] == 1.0
    assert section["disparity"]["neurons"][0]["name"] == f"L0.N{GROUP_NEURON}"
    assert section["disparity"]["by_group"]["female"][0]["neuron"] == GROUP_NEURON
    ranked = [(n["layer"], n["neuron"]) for n in section["disparity"]["by_contrast"]["female vs male"]]
    assert (0, SHE_NEURON) not in ranked[:1]
    counts = section["disparity"]["counts"]
    assert counts["q_and_effect"]["per_group"]["female"] >= 1
    assert counts["q_only"]["any_group"] >= counts["q_and_effect"]["any_group"]
    output = section["disparity"]["output"]
    assert output["metric"] == "mean log-likelihood per token"
    assert set(output["table"]["per_group"]) == {"female", "male"}
    ablation = section["ablation"]
    assert [0, GROUP_NEURON] in ablation["neurons"] and ablation["null"]["n"] == 20
    assert ablation["ci95"][0] <= ablation["effect"] <= ablation["ci95"][1]
    assert ablation["disparity_ablated"] == pytest.approx(ablation["disparity_clean"] + ablation["effect"])


def test_single_word_neuron_has_low_robust_effect(model, tmp_path):
    from audit.analysis.disparity import marker_consistency
    from audit.model.harvest import harvest

    items = gender_items(60, seed=2)
    female = harvest(model, [i["female"] for i in items], progress=False).pooled()
    male = harvest(model, [i["male"] for i in items], progress=False).pooled()
    result = marker_consistency(female - male, [i["marker"] for i in items])
    assert result.robust_effect[GROUP_NEURON] > 1.0
    assert result.robust_effect[SHE_NEURON] < 0.5 and result.consistency[SHE_NEURON] < 1.0


def test_identical_texts_give_no_disparity(model, tmp_path):
    texts = tiny.sentences(30, seed=3)
    with pytest.warns(AuditWarning, match="the same text for two groups"):
        sets = write(tmp_path, {"name": "same", "description": "d", "kind": "paired", "groups": ["a", "b"],
                                "items": [{"a": t, "b": t, "target": "cat"} for t in texts]})
    section = audited(model, sets, FAST)["probesets"][0]
    counts = section["disparity"]["counts"]
    assert counts["q_only"]["any_group"] == 0 and section["disparity"]["neurons"] == []
    (pair,) = section["disparity"]["output"]["table"]["pairs"]
    assert pair["difference"] == 0.0 and pair["ci95"] == [0.0, 0.0]
    (target,) = section["disparity"]["output"]["target"]["table"]["pairs"]
    assert target["difference"] == 0.0
    assert "skipped" in section["ablation"]  # nothing group-selective: nothing to ablate


@pytest.fixture(scope="module")
def quiet_model(tokenizer):
    """The planted model with every other neuron's bias lowered: in the plain tiny model ~8% of neurons fire on
    every token, so the paper's strict "above the 95th-percentile probability" rule (threshold 1.0) keeps none."""
    import torch

    plants = [tiny.Plant(LANG_X, (tuple(tiny.CONCEPT),)), tiny.Plant(LANG_Y, (tuple(tiny.SECOND),))]
    module = tiny.build_planted_gpt2(tokenizer, plants)
    with torch.no_grad():
        for block in module.transformer.h:
            keep = block.mlp.c_fc.bias[[LANG_X, LANG_Y]].clone()
            block.mlp.c_fc.bias.fill_(-1.0)
            block.mlp.c_fc.bias[[LANG_X, LANG_Y]] = keep
    return load_model(module, tokenizer=tokenizer, device="cpu")


def test_lape_finds_planted_language_neurons(quiet_model, tmp_path):
    model = quiet_model
    rng = random.Random(4)

    def text(vocabulary):  # a "language" whose every token comes from its own vocabulary
        return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(4, 9)))

    items = [{"xx": text(tiny.CONCEPT), "yy": text(tiny.SECOND)} for _ in range(40)]
    sets = write(tmp_path, {"name": "langs", "description": "d", "kind": "paired", "groups": ["xx", "yy"],
                            "tags": ["languages"], "items": items})
    section = audited(model, sets, FAST)["probesets"][0]
    assert "preference" not in section["disparity"]["output"]  # translations: no version is "preferred"
    check = section["language_check"]  # made-up languages: no code lid.176 knows, so nothing is checked
    assert check["checked"] == 0 and check["unchecked_groups"] == ["xx", "yy"] and check["mismatches"] == []
    lape = section["lape"]
    x_neurons = [(n["layer"], n["neuron"]) for n in lape["per_language"]["xx"]["neurons"]]
    y_neurons = [(n["layer"], n["neuron"]) for n in lape["per_language"]["yy"]["neurons"]]
    assert (0, LANG_X) in x_neurons and (0, LANG_Y) in y_neurons
    assert (0, LANG_X) not in y_neurons
    planted = lape["per_language"]["xx"]["neurons"][x_neurons.index((0, LANG_X))]
    assert planted["probabilities"]["yy"] == 0.0 and planted["auroc"] == 1.0
    assert lape["n_language_specific"] <= 6
    assert lape["per_language"]["xx"]["per_layer"][0] >= 1
    # the "translations" are unrelated texts: the model cannot match them, and the section says what that means
    separation = section["multilingual"]["separation"]
    assert separation["separates"] is False and separation["not_served"] == ["yy"]
    assert "does not process yy as languages it knows" in separation["message"]
    assert "not as findings" in separation["message"]
    assert any("no bundled reference text for xx, yy" in s for s in section["multilingual"]["skipped"])
    # no language neurons to explain in languages the model does not tell apart: no explanation is built
    assert section["disparity"]["neurons"] and not any("explanation" in n for n in section["disparity"]["neurons"])


def test_encoder_output_disparity_is_embedding_consistency(tmp_path):
    tokenizer = tiny.build_tokenizer(bert_style=True)
    folder = tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")
    model = load_model(str(folder), device="cpu")
    sets = write(tmp_path, {"name": "enc", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": gender_items(60, seed=5)})
    section = audited(model, sets, FAST)["probesets"][0]
    output = section["disparity"]["output"]
    (pair,) = output["table"]["pairs"]
    assert output["metric"].startswith("cosine") and 0 < pair["cosine"] < 1
    assert pair["ci95"][0] <= pair["cosine"] <= pair["ci95"][1]
    assert np.isfinite(pair["cosine"])
    sensitivity = output["sensitivity"]  # the group swap against matched swaps of ordinary words
    (row,) = sensitivity["rows"]
    assert sensitivity["n_items"] > 0 and sensitivity["n_controls"] >= sensitivity["n_items"]
    assert row["group_shift"] > 0 and row["control_shift"] > 0
    assert row["excess_ci95"][0] <= row["excess"] <= row["excess_ci95"][1]
    if sensitivity["n_items"] == 60:  # every item has a control: the group shift is the table's 1 − cosine
        assert row["group_shift"] == pytest.approx(1 - pair["cosine"], abs=1e-6)
    for swap in sensitivity["examples"]:
        assert swap["substitute"].lower()[:3] != swap["word"].lower()[:3] or len(swap["word"]) < 3
        assert swap["word"].lower() not in tiny.FEMALE + tiny.MALE
    from audit.results.policy import METRICS

    _, metric = METRICS["output_disparity"]
    assert metric({"disparity": {"output": output}}, {}) == pytest.approx(row["excess"])
    ablation = section["ablation"]  # how the flagged neurons move the same excess on the evaluation items
    if "skipped" not in ablation:
        change = ablation["sensitivity"]
        assert 0 < change["n_items"] <= ablation["evaluated"]["n_items"]
        assert change["change"] == pytest.approx(change["ablated"] - change["clean"])
        assert change["ci95"][0] <= change["change"] <= change["ci95"][1]


def test_control_plan_keeps_its_items_swaps_and_averages_them_per_item():
    from audit.stages.counterfactual import ControlPlan

    plan = ControlPlan(2, np.array([0, 0, 2]), [f"t{k}g{g}" for k in range(3) for g in range(2)],
                       [{"word": str(k)} for k in range(3)])
    sub = plan.for_items([2, 5])
    assert sub.owners.tolist() == [0] and sub.texts == ["t2g0", "t2g1"] and sub.swaps == [{"word": "2"}]
    originals = np.zeros((2, 3, 2))
    originals[:, :, 0] = 1.0  # every version points along x
    controls = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]], dtype=float)
    shift = plan.control_shift(originals, controls, 3)
    assert shift[0] == pytest.approx(0.5)  # swaps 0 (no shift) and 1 (orthogonal) of item 0
    assert np.isnan(shift[1]) and shift[2] == pytest.approx(1 - 2 ** -0.5)


def test_causal_preference_score_matches_sentence_logliks_and_ids_reach_results(model, tmp_path):
    import torch

    items = gender_items(40, seed=5)
    for k, item in enumerate(items):
        item["id"] = f"sample.csv:{k + 2}"
    sets = write(tmp_path, {"name": "pref", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": items})
    result = audited(model, sets, FAST)
    assert result["model"]["prefix_token"] == {"id": model.tokenizer.eos_token_id, "text": "[EOS]", "kind": "eos"}
    section = result["probesets"][0]
    preference = section["disparity"]["output"]["preference"]
    (row,) = preference["rows"]

    def sentence_loglik(text: str) -> float:
        """lm-evaluation-harness, empty context, by hand: context [prefix token], continuation = every token of the
        text (no special tokens); log_softmax of the logits over [prefix] + text, summed over the text's tokens."""
        cont = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([[model.tokenizer.eos_token_id, *cont]])  # the tiny tokenizer has no BOS: EOS
        with torch.no_grad():
            logprobs = torch.log_softmax(model.module(input_ids=ids[:, :-1]).logits.float(), dim=-1)
        return float(logprobs[0, -len(cont):].gather(-1, torch.tensor(cont)[:, None]).sum())

    female = np.array([sentence_loglik(i["female"]) for i in items])
    male = np.array([sentence_loglik(i["male"]) for i in items])
    assert row["share"] == pytest.approx((female > male).mean())  # pct_stereotype: a tie counts 0
    assert row["likelihood_diff"] == pytest.approx(np.abs(female - male).mean(), abs=1e-4)  # likelihood_diff
    assert row["mean_difference"] == pytest.approx((female - male).mean(), abs=1e-4)
    assert preference["tie_credit"] == 0.0 and "prefix token" in preference["scoring_convention"]
    assert section["disparity"]["output"]["scoring_convention"] == preference["scoring_convention"]
    assert set(row["by_marker"]) == {"noun", "pronoun"} and row["ci95"][0] <= row["share"] <= row["ci95"][1]
    entry = section["disparity"]["neurons"][0]
    top = entry["largest_item_difference"]
    assert top["id"] == f"sample.csv:{top['item'] + 2}"
    # the card's probe-text contexts: both versions of the items where the neuron differs most, with their ids
    shown = entry["exemplars"]
    assert [x["label"].split(" · ")[0] for x in shown[:2]] == [entry["group"], entry["versus"]]
    first = items[shown[0]["text_index"]]
    assert shown[0]["text"] == first[entry["group"]] and shown[1]["text"] == first[entry["versus"]]
    assert shown[0]["label"].endswith(first["id"]) and shown[0]["activation"] >= shown[1]["activation"]
    moved = section["ablation"]["preference"]  # how ablating the flagged neurons moves the preference score
    assert moved["n_items"] == section["ablation"]["evaluated"]["n_items"]
    assert 0.0 <= moved["clean"] <= 1.0 and moved["change"] == pytest.approx(moved["ablated"] - moved["clean"])
    assert moved["ci95"][0] <= moved["ci95"][1]


def test_per_marker_breakdown_matches_a_separate_set_of_those_items(model, tmp_path):
    items = gender_items(60, seed=1)
    both = write(tmp_path, {"name": "both", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": items})
    nouns = write(tmp_path, {"name": "nouns", "description": "d", "kind": "paired", "groups": ["female", "male"],
                             "items": [i for i in items if i["marker"] == "noun"]})
    disparity = audited(model, both, FAST)["probesets"][0]["disparity"]
    alone = audited(model, nouns, FAST)["probesets"][0]["disparity"]
    part = disparity["by_marker"]["noun"]
    assert part["n_items"] == 30 and part["counts"] == alone["counts"]
    assert part["neurons"][0]["name"] == f"L0.N{GROUP_NEURON}"
    assert part["preference"] == disparity["output"]["preference"]["rows"][0]["by_marker"]["noun"]
    # counts and table agree: every listed neuron is group-selective, and a nonzero count lists some
    assert all(n["selective"] for n in disparity["neurons"])
    assert len(disparity["neurons"]) == min(FAST.top_k, disparity["counts"]["q_and_effect"]["any_group"])


def test_cards_of_a_neuron_more_active_in_the_rest_show_real_groups(model, tmp_path):
    from audit.results.contract import GroupNeuron
    from audit.stages.paired import item_contexts

    items = [{"xx": t, "yy": t + " again", "zz": t + " river"} for t in tiny.sentences(6, seed=8)]
    (probeset,) = write(tmp_path, {"name": "three", "description": "d", "kind": "paired",
                                   "groups": ["xx", "yy", "zz"], "items": items})
    responses = np.random.default_rng(0).normal(size=(3, 6, model.n_layers * model.neurons_per_layer))
    entry = GroupNeuron(layer=0, neuron=7, name="L0.N7", contrast="xx vs rest", group="rest", versus="xx",
                        effect=1.0, selective=True, auroc=0.9, p_value=0.01, q_value=0.02, mean_difference=0.5,
                        robust_effect=1.0, consistency=1.0, marker_effects={}, largest_item_difference={})
    shown = item_contexts(model, probeset, responses, entry, k=2, max_length=32)
    assert len(shown) == 4
    sides = [example.label.split(" · ")[0] for example in shown]
    assert set(sides[0::2]) <= {"yy", "zz"} and set(sides[1::2]) == {"xx"}


def test_stereoset_scores_come_from_the_same_sentence_scores(model, tmp_path):
    texts = [tiny.sentences(12, seed=s, length=(4, 8)) for s in (61, 62, 63)]
    items = [{"stereotype": a, "anti_stereotype": b, "unrelated": c, "marker": "gender" if i % 2 else "race"}
             for i, (a, b, c) in enumerate(zip(*texts))]
    sets = write(tmp_path, {"name": "ss", "description": "d", "kind": "paired",
                            "groups": ["stereotype", "anti_stereotype", "unrelated"], "items": items})
    output = audited(model, sets, FAST)["probesets"][0]["disparity"]["output"]
    first = output["preference"]["rows"][0]  # stereotype vs anti_stereotype, from the same sentence log-likelihoods
    assert output["stereoset"]["overall"]["n_items"] == 12
    assert output["stereoset"]["overall"]["ss"] == pytest.approx(100 * first["share"])
    assert set(output["stereoset"]["by_marker"]) == {"gender", "race"}
