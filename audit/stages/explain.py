"""Explanations of single neurons: method A (top tokens, coherence, in-context substitution, description)
and an N2G graph with its held-out fidelity. All forward passes are batched variants of a few contexts
(one pass each for pruning, saliency, substitution/augmentation and held-out scoring), stopped at the
neuron's layer.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

from ..analysis import explain as method_a
from ..errors import AuditInputError
from ..analysis import n2g
from ..analysis.polysemanticity import POLYSEMANTIC, SIMILAR, explained_verdict
from ..analysis.topk import TopContexts
from ..execution.executor import Executor
from ..execution.state import JobState
from ..model.contexts import keyed, top_contexts
from ..model.loading import Model
from ..results.contract import ABSENT, Explanation
from ..model.similarity import WordVectors, clean_token, is_word_start
from ..model.variants import context_ids, neuron_activations

PRUNE_BACK = (0, 1, 2, 3, 5, 8, 12, 20)  # candidate context lengths before the activating token
AFTER = 2  # tokens kept after the activating token (encoders read both ways)
SUBSTITUTES = 5  # per word, as published
TOP_TOKENS_TESTED = 3  # method A substitutes the neuron's strongest distinct tokens
WINDOW = 3  # words of context either side, as published


def explain_neuron(model: Model, layer: int, neuron: int, train: Sequence[dict[str, Any]],
                   heldout: Sequence[str], vectors: WordVectors, *, max_length: int = 128,
                   seed: int = 0) -> dict[str, Any]:
    """Explain neuron (layer, neuron) from its top ``train`` contexts (``text``, ``position``, ``activation``)
    and score its graph on ``heldout`` texts. Returns the explanation record's fields, with timings."""
    clock = {"forward": 0.0}
    started = time.perf_counter()

    def run(sequences: list[list[int]]) -> list[np.ndarray]:
        tick = time.perf_counter()
        try:
            return neuron_activations(model, layer, neuron, sequences) if sequences else []
        finally:
            clock["forward"] += time.perf_counter() - tick

    contexts = [c for c in train if c["activation"] > 0]
    encoded = context_ids(model, [c["text"] for c in contexts], max_length)
    pieces = [(enc, min(c["position"], len(enc["ids"]) - 1), c) for enc, c in zip(encoded, contexts) if enc["ids"]]
    top = max((c["activation"] for _, _, c in pieces), default=0.0)
    words = [_word(enc, at, c["text"])[0] for enc, at, c in pieces]
    scores = method_a.token_scores(words, [c["activation"] for _, _, c in pieces])
    record: dict[str, Any] = {"top_activation": float(top), "top_tokens": scores,
                              "backend": vectors.name, "contexts": [_window(enc, at, c) for enc, at, c in pieces]}
    embedded = [v for v in (vectors.vector(row["token"]) for row in scores) if v is not None]
    rng = np.random.default_rng(seed)
    coherence = method_a.coherence(np.stack(embedded) if len(embedded) >= 2 else None,
                                   lambda n: vectors.random_vectors(n, rng), floor=vectors.coherent_floor)
    record["coherence"] = coherence
    if top <= 0:
        record.update(substitutions=[], substitution_summary=method_a.substitution_summary([], 0.0),
                      description=method_a.describe([], None, {"n": 0}))
        return record

    # method A substitutions and N2G augmentation share one batch of variants
    subs = _substitution_variants(model, pieces, scores, vectors)
    pruned = _prune(pieces, run)
    salient = _saliency(model, pruned, run)
    augmented = _augment(model, salient, vectors)
    outcomes = run([v["ids"] for v in subs] + [v["ids"] for v in augmented])
    rows = []
    for variant, values in zip(subs, outcomes[:len(subs)]):
        span = values[variant["at"]:variant["at"] + variant["width"]]
        rows.append({"token": variant["token"], "substitute": variant["substitute"],
                     "similarity": round(variant["similarity"], 4), "original": variant["original"],
                     "activation": float(span.max()), "context": variant["context"]})
    record["substitutions"] = rows
    record["substitution_summary"] = method_a.substitution_summary(rows, top)
    record["description"] = method_a.describe(scores, coherence, record["substitution_summary"])

    train_values = run([enc["ids"] for enc, _, _ in pieces])
    baselines = n2g.Baselines()
    singles: dict[str, list[float]] = {}  # every training token's activations: the graph's depth-1 patterns
    for (enc, _, _), values in zip(pieces, train_values):
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
    held = context_ids(model, list(heldout), max_length)
    held = [h for h in held if h["ids"]]
    held_values = run([h["ids"] for h in held])
    record["graph"] = graph.to_list()
    record["fidelity"] = n2g.fidelity(graph, baselines, [(h["tokens"], v / top) for h, v in zip(held, held_values)])
    record["fidelity_texts"] = len(held)
    record["timings_s"] = {"total": time.perf_counter() - started, "forward": clock["forward"]}
    return record


