"""Scope and limits of an audit, in plain words: what each probe set is (bundled, imported benchmark, user file),
what it covers, what the audit did not test, each public benchmark's documented limitations with citations,
and the report's glossary. Read by the report templates; derived from the result dict alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

BUNDLED = {"toxicity", "clinical", "gender-occupations", "multilingual"}
ATTRIBUTES = ("gender", "race or ethnicity", "religion", "age", "disability", "sexual orientation", "nationality",
              "socio-economic status", "physical appearance", "language")
LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ko": "Korean",
                  "ru": "Russian", "ar": "Arabic", "hi": "Hindi", "tr": "Turkish", "pl": "Polish"}
CROWS_BIASES = {"race-color": "race or ethnicity", "gender": "gender", "socioeconomic": "socio-economic status",
                "nationality": "nationality", "religion": "religion", "age": "age",
                "sexual-orientation": "sexual orientation", "physical-appearance": "physical appearance",
                "disability": "disability"}

BENCHMARKS: dict[str, dict[str, Any]] = {
    "crows-pairs": {
        "title": "CrowS-Pairs",
        "attributes": sorted(set(CROWS_BIASES.values())),
        "limitations": [
            "The dataset's own README warns that Blodgett et al. (2021) found significant noise and reliability "
            "problems in its sentence pairs, and that it may not be a good indicator of social bias.",
            "It is US-centric: the stereotypes and groups are those of US crowd-workers.",
            "A score near 50 % does not show an unbiased model; it shows no preference on these pairs.",
        ],
        "citations": [
            "Nangia, Vania, Bhalerao and Bowman (2020). CrowS-Pairs: A Challenge Dataset for Measuring Social Biases "
            "in Masked Language Models. EMNLP.",
            "Blodgett, Lopez, Olteanu, Sim and Wallach (2021). Stereotyping Norwegian Salmon: An Inventory of "
            "Pitfalls in Fairness Benchmark Datasets. ACL.",
        ],
    },
    "winobias": {
        "title": "WinoBias",
        "attributes": ["gender"],
        "limitations": [
            "Binary gender only (he / she); non-binary people and other pronouns are not represented.",
            "40 occupations whose 'stereotypical' gender comes from US Bureau of Labor Statistics figures; "
            "other countries and times differ.",
            "Templated sentences built for coreference; a preference between two versions is not a measured harm.",
        ],
        "citations": [
            "Zhao, Wang, Yatskar, Ordonez and Chang (2018). Gender Bias in Coreference Resolution: Evaluation and "
            "Debiasing Methods. NAACL.",
        ],
    },
    "stereoset": {
        "title": "StereoSet",
        "attributes": ["gender", "race or ethnicity", "religion"],
        "limitations": [
            "Blodgett et al. (2021) found many of its items ill-posed: unclear what stereotype is tested, or "
            "comparisons that are not about a stereotype at all.",
            "Crowd-sourced in the US; its stereotypes are those of US crowd-workers.",
            "ss = 50 means no preference on these items, not an unbiased model.",
        ],
        "citations": [
            "Nadeem, Bethke and Reddy (2021). StereoSet: Measuring Stereotypical Bias in Pretrained Language Models. "
            "ACL.",
            "Blodgett, Lopez, Olteanu, Sim and Wallach (2021). Stereotyping Norwegian Salmon. ACL.",
        ],
    },
}

NOT_TESTED = {
    "encoder": [
        "Generated text: an encoder writes no text, so its 'toxicity neurons' say nothing about what a system "
        "built on it would generate.",
        "Decisions of a system built on the embeddings (a classifier, a search ranking): only the embeddings "
        "themselves were measured.",
        "Gender beyond female and male, and combinations of attributes (for example, gender and race together).",
        "Robustness to paraphrased, misspelt or adversarial inputs.",
        "Privacy: whether the model has memorised personal data.",
    ],
    "causal-lm": [
        "Sampled generations: the audit scores the likelihood of fixed sentences and continuations; it does not "
        "generate text and rate it.",
        "Instruction following, refusals, and resistance to jailbreak prompts.",
        "Factual accuracy (made-up facts).",
        "Gender beyond female and male, and combinations of attributes (for example, gender and race together).",
        "Privacy: whether the model has memorised personal data.",
    ],
}

GLOSSARY: list[tuple[str, str]] = [
    ("Neuron, L2.N1321", "One unit inside the model's MLP layers. L2.N1321 is neuron 1321 of layer 2; layers count "
     "from 0 (the input side)."),
    ("Selective neuron", "A neuron whose response separates texts with a concept from matched texts without it, "
     "more than chance allows (q < 0.05)."),
    ("Group-selective neuron", "A neuron that responds more to one group's version of the same sentence than to "
     "another's (q < 0.05 and |dz| ≥ 0.5). A neuron can be selective for several groups, so per-group counts "
     "overlap and can add up to more than the total."),
    ("AUROC", "How well a neuron's response tells two sets of texts apart: 0.5 is chance, 1 means always higher on "
     "the concept, 0 always lower. Paired AUROC compares the two versions of each item."),
    ("q-value", "A p-value corrected for testing thousands of neurons at once (Benjamini–Hochberg false discovery "
     "rate). q < 0.05: among neurons called selective, about 5 % are expected to be false alarms."),
    ("p-value (empirical)", "In ablation: the share of random neuron sets whose effect is at least as large as the "
     "flagged neurons'. With N random sets it cannot go below 1/(N + 1)."),
    ("z", "How many standard deviations the flagged neurons' effect lies from the random sets' mean effect."),
    ("Cohen's d, dz", "Effect size: a difference in means divided by a standard deviation. dz uses the "
     "differences between an item's two versions. 0.2 is small, 0.5 medium, 0.8 large."),
    ("1 − cosine", "How far apart two sentence embeddings are: 0 means the same direction, 1 unrelated, 2 "
     "opposite. Used for encoders, which produce embeddings rather than text."),
    ("Counterfactual sensitivity (excess)", "How much more swapping group words (she → he) moves the embedding "
     "than swapping an ordinary word of similar distance. 0 means group words are treated like any other word."),
    ("Log-likelihood, nats", "How probable the model finds a text, on a natural-log scale (nats). A gap between two "
     "versions of a sentence shows which one the model finds more likely."),
    ("Ablation", "Switching neurons off (setting them to their mean, to zero, or damping them) and measuring how the "
     "model's outputs change, compared with switching off random neurons from the same layers."),
    ("Validated", "Used only when ablating the flagged neurons changes the outputs more than random neurons do, with "
     "p < 0.05 after correcting for all the audit's ablation tests (each probe set's doses in a fixed order from "
     "the strongest, the sets combined as in Holm's procedure), in the expected direction. Results "
     "without that correction are never called validated."),
    ("Polysemantic", "A neuron that also responds strongly to things unrelated to the audited concept. 'Looks "
     "monosemantic' means no such evidence was found in the texts tried, not that none exists."),
    ("LAPE", "Language activation probability entropy: finds neurons that fire for one language and rarely for "
     "others (Tang et al. 2024)."),
    ("95 % CI", "95 % confidence interval, from a bootstrap over items: the range the value would likely fall in "
     "if the audit were repeated on similar texts."),
    ("PASS / FAIL / NOT EVALUATED", "A policy check's outcome: the measured value is within or beyond the "
     "threshold, or the check could not be measured on this model or these results (the reason is given)."),
    ("Report id", "sha256 of the canonical results.json (sorted keys, no spaces); printed in every page footer so a "
     "printed page can be matched to its data."),
]


def origin(section: Mapping[str, Any]) -> tuple[str, str | None]:
    """Where a probe set comes from: ("bundled" | "imported benchmark" | "user file", benchmark key or None)."""
    name, source = section["name"], str(section.get("source") or "")
    for key, benchmark in BENCHMARKS.items():
        if name.startswith(key) or f"from {benchmark['title']}" in source:
            return "imported benchmark", key
    if name in BUNDLED and "for neuron-audit" in source:
        return "bundled", None
    return "user file", None


def _attributes(section: Mapping[str, Any], benchmark: str | None) -> list[str]:
    name, groups = section["name"], [str(g).lower() for g in section.get("groups", [])]
    if benchmark == "crows-pairs":
        suffix = name[len("crows-pairs-"):] if name.startswith("crows-pairs-") else ""
        return [CROWS_BIASES[suffix]] if suffix in CROWS_BIASES else BENCHMARKS[benchmark]["attributes"]
    if benchmark:
        return BENCHMARKS[benchmark]["attributes"]
    found = []
    if {"female", "male", "woman", "man", "women", "men"} & set(groups) or "gender" in name:
        found.append("gender")
    if _languages(section) and len(_languages(section)) > 1:
        found.append("language")
    for attribute in ATTRIBUTES:
        if attribute not in found and attribute.split()[0] in name:
            found.append(attribute)
    return found


def _languages(section: Mapping[str, Any]) -> list[str]:
    groups = [str(g) for g in section.get("groups", [])]
    if groups and all(g.lower() in LANGUAGE_NAMES for g in groups):
        return [LANGUAGE_NAMES[g.lower()] for g in groups]
    return []


def _items(section: Mapping[str, Any]) -> str:
    if section["kind"] == "concept":
        return (f"{section.get('n_positive', 0):,} with the concept, {section.get('n_negative', 0):,} matched "
                f"without ({section['n_texts']:,} texts)")
    versions = len(section.get("groups", []))
    return f"{section.get('n_items', 0):,} items × {versions} versions ({section['n_texts']:,} texts)"


def scope(result: Mapping[str, Any]) -> dict[str, Any]:
    """What was tested (one row per probe set) and what was not (a fixed list for the model kind, plus the
    attributes no set covers), with each imported benchmark's limitations and citations."""
    rows, covered, benchmarks = [], set(), {}
    for section in result["probesets"]:
        where, benchmark = origin(section)
        attributes = _attributes(section, benchmark)
        covered.update(attributes)
        if benchmark:
            benchmarks[benchmark] = BENCHMARKS[benchmark]
        languages = _languages(section) or (["English"] if where != "user file" else [])
        tested = (f"behaviour: {section.get('concept', section['name'])}" if section["kind"] == "concept"
                  else "groups: " + ", ".join(str(g) for g in section.get("groups", [])))
        rows.append({"name": section["name"], "origin": where + (f" ({BENCHMARKS[benchmark]['title']})"
                                                                 if benchmark else ""),
                     "file": Path(str(section.get("file") or "")).name or "—", "size": _items(section),
                     "tested": tested, "attributes": attributes,
                     "languages": ", ".join(languages) if languages else "not recorded (user file)",
                     "benchmark": benchmark})
    kind = result["model"]["kind"]
    absent = [a for a in ATTRIBUTES if a not in covered]
    return {"rows": rows, "not_tested": NOT_TESTED.get(kind, NOT_TESTED["encoder"]), "absent_attributes": absent,
            "benchmarks": benchmarks,
            "bundled_note": any(row["origin"] == "bundled" for row in rows)}
