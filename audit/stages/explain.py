"""Explanations of single neurons: method A (top words, coherence of the content words, in-context
substitution, description) and an N2G graph, scored on held-out text (general text and held-apart concept
items) with the field's four scores, a causal check, and the polysemanticity verdict on the same firing line.

Forward passes are batched: the training and held-out texts once for all reported neurons (one pass reads
every neuron), and the variants (pruned, blanked, substituted contexts) of all neurons of a layer together, in
a few rounds of passes stopped at that layer. The graph predicts at token level; everything a reader sees (top
words, graph nodes, contexts) is in whole words.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Generator, Iterable, Sequence

import numpy as np

from ..analysis import explain as method_a
from ..analysis import explanation_scores as es
from ..analysis import n2g
from ..analysis.polysemanticity import POLYSEMANTIC, SIMILAR, firing_line_verdict
from ..analysis.topk import TopContexts
from ..analysis.words import common_words, is_function_word, merge_pieces, space_marked_vocabulary, word_spans
from ..errors import AuditInputError
from ..execution.executor import Executor
from ..execution.state import JobState
from ..model.contexts import keyed, top_contexts
from ..model.harvest import batch_plan
from ..model.loading import Model
from ..model.neuron_effects import ablation_output_change
from ..model.similarity import WordVectors, clean_token, is_word_start
from ..model.variants import bf16_variants, context_ids, neuron_activations, neurons_activations, rows_activations
from ..results.contract import ABSENT, Explanation

PRUNE_BACK = (0, 1, 2, 3, 5, 8, 12, 20)  # candidate context lengths before the activating token
PRUNE_FIRST = 4  # the shortest candidates, tried before the longer ones
AFTER = 2  # tokens kept after the activating token by encoders (they read both ways; a causal LM's later
# tokens cannot change it, so its variants end at the activating token)
SUBSTITUTES = 5  # per word, as published
TOP_TOKENS_TESTED = 3  # method A substitutes the neuron's strongest distinct content words
WINDOW = 3  # words of context either side, as published
CAUSAL_CONTEXTS = 10  # held-out contexts per side (explanation predicts firing / not) for the causal check
FUNCTION_PEAKS = 0.5  # peaks on function words: at least this share of its top contexts peak on one
_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")


@dataclass
class Built:
    """One neuron's explanation before held-out scoring: the record so far and what predicts its firing."""

    record: dict[str, Any]
    graph: n2g.Graph | None
    baselines: n2g.Baselines
    top: float
    train_texts: set[str] = field(default_factory=set)
    concept_vectors: list[np.ndarray] = field(default_factory=list)
    forward_s: float = 0.0


Steps = Generator[list[list[int]], list[np.ndarray], Built]


def build_explanation(model: Model, layer: int, neuron: int, train: Sequence[dict[str, Any]], vectors: WordVectors,
                      *, common: frozenset[str] = frozenset(), setting: str = "its top", max_length: int = 128,
                      seed: int = 0) -> Built:
    """Method A and the N2G graph of neuron (layer, neuron) from its top ``train`` contexts (``text``,
    ``position``, ``activation``). ``common``: the reference corpus's common (function) words; ``setting``
    names where the contexts come from in the description ("clinical")."""
    steps = explanation_steps(model, layer, neuron, train, vectors, common=common, setting=setting,
                              max_length=max_length, seed=seed)
    return build_all(model, {(layer, neuron, setting): steps})[0][(layer, neuron, setting)]


def build_all(model: Model, steps: dict[tuple[int, int, str], Steps]) -> tuple[dict[tuple[int, int, str], Built],
                                                                            float]:
    """Run many neurons' :func:`explanation_steps` together: each round, the variants every neuron of a layer
    asks for share batched forwards stopped at that layer. Returns the built explanations (each with its share
    of the forward time) and the seconds spent in forward passes."""
    fast = bf16_variants(model)
    built: dict[tuple[int, int, str], Built] = {}
    asked: dict[tuple[int, int, str], list[list[int]]] = {}
    spent: dict[tuple[int, int, str], float] = dict.fromkeys(steps, 0.0)

    def advance(key: tuple[int, int, str], values: list[np.ndarray] | None) -> None:
        try:
            asked[key] = steps[key].send(values)
        except StopIteration as finished:
            built[key] = finished.value
            built[key].forward_s = spent[key]

    for key in steps:
        advance(key, None)
    while asked:
        by_layer: dict[int, list[tuple[int, int, str]]] = {}
        for key in asked:
            by_layer.setdefault(key[0], []).append(key)
        for layer, keys in sorted(by_layer.items()):
            rows = [(key[1], ids) for key in keys for ids in asked[key]]
            tick = time.perf_counter()
            values = rows_activations(model, layer, rows, bf16=fast)
            share = (time.perf_counter() - tick) / len(keys)
            at = 0
            for key in keys:
                mine, at = values[at:at + len(asked[key])], at + len(asked[key])
                del asked[key]
                spent[key] += share
                advance(key, mine)
    return built, sum(spent.values())


