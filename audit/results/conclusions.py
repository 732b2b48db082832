"""Plain-English conclusions per probe set for page 1 of a report: what we found, how sure we are, what it means
for this model's use, and what it does not show. Every number carries its unit or scale, every interval is a
labelled 95 % CI, and "validated" is said only where the ablation's corrected test says so."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


UNFAIR_TO_A_PERSON = ("Whether a decision taken with the model is unfair to a person; attributes and groups outside "
                      "this set.")
METRIC_WORDS = {
    "embedding_shift_positive": "how far the concept texts' sentence embeddings move (1 − cosine)",
    "embedding_shift": "how far the sentence embeddings move (1 − cosine)",
}


def _f(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(ci: Sequence[float] | None, digits: int = 3) -> str:
    if not ci or any(v is None for v in ci):
        return ""
    return f"95 % CI {_f(ci[0], digits)} to {_f(ci[1], digits)}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _pct_ci(ci: Sequence[float] | None) -> str:
    if not ci or any(v is None for v in ci):
        return ""
    return f"95 % CI {_pct(ci[0])} to {_pct(ci[1])}"


def ablation_sentence(section: Mapping[str, Any]) -> str:
    """How sure the causal link is: the ablation's result, with "validated" only from the corrected test."""
    ablation = section.get("ablation")
    if ablation is None:
        return "No ablation was run, so whether these neurons drive the model's outputs was not tested."
    if "skipped" in ablation:
        return f"Ablation was not run: {ablation['skipped']}."
    k = len(ablation.get("neurons", []))
    selection = ablation.get("selection") or (f"the top {k} by selectivity on probe texts held apart from the "
                                              "texts the effect is measured on")
    null = ablation.get("null") or {}
    metric = str(ablation.get("metric", "the measured output"))
    metric = METRIC_WORDS.get(metric, metric.replace("_", " ")).replace("1 - cosine", "1 − cosine")
    effect = ablation.get("effect")
    if "disparity_clean" in ablation and ablation.get("disparity_ablated") is not None:
        clean, ablated = ablation["disparity_clean"], ablation["disparity_ablated"]
        direction = "lowers" if ablated < clean else "raises"
        interval = f", {_ci(ablation.get('ci95'), 4)}" if ablation.get("ci95") else ""
        moved = (f"{direction} the gap ({metric}) from {_f(clean, 4)} to {_f(ablated, 4)}, a change of "
                 f"{_f(effect, 4)}{interval}; random sets of neurons from the same layers change it by "
                 f"{_f(null.get('mean'), 4)} on average ({null.get('n', '?')} sets)")
    else:
        moved = (f"changes {metric} by {_f(effect, 4)}, against {_f(null.get('mean'), 4)} on average for "
                 f"{null.get('n', '?')} random sets of neurons from the same layers")
    text = f"Switching off {k} flagged neurons ({selection}) {moved}"
    if "validated" in ablation:
        p = ablation.get("p_corrected")
        tests = ablation.get("n_tests")
        verdict = ablation.get("verdict") or ("validated" if ablation["validated"] else
                                              "not distinguishable from random neurons")
        if p is None:
            return text + f": {verdict}."
        how = "Holm correction" if ablation.get("correction") == "holm" else "correction"
        return (text + f" (p = {_f(p, 3)} after {how} over {tests} tests): {verdict}.")
    p = ablation.get("p_value")
    n = null.get("n")
    floor = f"; the smallest possible with {n} random sets is {_f(1 / (n + 1), 3)}" if n else ""
    return (text + f" (empirical p = {_f(p, 3)}{floor}). This p is not corrected for the audit's several tests, "
            "so the neurons are not called validated.")