def _word(enc: dict, at: int, text: str) -> tuple[str, int, int]:
    """The whole word holding token ``at`` (letters and digits around its span in ``text``) and the range of
    tokens that spell it, so 'rec ##om ##mend ##ation' is read, shown and substituted as one word."""
    start, end = enc["spans"][at]
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
    lo, hi = max(0, at - WINDOW), min(len(enc["tokens"]), at + WINDOW + 1)
    return {"text": context["text"], "key": context.get("key"), "activation": float(context["activation"]),
            "token": clean_token(enc["tokens"][at]),
            "window": " ".join(clean_token(t) for t in enc["tokens"][lo:hi])}


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
            variants.append({"token": row["token"], "substitute": word, "similarity": score, "original":
                             float(c["activation"]), "ids": enc["ids"][:first] + list(ids) + enc["ids"][last:],
                             "at": first, "width": len(ids), "context": _window(enc, at, c)["window"]})
    return variants


def _prune(pieces: list, run) -> list[dict]:
    """N2G step 1: the shortest left-truncated suffix ending at the max token (plus ``AFTER`` tokens) that
    keeps half the activation."""
    batch, spans = [], []
    for enc, at, c in pieces:
        end = min(len(enc["ids"]), at + 1 + AFTER)
        starts = sorted({max(0, at - back) for back in PRUNE_BACK} | {0}, reverse=True)
        spans.append((enc, at, c, end, starts, len(batch)))
        batch += [enc["ids"][s:end] for s in starts]
    values = run(batch)
    examples = []
    for enc, at, c, end, starts, first in spans:
        acts = [float(values[first + i][at - s]) for i, s in enumerate(starts)]
        full = max(acts[-1], 1e-9)
        choice = n2g.prune_start(acts, full)
        s = starts[choice]
        examples.append({"ids": enc["ids"][s:end], "tokens": enc["tokens"][s:end], "at": at - s,
                         "activation": acts[choice]})
    return examples