def explanation_steps(model: Model, layer: int, neuron: int, train: Sequence[dict[str, Any]], vectors: WordVectors,
                      *, common: frozenset[str] = frozenset(), setting: str = "its top", max_length: int = 128,
                      seed: int = 0, train_values: dict[str, np.ndarray] | None = None) -> Steps:
    """:func:`build_explanation` as steps: yields the token sequences whose activations it needs next (never an
    empty list) and receives them, so :func:`build_all` can batch many neurons' variants. ``train_values``:
    the neuron's activations on its training texts where already read (full precision)."""
    contexts = [c for c in train if c["activation"] > 0]
    encoded = context_ids(model, [c["text"] for c in contexts], max_length)
    pieces = [(enc, min(c["position"], len(enc["ids"]) - 1), c) for enc, c in zip(encoded, contexts) if enc["ids"]]
    top = max((c["activation"] for _, _, c in pieces), default=0.0)
    words = [_word(enc, at, c["text"])[0] for enc, at, c in pieces]
    scores = method_a.token_scores(words, [c["activation"] for _, _, c in pieces])
    for row in scores:
        row["function_word"] = is_function_word(row["token"], common)
    content = [row for row in scores if not row["function_word"]]
    peaks = [w for w, (_, _, c) in zip(words, pieces) if top > 0 and c["activation"] >= es.FIRE * top]
    on_function = [w for w in peaks if is_function_word(w, common)]
    function_info = {"peaks_on_function_words": bool(peaks) and len(on_function) / len(peaks) >= FUNCTION_PEAKS,
                     "share": len(on_function) / len(peaks) if peaks else None,
                     "words": list(dict.fromkeys(w.lower() for w in on_function))[:8]}
    record: dict[str, Any] = {"top_activation": float(top), "top_tokens": scores, "backend": vectors.name,
                              "contexts": [_window(enc, at, c) for enc, at, c in pieces],
                              "words": [row["token"] for row in content][:10], "function_words": function_info}
    embedded = [v for v in (vectors.vector(row["token"]) for row in content) if v is not None]
    rng = np.random.default_rng(seed)
    coherence = method_a.coherence(np.stack(embedded) if len(embedded) >= 2 else None,
                                   lambda n: vectors.random_vectors(n, rng), floor=vectors.coherent_floor)
    record["coherence"] = coherence
    built = Built(record, None, n2g.Baselines(), float(top), {c["text"] for _, _, c in pieces}, embedded)
    if top <= 0:
        record.update(substitutions=[], substitution_summary=method_a.substitution_summary([], 0.0),
                      description=method_a.describe([], None, {"n": 0}))
        return built

    if train_values is not None and all(c["text"] in train_values for _, _, c in pieces):
        known = [np.asarray(train_values[c["text"]], np.float32) for _, _, c in pieces]
    else:
        known = yield [enc["ids"] for enc, _, _ in pieces]
    # method A substitutions and N2G augmentation share one batch of variants
    subs = _substitution_variants(model, pieces, content, vectors)
    pruned = yield from _prune(pieces, known, causal=model.kind == "causal-lm")
    salient = yield from _saliency(model, pruned)
    augmented = _augment(model, salient, vectors)
    variants = [v["ids"] for v in subs] + [v["ids"] for v in augmented]
    outcomes = (yield variants) if variants else []
    rows = []
    for variant, values in zip(subs, outcomes[:len(subs)]):
        span = values[variant["at"]:variant["at"] + variant["width"]]
        rows.append({"token": variant["token"], "substitute": variant["substitute"],
                     "similarity": round(variant["similarity"], 4), "original": variant["original"],
                     "activation": float(span.max()), "context": variant["context"]})
    record["substitutions"] = rows
    record["substitution_summary"] = method_a.substitution_summary(rows, top)
    record["description"] = method_a.describe(scores, coherence, record["substitution_summary"],
                                              function_words=function_info, setting=setting)

    baselines = built.baselines
    singles: dict[str, list[float]] = {}  # every training token's activations: the graph's depth-1 patterns
    for (enc, _, _), values in zip(pieces, known):
        baselines.learn(enc["tokens"], values / top)
        for token, value in zip(enc["tokens"], values / top):
            singles.setdefault(token, []).append(float(value))
    deep = [(n2g.pattern(e["tokens"], e["at"], e["important"]), e["activation"] / top) for e in salient]
    deep += [(n2g.pattern(v["tokens"], v["at"], v["important"]), float(values[v["at"]]) / top)
             for v, values in zip(augmented, outcomes[len(subs):])]
    for tokens, value in deep:
        if len(tokens) == 1:
            singles.setdefault(tokens[0], []).append(value)
    # one-token patterns: tokens firing often enough in training that predicting them raises F1 there
    graph = n2g.Graph([((token,), value) for token, value in n2g.firing_tokens(singles).items()])
    for tokens, value in deep:
        if len(tokens) > 1:
            graph.add(tokens, value)
    record["graph"] = graph.to_list()
    record["graph_words"] = graph_words(graph, _token_words(pieces), space_marked_vocabulary(
        t for enc, _, _ in pieces for t in enc["tokens"]))
    built.graph = graph
    return built