def _checks_for(result: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    policy = result.get("policy") or {}
    return [c for c in policy.get("checks", []) if c.get("probeset") == name]


def _policy_sentence(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return "No policy check applies to this set."
    parts = []
    for check in checks:
        outcome = check.get("outcome") or check.get("verdict")
        parts.append(f"{outcome}: {check['name']}")
    return "Policy: " + "; ".join(parts) + "."


def _concept(result: Mapping[str, Any], section: Mapping[str, Any]) -> dict[str, str]:
    summary, kind = section["summary"], result["model"]["kind"]
    concept = section.get("concept", section["name"])
    tested = summary["n_neurons_tested"]
    strong = summary.get("strong_selective", {}).get("0.8")
    found = (f"{summary['n_significant']:,} of {tested:,} neurons ({_pct(summary['n_significant'] / tested)}) "
             f"respond differently to {concept} than to matched texts without it (q < {section['alpha']})"
             + (f"; {strong:,} strongly (AUROC ≥ 0.8 or ≤ 0.2)" if strong is not None else "") + ".")
    if section.get("neurons"):
        top = section["neurons"][0]
        found += (f" The strongest, {top['name']}, has AUROC {_f(top['auroc'])} "
                  f"({_ci(top.get('auroc_ci95'))}; 0.5 = chance, 1 = perfect separation).")
    control = section.get("control", {}).get("n_significant")
    sure = (f"With the labels shuffled, {control} neurons pass (0 expected). " if control is not None else "") \
        + ablation_sentence(section)
    if kind == "encoder":
        means = (f"The model represents {concept} in identifiable neurons. That can help monitor or filter such "
                 "text; it is neither a defect nor a safety guarantee.")
        not_shown = (f"How often {concept} reaches users: an encoder writes no text, so these neurons say nothing "
                     "about generated text. Other wordings, domains and languages were not tested.")
    else:
        means = (f"The model represents {concept} in identifiable neurons that can be monitored or edited; the "
                 "ablation line above says whether they change its outputs more than random neurons do.")
        generation = (section.get("ablation") or {}).get("generation")
        if generation and generation.get("shift") is not None:
            direction = "lowers" if generation["shift"] < 0 else "raises"
            means += (f" Switching them off {direction} the log-probability of the toxic continuation relative to "
                      f"the neutral one by {_f(abs(generation['shift']), 3)} nats ({_ci(generation.get('ci95'))}).")
        not_shown = (f"How often the model generates {concept} when sampled: only fixed texts were scored. Other "
                     "wordings, domains and languages were not tested.")
    return {"found": found, "sure": sure, "means": means, "not_shown": not_shown}


def _output_sentences(output: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, float]]]:
    sentences, intervals = [], []
    sensitivity = output.get("sensitivity")
    table = output.get("table", {})
    if sensitivity:
        for row in sensitivity["rows"]:
            ratio = f", {_f(row['ratio'], 1)} times as much" if row.get("ratio") is not None else ""
            sentences.append(f"Swapping {row['group']} for {row['versus']} words moves the sentence embedding by "
                             f"{_f(row['group_shift'])} (1 − cosine; 0 = unchanged), {_f(row['excess'])} more "
                             f"({_ci(row.get('excess_ci95'))}) than swapping an ordinary word of similar "
                             f"distance{ratio}.")
            intervals.append((row.get("excess_ci95"), 0.0))
    elif "per_group" in table:
        for pair in table["pairs"]:
            diff = pair["difference"]
            word = "higher" if diff > 0 else "lower"
            sentences.append(f"The model's {output.get('metric', 'score')} is {_f(abs(diff), 4)} {word} for the "
                             f"{pair['group']} version than for the {pair['versus']} version "
                             f"({_ci(pair.get('ci95'), 4)}).")
            intervals.append((pair.get("ci95"), 0.0))
    elif table.get("pairs"):
        pairs = sorted(table["pairs"], key=lambda p: p["cosine"])
        low, high = pairs[0], pairs[-1]
        sentences.append(f"Versions of the same item are far apart or close depending on the pair: mean cosine "
                         f"{_f(low['cosine'])} for {low['group']}–{low['versus']} ({_ci(low.get('ci95'))}) up to "
                         f"{_f(high['cosine'])} for {high['group']}–{high['versus']} (1 = the same embedding).")
    preference = output.get("preference")
    if preference and preference.get("rows"):
        row = preference["rows"][0]
        sentences.append(f"The model prefers the {row['group']} version over the {row['versus']} version on "
                         f"{_pct(row['share'])} of {row['n_items']:,} items ({_pct_ci(row.get('ci95'))}; "
                         "50 % = no preference).")
        intervals.append((row.get("ci95"), 0.5))
    stereoset = output.get("stereoset")
    if stereoset:
        overall = stereoset["overall"]
        sentences.append(f"StereoSet stereotype score ss {_f(overall.get('ss'), 1)} (0 to 100; 50 = no preference), "
                         f"language-model score lms {_f(overall.get('lms'), 1)}, icat {_f(overall.get('icat'), 1)}.")
    return sentences, intervals