def _blank_id(model: Model) -> int:
    tok = model.tokenizer
    for candidate in (tok.mask_token_id, tok.pad_token_id, tok.unk_token_id, tok.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _saliency(model: Model, examples: list[dict], run) -> list[dict]:
    """N2G step 2: blank each earlier token in turn; important when the activation drops by 75 %."""
    blank = _blank_id(model)
    batch, owners = [], []
    for e, example in enumerate(examples):
        for i in range(example["at"]):
            ids = list(example["ids"])
            ids[i] = blank
            batch.append(ids)
            owners.append(e)
    values = run(batch)
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


REFERENCE_CONTEXTS = 10  # strongest general-text contexts examined per neuron (as the verdict counts them)
HELDOUT_SAMPLE = 40  # plus this many random general-text lines, so held-out text also holds non-firing tokens


def attach_explanations(model: Model, entries: Sequence[tuple[Any, str, Any]], texts_by_set: dict[str, list[str]],
                        general: Iterable[tuple[str, str]], vectors: WordVectors, concept_sets: set[str], *,
                        k: int = 20, max_length: int = 128, batch_size: int = 32, seed: int = 0,
                        executor: Executor | None = None, job: JobState | None = None) -> dict[str, float]:
    """Explain every reported neuron and rebuild its polysemanticity verdict on that explanation.

    Each neuron's graph learns from its top contexts in the probe set it was reported for, and is scored on
    general text (``general``: the reference corpus, then any ``--corpus``) it never saw: its strongest
    general-text contexts and a random sample of lines. ``executor`` streams the general text (sharded,
    possibly on a Ray cluster; ``job`` keeps its finished shards). Returns timings.
    """
    tick = time.perf_counter()
    neurons = sorted({(e.layer, e.neuron) for e, _, _ in entries})
    by_set: dict[str, TopContexts] = {}
    for name in sorted({owner for _, owner, _ in entries}):
        wanted = sorted({(e.layer, e.neuron) for e, owner, _ in entries if owner == name})
        by_set[name] = top_contexts(model, keyed(texts_by_set[name], name), wanted, k=k, batch_size=batch_size,
                                    max_length=max_length)
    found = (executor or Executor(progress=False)).contexts(
        model, general, neurons, k=REFERENCE_CONTEXTS, sample=HELDOUT_SAMPLE, seed=seed, batch_size=batch_size,
        max_length=max_length, description="explain", job=job)
    reference, sample = found.top, found.sample.texts
    contexts_s = time.perf_counter() - tick
    records: dict[tuple[int, int, str], dict] = {}
    forward_s = 0.0
    for entry, owner, _ in entries:
        key = (entry.layer, entry.neuron, owner)
        if key not in records:
            state = by_set[owner]
            general_top = reference.contexts(reference.neurons.index((entry.layer, entry.neuron)))
            heldout = list(dict.fromkeys([c["text"] for c in general_top] + sample))
            records[key] = explain_neuron(model, entry.layer, entry.neuron,
                                          state.contexts(state.neurons.index((entry.layer, entry.neuron))),
                                          heldout, vectors, max_length=max_length, seed=seed)
            records[key]["general_top"] = general_top
        record = dict(records[key])
        general_top = record.pop("general_top")
        spent = record.pop("timings_s", None)  # run timings live in run.timings_s, not in the (reproducible) results
        if spent is not None and records[key].get("counted") is None:
            records[key]["counted"] = True
            forward_s += spent["forward"]
        record.pop("counted", None)
        entry.explanation = Explanation.from_dict(record)
        judged = owner in concept_sets and getattr(entry, "direction", None) == "positive"
        evidence = getattr(entry, "polysemanticity", None)
        if judged and evidence is not None and evidence.threshold is not ABSENT:
            _revise_verdict(model, entry, evidence, general_top, record, vectors, max_length)
    _link_similar(entries)
    spent = time.perf_counter() - tick - contexts_s
    return {"contexts": contexts_s, "explain": spent, "forward": forward_s,
            "per_neuron": spent / max(len(records), 1)}


def _revise_verdict(model: Model, entry: Any, evidence: Any, general_top: list[dict], record: dict,
                    vectors: WordVectors, max_length: int) -> None:
    """Replace the reference-rate verdict with one built on the explanation (the old numbers stay)."""
    graph = n2g.Graph.from_list(record.get("graph", []))
    concept = [vectors.vector(row["token"]) for row in record["top_tokens"]]
    concept = [v for v in concept if v is not None]
    strong = [c for c in general_top if c["activation"] >= evidence.threshold]
    encoded = context_ids(model, [c["text"] for c in strong], max_length)
    uncovered = []
    for c, enc in zip(strong, encoded):
        if not enc["ids"]:
            continue
        at = min(c["position"], len(enc["ids"]) - 1)
        token = clean_token(enc["tokens"][at])
        vector = vectors.vector(token)
        similar = vector is not None and any(float(vector @ v) >= SIMILAR for v in concept)
        if graph.predict(enc["tokens"], at) < n2g.FIRE and not similar:
            uncovered.append({"token": token, "window": _window(enc, at, c)["window"], "text": c["text"],
                              "activation": c["activation"]})
    label, reasons = explained_verdict(evidence.other_concepts, strong, uncovered, examined=len(general_top))
    evidence.extra["previous_verdict"] = evidence.verdict
    evidence.extra["unexplained_contexts"] = uncovered
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
                            max_length=max_length, seed=seed)
    record["texts_seen"] = state.seen
    return record