def _token_words(pieces: list) -> dict[str, Counter]:
    """Each training token's whole words (how often it was part of each), to show pieces as words."""
    found: dict[str, Counter] = {}
    for enc, _, c in pieces:
        for first, last in word_spans(c["text"], enc["spans"]):
            word = c["text"][enc["spans"][first][0]:enc["spans"][last - 1][1]].strip()
            for token in enc["tokens"][first:last]:
                found.setdefault(token, Counter())[word] += 1
    return found


def graph_words(graph: n2g.Graph, token_words: dict[str, Counter], space_marked: bool) -> list[dict[str, Any]]:
    """The graph's patterns as a reader sees them: word pieces merged with their word (a piece standing alone
    shown as the word it was part of in training), same order as the token patterns (activating word first,
    then its context backwards), duplicates merged keeping the larger activation."""
    whole = {w.lower() for counter in token_words.values() for w in counter}
    merged: dict[tuple[str, ...], float] = {}
    for key, value in graph.patterns.items():
        reading = list(reversed(key))
        shown = []
        for first, last, word in merge_pieces(reading, space_marked=space_marked):
            if word != "*" and word.lower() not in whole and reading[first] in token_words:
                word = token_words[reading[first]].most_common(1)[0][0]
            if not (shown and shown[-1] == "*" and word == "*"):
                shown.append(word)
        words = tuple(reversed(shown))
        merged[words] = max(value, merged.get(words, -np.inf))
    return [{"tokens": list(k), "activation": round(float(v), 4)}
            for k, v in sorted(merged.items(), key=lambda item: (-item[1], item[0]))]