def _paired(result: Mapping[str, Any], section: Mapping[str, Any]) -> dict[str, str]:
    disparity, kind = section["disparity"], result["model"]["kind"]
    counts = disparity["counts"]["q_and_effect"]
    per_group = ", ".join(f"{n:,} for {g}" for g, n in counts["per_group"].items())
    groups = " / ".join(str(g) for g in section.get("groups", []))
    n = counts["any_group"]
    criterion = f"q < {section['alpha']} and |dz| ≥ {section.get('min_effect', 0.5)}"
    if n == 0:
        found = f"No neuron is group-selective ({groups}; {criterion})."
    else:
        verb = " is" if n == 1 else "s are"
        found = (f"{n:,} neuron{verb} group-selective ({groups}; {criterion}): {per_group}. A neuron can be "
                 "selective for several groups, so these counts overlap.")
    sentences, intervals = _output_sentences(disparity.get("output", {}))
    found = " ".join([found, *sentences, *_language_sentences(section.get("multilingual"))])
    sure_parts = []
    excluded, included = [], []
    for ci, null in intervals:
        if ci and ci[0] is not None and ci[1] is not None:
            none = "no preference (50 %)" if null == 0.5 else "no difference (0)"
            (excluded if ci[0] > null or ci[1] < null else included).append(none)
    for values, reading in ((excluded, "so chance alone is an unlikely explanation"),
                            (included, "so the direction is uncertain")):
        if values:
            verb = "excludes" if values is excluded else "includes"
            sure_parts.append(f"the 95 % CI {verb} {' and '.join(dict.fromkeys(values))}, {reading}")
    sure = (f"Output measures: {'; '.join(sure_parts)}. " if sure_parts else "") + ablation_sentence(section)
    checks = _checks_for(result, section["name"])
    failed = [c for c in checks if (c.get("outcome") or c.get("verdict")) == "FAIL"]
    languages = "multilingual" in section["name"] or "lape" in section
    pairs = disparity.get("output", {}).get("table", {}).get("pairs", [])
    far = failed or any(p.get("cosine") is not None and p["cosine"] < 0.5 for p in pairs)
    if languages:
        means = ("Texts with the same meaning in different languages end up far apart: do not rely on this model "
                 "for cross-lingual search or for texts in these languages without testing it on them."
                 if far else "The model keeps translations of a sentence close, as cross-lingual use needs.")
        not_shown = "Quality on any task in these languages, and languages not in the set."
    elif failed:
        means = ("The model treats otherwise identical texts about these groups differently beyond the policy's "
                 "threshold; systems built on it (search, ranking, classification) can inherit that difference. "
                 "Review before deployment for decisions about people.")
        not_shown = UNFAIR_TO_A_PERSON
    else:
        means = ("Within this set, the model's outputs differ between the groups no more than the policy allows"
                 if checks else "No policy threshold applies, so read the measures above against your own needs")
        means += "."
        not_shown = UNFAIR_TO_A_PERSON
    if {"female", "male"} & {str(g).lower() for g in section.get("groups", [])}:
        not_shown += " Gender beyond female and male."
    if kind == "encoder":
        not_shown += " An encoder writes no text: generated text was not tested."
    return {"found": found, "sure": sure, "means": means, "not_shown": not_shown}


def _language_sentences(multilingual: Mapping[str, Any] | None) -> list[str]:
    """What a language set's neuron counts mean on this model: a map of the tokenizer's coverage when the model
    does not tell the languages apart, else the deactivation matrix's proof in one sentence per language."""
    if not multilingual:
        return []
    separation = multilingual.get("separation") or {}
    if separation and not separation.get("separates", True):
        unknown = ", ".join(separation.get("not_served") or []) or "these languages apart"
        return [f"The model does not know {unknown}: its translations are not matched to their sources, so the "
                "neuron counts above mostly map the tokenizer's coverage of those languages, not language-specific "
                "processing, and are not findings about fairness across languages."]
    deactivation = multilingual.get("deactivation") or {}
    return [f"Deactivation matrix: {'; '.join(deactivation['summary'])}."] if deactivation.get("summary") else []


def conclusions(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """One plain-English conclusion per probe set (found, sure, means, not_shown, policy)."""
    found = []
    for section in result["probesets"]:
        body = _concept(result, section) if section["kind"] == "concept" else _paired(result, section)
        body.update({"name": section["name"], "policy": _policy_sentence(_checks_for(result, section["name"]))})
        found.append(body)
    return found


def compare_conclusions(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per probe set of a comparison: what changed from A to B, in plain words."""
    found = []
    for diff in result.get("probesets", []):
        text = (f"{diff['n_flagged_a']:,} flagged neurons in A and {diff['n_flagged_b']:,} in B "
                f"({diff['flagged_definition']}); {diff['overlap']:,} of A's keep a flagged partner in B, "
                f"{diff['became_flagged']:,} became flagged in B and {diff['stopped_flagged']:,} stopped.")
        if diff.get("mean_abs_delta") is not None:
            statistic = "AUROC" if diff.get("kind") == "concept" else "dz"
            text += (f" A's reported neurons and their partners in B differ by {diff['mean_abs_delta']:.3f} in "
                     f"{statistic} on average (absolute difference).")
        output = diff.get("output")
        if output and output.get("delta") is None:
            text += (f" The change in the output-level score ({output.get('metric', 'bias score')}) could not be "
                     f"computed ({_f(output.get('a'), 4)} in A, {_f(output.get('b'), 4)} in B).")
        elif output:
            direction = "rises" if output["delta"] > 0 else "falls"
            text += (f" The output-level score ({output.get('metric', 'bias score')}) {direction} from "
                     f"{_f(output['a'], 4)} to {_f(output['b'], 4)} (change {_f(output['delta'], 4)}, "
                     f"{_ci(output.get('ci95'), 4)}).")
        found.append({"name": diff["name"], "found": text,
                      "policy": _policy_sentence(_checks_for(result, diff["name"]))})
    return found