def _joined(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if len(arrays) else np.zeros(0)


def _predictions(graph: n2g.Graph | None, tokens: Sequence[str]) -> np.ndarray:
    return graph.predict_all(tokens) if graph is not None else np.zeros(len(tokens))


def score_explanation(built: Built, held: Sequence[dict], values: Sequence[np.ndarray], other: Built | None,
                      rng: np.random.Generator) -> dict[str, Any]:
    """The four scores (and the legacy ``fidelity`` block) of one built explanation on its held-out contexts
    (``held``: encodings with ``tokens``; ``values``: the neuron's real activations there)."""
    top = built.top if built.top > 0 else 1.0
    actual = [np.asarray(v, float) / top for v in values]
    tokens = [h["tokens"] for h in held]
    predicted = [_predictions(built.graph, t) for t in tokens]
    predictors = {"explanation": predicted, "token_lookup": [built.baselines.token_lookup(t) for t in tokens],
                  "random_explanation": ([_predictions(other.graph, t) for t in tokens]
                                         if other is not None and other.graph is not None else None)}
    scores = es.explanation_scores(actual, predictors, rng)
    everything = np.concatenate(actual) if actual else np.zeros(0)
    fidelity = {"graph": n2g.scores(_joined(predicted), everything),
                "token_lookup": n2g.scores(_joined(predictors["token_lookup"]), everything),
                "ngram": n2g.scores(_joined([built.baselines.ngram(t) for t in tokens]), everything)} if held else {}
    return {"scores": scores, "fidelity": fidelity, "fidelity_texts": len(held), "predicted": predicted}


def explain_neuron(model: Model, layer: int, neuron: int, train: Sequence[dict[str, Any]],
                   heldout: Sequence[str], vectors: WordVectors, *, max_length: int = 128, seed: int = 0,
                   common: frozenset[str] = frozenset(), setting: str = "its top") -> dict[str, Any]:
    """Explain one neuron from its top ``train`` contexts and score it on ``heldout`` texts (no random-other
    baseline: a single neuron has none). Returns the explanation record's fields, with timings."""
    started = time.perf_counter()
    built = build_explanation(model, layer, neuron, train, vectors, common=common, setting=setting,
                              max_length=max_length, seed=seed)
    if built.top <= 0:
        return built.record
    held = [h for h in context_ids(model, [t for t in heldout if t not in built.train_texts], max_length) if h["ids"]]
    tick = time.perf_counter()
    values = neuron_activations(model, layer, neuron, [h["ids"] for h in held])
    forward = built.forward_s + time.perf_counter() - tick
    scored = score_explanation(built, held, values, None, np.random.default_rng(seed))
    predicted = scored.pop("predicted")
    built.record.update(scored)
    rows = _causal_rows(predicted, np.random.default_rng(seed + 1).permutation(len(held)))
    changes = ablation_output_change(model, [h["ids"] for h in held], [(i, layer, neuron) for i, _ in rows])
    built.record["causal"] = _causal(rows, changes, np.random.default_rng(seed + 2))
    built.record["timings_s"] = {"total": time.perf_counter() - started, "forward": forward}
    return built.record


def _causal_rows(predicted: Sequence[np.ndarray], rank: np.ndarray) -> list[tuple[int, bool]]:
    """Up to :data:`CAUSAL_CONTEXTS` held-out contexts where the explanation predicts firing, and as many where
    it does not: those first in ``rank`` (a random order of the contexts, seeded; one order shared by all
    neurons lets them share contexts, whose clean pass then runs once). Returns (context index, predicted
    firing)."""
    fires = np.array([len(p) > 0 and p.max() >= es.FIRE for p in predicted], bool)
    rows = []
    for side in (True, False):
        pool = np.flatnonzero(fires == side)
        picked = pool[np.argsort(np.asarray(rank)[pool], kind="stable")[:CAUSAL_CONTEXTS]]
        rows += [(int(i), side) for i in sorted(picked)]
    return rows


def _causal(rows: list[tuple[int, bool]], changes: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    firing = [c for (_, side), c in zip(rows, changes) if side]
    quiet = [c for (_, side), c in zip(rows, changes) if not side]
    return es.causal_efficacy(firing, quiet, rng)


def _word(enc: dict, at: int, text: str) -> tuple[str, int, int]:
    """The whole word holding token ``at`` (letters and digits around its span in ``text``) and the range of
    tokens that spell it, so 'rec ##om ##mend ##ation' is read, shown and substituted as one word."""
    start, end = enc["spans"][at]
    while start < end and text[start].isspace():  # byte-level BPE spans can hold the space before the word
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if not any(ch.isalnum() for ch in text[start:end]):  # punctuation is its own word, never glued to one
        return (text[start:end].strip() or clean_token(enc["tokens"][at])), at, at + 1
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    first = at
    while first > 0 and enc["spans"][first - 1][0] >= start and enc["spans"][first - 1][1] > 0:
        first -= 1
    last = at + 1
    while last < len(enc["spans"]) and enc["spans"][last][1] <= end and enc["spans"][last][0] >= start:
        last += 1
    word = text[start:end].strip()
    return (word or clean_token(enc["tokens"][at])), first, last


def _window(enc: dict, at: int, context: dict) -> dict[str, Any]:
    """The context as a reader sees it: the whole word holding token ``at`` and ``WINDOW`` words either side,
    cut from the text itself (pieces never shown apart from their word)."""
    text = context["text"]
    found = list(_WORDS.finditer(text))
    start = enc["spans"][at][0]
    while start < len(text) and text[start].isspace():
        start += 1
    hit = next((i for i, m in enumerate(found) if m.end() > start), len(found) - 1)
    if not found:
        word, window = clean_token(enc["tokens"][at]), clean_token(enc["tokens"][at])
    else:
        lo, hi = max(0, hit - WINDOW), min(len(found), hit + WINDOW + 1)
        word, window = found[hit].group(), text[found[lo].start():found[hi - 1].end()]
    return {"text": text, "key": context.get("key"), "activation": float(context["activation"]),
            "token": word, "window": window}


def _single_id(model: Model, word: str, like: str) -> int | None:
    """The model's single token id for ``word`` spelt as the token ``like`` is (space mark, case)."""
    form = word.lower() if clean_token(like).islower() else word
    prefix = like[:1] if like[:1] in ("Ġ", "▁") else ""
    ids = model.tokenizer.convert_tokens_to_ids([prefix + form])
    unk = model.tokenizer.unk_token_id
    return None if not ids or ids[0] is None or ids[0] == unk else int(ids[0])


def _substitution_variants(model: Model, pieces: list, scores: list[dict], vectors: WordVectors) -> list[dict]:
    """For each of the strongest distinct words, its nearest words put in place of it in its strongest context."""
    variants = []
    for row in scores[:TOP_TOKENS_TESTED]:
        match = next(((enc, at, c) for enc, at, c in pieces
                      if _word(enc, at, c["text"])[0].lower() == row["token"].lower()), None)
        if match is None:
            continue
        enc, at, c = match
        _, first, last = _word(enc, at, c["text"])
        for word, score in vectors.neighbours(row["token"], SUBSTITUTES):
            spelled = (" " + word) if enc["tokens"][first][:1] in ("Ġ", "▁") else word
            ids = model.tokenizer(spelled, add_special_tokens=False)["input_ids"]
            if not ids:
                continue
            after = [] if model.kind == "causal-lm" else enc["ids"][last:]  # a causal LM reads left to right
            variants.append({"token": row["token"], "substitute": word, "similarity": score, "original":
                             float(c["activation"]), "ids": enc["ids"][:first] + list(ids) + after,
                             "at": first, "width": len(ids), "context": _window(enc, at, c)["window"]})
    return variants


def _prune(pieces: list, known: list[np.ndarray], *, causal: bool) -> Generator[list[list[int]], list[np.ndarray],
                                                                         list[dict]]:
    """N2G step 1: the shortest left-truncated suffix ending at the max token (plus ``AFTER`` tokens; a causal
    LM's ends there) that keeps half the activation. The :data:`PRUNE_FIRST` shortest candidates run first and
    the longer ones only for contexts none of them keeps (same choice as trying all; on SmolLM2 about 70 % of
    contexts stop in the first round). ``known``: the activations on the whole contexts; a causal LM's
    activation at the max token from the whole context is read there, not re-run."""
    plans = []
    for (enc, at, c), values in zip(pieces, known):
        end = min(len(enc["ids"]), at + 1 + (0 if causal else AFTER))
        starts = sorted({max(0, at - back) for back in PRUNE_BACK} | {0}, reverse=True)  # shortest first
        acts = {0: float(values[at])} if causal else {}
        plans.append({"enc": enc, "at": at, "end": end, "starts": starts, "acts": acts})

    def full(plan: dict) -> float:
        return max(plan["acts"][0], 1e-9)

    def kept(plan: dict) -> int | None:
        for i, start in enumerate(plan["starts"]):
            if start not in plan["acts"]:
                return None
            if plan["acts"][start] >= n2g.KEEP * full(plan):
                return i
        return len(plan["starts"]) - 1

    first_round = [sorted((set(p["starts"][:PRUNE_FIRST]) | {0}) - set(p["acts"]), reverse=True) for p in plans]
    yield from _run_starts(plans, first_round)
    later = [[] if kept(p) is not None else [s for s in p["starts"] if s not in p["acts"]] for p in plans]
    yield from _run_starts(plans, later)
    examples = []
    for plan in plans:
        choice = kept(plan)
        s, enc, at = plan["starts"][choice], plan["enc"], plan["at"]
        examples.append({"ids": enc["ids"][s:plan["end"]], "tokens": enc["tokens"][s:plan["end"]], "at": at - s,
                         "activation": plan["acts"][s]})
    return examples


def _run_starts(plans: list[dict], starts: list[list[int]]) -> Generator[list[list[int]], list[np.ndarray], None]:
    """Ask for the activation at each plan's max token from each of its listed start positions."""
    asked = [(plan, s) for plan, mine in zip(plans, starts) for s in mine]
    if not asked:
        return
    values = yield [plan["enc"]["ids"][s:plan["end"]] for plan, s in asked]
    for (plan, s), v in zip(asked, values):
        plan["acts"][s] = float(v[plan["at"] - s])


def _blank_id(model: Model) -> int:
    tok = model.tokenizer
    for candidate in (tok.mask_token_id, tok.pad_token_id, tok.unk_token_id, tok.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _saliency(model: Model, examples: list[dict]) -> Generator[list[list[int]], list[np.ndarray], list[dict]]:
    """N2G step 2: blank each earlier token in turn; important when the activation drops by 75 %."""
    blank = _blank_id(model)
    batch, owners = [], []
    for e, example in enumerate(examples):
        for i in range(example["at"]):
            ids = list(example["ids"])
            ids[i] = blank
            batch.append(ids)
            owners.append(e)
    values = (yield batch) if batch else []
    dropped: dict[int, list[float]] = {}
    for e, v in zip(owners, values):
        dropped.setdefault(e, []).append(float(v[examples[e]["at"]]))
    for e, example in enumerate(examples):
        marks = n2g.importance(example["activation"], dropped.get(e, []))
        example["important"] = marks + [True] + [False] * (len(example["ids"]) - example["at"] - 1)
    return examples


def _augment(model: Model, examples: list[dict], vectors: WordVectors) -> list[dict]:
    """N2G step 3: swap important tokens (and the activating one) for similar single-token words."""
    variants = []
    for example in examples:
        for i, token in enumerate(example["tokens"]):
            if not example["important"][i] or not is_word_start(token):
                continue
            for word, _ in vectors.neighbours(clean_token(token), SUBSTITUTES):
                replacement = _single_id(model, word, token)
                if replacement is None:
                    continue
                ids, tokens = list(example["ids"]), list(example["tokens"])
                ids[i] = replacement
                tokens[i] = model.tokenizer.convert_ids_to_tokens([replacement])[0]
                variants.append({"ids": ids, "tokens": tokens, "at": example["at"],
                                 "important": example["important"]})
    return variants


REFERENCE_CONTEXTS = 10  # strongest general-text contexts per neuron, held out (the top of its general firing)
HELDOUT_SAMPLE = 200  # random general-text lines: held-out text for every neuron, and the lines the verdict counts
CONCEPT_HELDOUT = 150  # at most this many held-apart probe items per neuron (random, seeded)


def attach_explanations(model: Model, entries: Sequence[tuple[Any, str, Any]], texts_by_set: dict[str, list[str]],
                        general: Iterable[tuple[str, str]], vectors: WordVectors, concept_sets: set[str], *,
                        k: int = 20, max_length: int = 128, batch_size: int = 32, seed: int = 0,
                        executor: Executor | None = None, job: JobState | None = None) -> dict[str, float]:
    """Explain every reported neuron, score it, check it causally and rebuild its polysemanticity verdict.

    Each neuron's graph learns from its top contexts in the probe set it was reported for. It is scored on
    text it never saw: a random sample of general text (``general``: the reference corpus, then any
    ``--corpus``), its strongest general-text contexts, and up to :data:`CONCEPT_HELDOUT` held-apart items of
    its probe set (a seeded draw per set, less the ones it learned from); the random baseline is another
    reported neuron's explanation. ``executor`` streams the general text (sharded, possibly on a Ray cluster;
    ``job`` keeps its finished shards). Returns timings.
    """
    tick = time.perf_counter()
    neurons = sorted({(e.layer, e.neuron) for e, _, _ in entries})
    by_set: dict[str, TopContexts] = {}
    for name in sorted({owner for _, owner, _ in entries}):
        wanted = sorted({(e.layer, e.neuron) for e, owner, _ in entries if owner == name})
        pairs = list(keyed(texts_by_set[name], name))  # in batches of similar token counts: less padding
        plan = batch_plan(texts_by_set[name], batch_size, model=model, max_length=max_length)
        by_set[name] = top_contexts(model, [pairs[i] for rows in plan for i in rows], wanted, k=k,
                                    batch_size=batch_size, max_length=max_length)
    found = (executor or Executor(progress=False)).contexts(
        model, general, neurons, k=REFERENCE_CONTEXTS, sample=HELDOUT_SAMPLE, seed=seed, batch_size=batch_size,
        max_length=max_length, description="explain", job=job)
    reference, sample = found.top, list(dict.fromkeys(found.sample.texts))
    contexts_s = time.perf_counter() - tick

    jobs = []
    for entry, owner, _ in entries:
        state = by_set[owner]
        position = state.neurons.index((entry.layer, entry.neuron))
        jobs.append((entry.layer, entry.neuron, owner, state.contexts(position)))
    general_top = {n: reference.contexts(reference.neurons.index(n)) for n in neurons}
    batch = explain_batch(model, jobs, texts_by_set, sample, general_top, vectors, max_length=max_length,
                          batch_size=batch_size, seed=seed)
    built, forward_s, encoded, index, values, column = (batch.built, batch.forward_s, batch.encoded, batch.index,
                                                       batch.values, batch.column)
    sample_rows = [(encoded[index[t]], t, values[index[t]]) for t in sample if t in index]
    for entry, owner, _ in entries:
        key = (entry.layer, entry.neuron, owner)
        entry.explanation = Explanation.from_dict(dict(built[key].record))
        judged = owner in concept_sets and getattr(entry, "direction", None) == "positive"
        evidence = getattr(entry, "polysemanticity", None)
        if judged and evidence is not None and evidence.threshold is not ABSENT and built[key].top > 0:
            _revise_verdict(entry, evidence, built[key], [(enc, text, v[:, column[key[:2]]])
                                                         for enc, text, v in sample_rows], vectors)
    _link_similar(entries)
    spent = time.perf_counter() - tick - contexts_s
    return {"contexts": contexts_s, "explain": spent, "forward": forward_s,
            "per_neuron": spent / max(len(built), 1)}


@dataclass
class Batch:
    """Explanations of many neurons and the shared held-out pass they were scored on."""

    built: dict[tuple[int, int, str], Built]
    forward_s: float
    encoded: list[dict]
    index: dict[str, int]  # held-out text -> its row in ``encoded`` / ``values``
    values: list[np.ndarray]  # per held-out text: tokens × neurons
    column: dict[tuple[int, int], int]


def explain_batch(model: Model, jobs: Sequence[tuple[int, int, str, Sequence[dict]]],
                  texts_by_set: dict[str, list[str]],
                  sample: Sequence[str], general_top: dict[tuple[int, int], list[dict]], vectors: WordVectors, *,
                  max_length: int = 128, batch_size: int = 32, seed: int = 0) -> Batch:
    """Build, score and causally check the explanation of each job (layer, neuron, probe set, its top
    contexts there). Held out per neuron: the general ``sample``, its ``general_top`` contexts and the items of
    its probe set it did not learn from; all read in one pass for every neuron, the ablations batched across
    neurons. The random baseline is another job's explanation."""
    sample = list(sample)
    common = common_words(sample)
    neurons = sorted({(layer, neuron) for layer, neuron, _, _ in jobs})
    rng = np.random.default_rng(seed)
    # held-apart concept items: one seeded draw per probe set, enough that each neuron keeps CONCEPT_HELDOUT
    # after its own training texts are set aside
    owners = sorted({owner for _, _, owner, _ in jobs})
    learned = max((len(train) for _, _, _, train in jobs), default=0)
    candidates = {}
    for owner in owners:
        pool = list(dict.fromkeys(texts_by_set[owner]))
        keep = min(len(pool), CONCEPT_HELDOUT + learned)
        candidates[owner] = [pool[i] for i in sorted(rng.choice(len(pool), keep, replace=False))] if keep else []

    # every held-out and training text once, each read as deep as the deepest neuron that uses it (the general
    # sample: every neuron; a set's concept items: that set's neurons; a neuron's own contexts: that neuron)
    depth: dict[str, int] = {}

    def used(text_list: Iterable[str], layer: int) -> None:
        for text in text_list:
            depth[text] = max(depth.get(text, -1), layer)

    used(sample, max(layer for layer, _ in neurons))
    for layer, neuron, owner, train in jobs:
        used(candidates[owner], layer)
        used((c["text"] for c in train), layer)
        used((c["text"] for c in general_top[(layer, neuron)]), layer)
    texts = list(depth)
    encoded = context_ids(model, texts, max_length)
    index = {text: i for i, (text, enc) in enumerate(zip(texts, encoded)) if enc["ids"]}
    column = {n: i for i, n in enumerate(neurons)}
    shared = time.perf_counter()
    values: list[np.ndarray] = [np.zeros((0, len(neurons)), np.float32)] * len(texts)
    for deepest in sorted(set(depth.values())):
        rows = [i for i, text in enumerate(texts) if depth[text] == deepest]
        reached = [n for n in neurons if n[0] <= deepest]
        read = neurons_activations(model, reached, [encoded[i]["ids"] or [0] for i in rows],
                                   batch_size=max(batch_size, 64))
        for i, block in zip(rows, read):
            full = np.full((len(block), len(neurons)), np.nan, np.float32)  # deeper neurons: never read here
            full[:, [column[n] for n in reached]] = block
            values[i] = full
    forward_s = time.perf_counter() - shared

    steps: dict[tuple[int, int, str], Steps] = {}
    for layer, neuron, owner, train in jobs:
        if (layer, neuron, owner) not in steps:
            known = {c["text"]: values[index[c["text"]]][:, column[(layer, neuron)]]
                     for c in train if c["text"] in index}
            steps[(layer, neuron, owner)] = explanation_steps(
                model, layer, neuron, train, vectors, common=common, setting=owner, max_length=max_length,
                seed=seed, train_values=known)
    built, variants_s = build_all(model, steps)
    forward_s += variants_s

    keys = sorted(built)
    priority = np.random.default_rng(seed + 1).permutation(len(texts))  # the causal check's context order
    causal_rows: list[tuple[tuple[int, int, str], int, bool]] = []
    for key in keys:
        one = built[key]
        if one.top <= 0 or one.graph is None:
            continue
        layer, neuron, owner = key
        general_texts = list(dict.fromkeys(sample + [c["text"] for c in general_top[(layer, neuron)]]))
        outside = set(general_texts) | one.train_texts
        concept_texts = [t for t in candidates[owner] if t not in outside][:CONCEPT_HELDOUT]
        held = [index[t] for t in general_texts + concept_texts if t in index]
        others = [other for other in keys if other[:2] != key[:2] and built[other].graph is not None]
        other_key = others[int(rng.integers(len(others)))] if others else None
        other = built[other_key] if other_key is not None else None
        scored = score_explanation(one, [encoded[i] for i in held],
                                   [values[i][:, column[(layer, neuron)]] for i in held], other, rng)
        predicted = scored.pop("predicted")
        one.record.update(scored)
        one.record["heldout"] = {"general_texts": sum(t in index for t in general_texts),
                                 "concept_items": sum(t in index for t in concept_texts),
                                 "random_explanation_of": (f"L{other_key[0]}.N{other_key[1]}"
                                                           if other_key is not None else None)}
        causal_rows += [(key, held[i], side) for i, side in _causal_rows(predicted, priority[held])]
    tick_causal = time.perf_counter()
    changes = ablation_output_change(model, [enc["ids"] if enc["ids"] else [0] for enc in encoded],
                                     [(seq, key[0], key[1]) for key, seq, _ in causal_rows], batch_size=batch_size)
    forward_s += time.perf_counter() - tick_causal
    for key in keys:
        mine = [(i, (seq, side)) for i, (k2, seq, side) in enumerate(causal_rows) if k2 == key]
        if built[key].graph is not None and built[key].top > 0:
            built[key].record["causal"] = _causal([row for _, row in mine], changes[[i for i, _ in mine]],
                                                  np.random.default_rng(seed + 7))
    return Batch(built, forward_s, encoded, index, values, column)


def _revise_verdict(entry: Any, evidence: Any, built: Built, lines: list[tuple[dict, str, np.ndarray]],
                    vectors: WordVectors) -> None:
    """Replace the reference-rate verdict with one on the explanation's firing line (the old numbers stay):
    every sampled general line with a token at or above half the neuron's strongest concept activation, and
    whether its explanation (graph, top words, or a word like them) covers that token."""
    top_words = {w.lower() for w in built.record.get("words", [])}
    above = []
    for enc, text, values in lines:
        normalised = np.asarray(values, float) / built.top
        if not len(normalised) or normalised.max() < es.FIRE:
            continue
        at = int(np.argmax(normalised))
        word = _word(enc, at, text)[0]
        vector = vectors.vector(word)
        similar = vector is not None and any(float(vector @ v) >= SIMILAR for v in built.concept_vectors)
        covered = bool(built.graph is not None and built.graph.predict(enc["tokens"], at) >= es.FIRE) \
            or word.lower() in top_words or similar
        window = _window(enc, at, {"text": text, "activation": float(values[at])})
        above.append({"word": word, "window": window["window"], "text": text, "activation": float(values[at]),
                      "covered": covered})
    coherence = built.record.get("coherence")
    label, reasons = firing_line_verdict(
        evidence.other_concepts, above, len(lines), coherent=None if coherence is None else coherence["coherent"],
        function_peaks=built.record["function_words"]["peaks_on_function_words"])
    evidence.extra["previous_verdict"] = evidence.verdict
    evidence.extra["firing_line"] = es.FIRE * built.top
    evidence.extra["general_lines"] = len(lines)
    evidence.extra["general_lines_above"] = len(above)
    evidence.extra["unexplained_contexts"] = [{"token": c["word"], "window": c["window"], "text": c["text"],
                                               "activation": c["activation"]} for c in above if not c["covered"]]
    evidence.verdict, evidence.reasons, evidence.polysemantic = label, reasons, label == POLYSEMANTIC
    entry.polysemantic = label == POLYSEMANTIC


SIMILAR_GRAPHS = 0.8  # graphs sharing this share of firing patterns are cross-linked


def _link_similar(entries: Sequence[tuple[Any, str, Any]]) -> None:
    graphs = {}
    for entry, _, _ in entries:
        explanation = getattr(entry, "explanation", None)
        if explanation is not None and explanation.graph is not ABSENT and entry.name not in graphs:
            graphs[entry.name] = n2g.Graph.from_list(explanation.graph)
    for entry, _, _ in entries:
        if entry.name in graphs:
            entry.explanation.similar_neurons = sorted(
                name for name, graph in graphs.items()
                if name != entry.name and n2g.similarity(graphs[entry.name], graph) >= SIMILAR_GRAPHS)


def explain_one(model: Model, layer: int, neuron: int, general: Iterable[tuple[str, str]], vectors: WordVectors, *,
                k: int = 20, max_length: int = 128, batch_size: int = 32, seed: int = 0,
                executor: Executor | None = None, job: JobState | None = None) -> dict[str, Any]:
    """One-off explanation from general text alone: the neuron's top 2k contexts, alternate ranks to learn
    from and to score on (plus a random sample of lines, for tokens that do not fire). ``executor`` streams
    the text (sharded, possibly on a Ray cluster; ``job`` keeps its finished shards)."""
    if not 0 <= layer < model.n_layers or not 0 <= neuron < model.neurons_per_layer:
        raise AuditInputError(f"--neuron: L{layer}.N{neuron} is outside the model ({model.n_layers} layers × "
                              f"{model.neurons_per_layer} neurons)")
    found = (executor or Executor(progress=False)).contexts(
        model, general, [(layer, neuron)], k=2 * k, sample=HELDOUT_SAMPLE, seed=seed, batch_size=batch_size,
        max_length=max_length, description="explain", job=job)
    state = found.top
    contexts = state.contexts(0)
    train, held = contexts[::2], [c["text"] for c in contexts[1::2]]
    record = explain_neuron(model, layer, neuron, train, list(dict.fromkeys(held + found.sample.texts)), vectors,
                            max_length=max_length, seed=seed, common=common_words(found.sample.texts),
                            setting="general-text")
    record["texts_seen"] = state.seen
    return record
