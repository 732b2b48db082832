"""The field's explanation scores, with the explanation's own predictor as the simulator (offline,
deterministic), 95 % bootstrap intervals and one-line readings. Pure functions over arrays.

- **detection** (Paulo et al. 2024; EleutherAI delphi): balanced accuracy (TPR + TNR) / 2 of "this context
  fires" over held-out contexts sampled as delphi samples them: the activating contexts, strongest first,
  cut into 10 equal quantiles with ``n_test // 10`` drawn from each, plus ``n_non_activating`` contexts that do
  not fire.
- **fuzzing**: the same balanced accuracy for "the highlighted tokens are the ones that fire": activating
  contexts highlighted on their firing tokens (correct) and non-activating ones highlighted on
  ceil(mean firing tokens per activating context) random tokens (incorrect), as delphi's default fuzzing.
- **simulation** (Bills et al. 2023): Pearson correlation between predicted and real per-token activations
  over the detection sample's tokens.
- **f1** (Foote et al. 2023): token-level F1 of firing over every held-out token.

"Fires" is one line everywhere: a normalised activation (share of the neuron's strongest training activation)
of at least :data:`FIRE`. Where delphi prints 0 for a rate with no examples, a score here is undefined
(``None`` with a reason): 0 would read as a measured failure.
"""

from __future__ import annotations

from math import ceil
from typing import Any, Callable, Sequence

import numpy as np

FIRE = 0.5  # a token fires at this share of the neuron's maximum (N2G's line, used for every verdict)
N_QUANTILES = 10  # delphi SamplerConfig.n_quantiles
N_TEST = 50  # delphi SamplerConfig.n_examples_test: activating contexts drawn across the quantiles
N_NON_ACTIVATING = 50  # delphi ConstructorConfig.n_non_activating
RESAMPLES = 1000
SCORES = ("detection", "fuzzing", "simulation", "f1")

NO_FIRING = "no held-out context reaches the firing line (half the neuron's strongest activation)"
ALL_FIRING = "every held-out context fires, so there is nothing to tell it from"
FLAT_PREDICTION = "the explanation predicts the same activation on every held-out token"
FLAT_ACTIVATION = "the neuron's activation is the same on every held-out token"
NO_OTHER = "no other neuron was explained"


def balanced_accuracy(predicted: Sequence[bool], actual: Sequence[bool]) -> float | None:
    """(TPR + TNR) / 2 as delphi computes it; None when either class is empty (delphi counts that rate as 0)."""
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    pos, neg = int(actual.sum()), int((~actual).sum())
    if not pos or not neg:
        return None
    return float(((predicted & actual).sum() / pos + (~predicted & ~actual).sum() / neg) / 2)


def quantile_sample(maxima: np.ndarray, rng: np.random.Generator, *, n_quantiles: int = N_QUANTILES,
                    n_test: int = N_TEST, n_non_activating: int = N_NON_ACTIVATING,
                    fire: float = FIRE) -> tuple[np.ndarray, np.ndarray]:
    """delphi's test sample: indices of activating contexts (max ≥ ``fire``) drawn ``n_test // n_quantiles``
    per quantile of the strongest-first order (a quantile smaller than that is taken whole), then up to
    ``n_non_activating`` random non-activating ones. Returns (indices, quantile per index; -1 non-activating).
    With fewer activating contexts than quantiles, each is its own quantile (delphi would skip the latent)."""
    maxima = np.asarray(maxima, float)
    active = np.flatnonzero(maxima >= fire)
    active = active[np.argsort(-maxima[active], kind="stable")]
    size = max(1, len(active) // n_quantiles)
    per = n_test // n_quantiles
    chosen, labels = [], []
    for q in range(min(n_quantiles, len(active))):
        part = active[q * size:(q + 1) * size]
        picked = part if len(part) <= per else rng.choice(part, per, replace=False)
        chosen += [int(i) for i in picked]
        labels += [q] * len(picked)
    quiet = np.flatnonzero(maxima < fire)
    picked = quiet if len(quiet) <= n_non_activating else rng.choice(quiet, n_non_activating, replace=False)
    chosen += [int(i) for i in picked]
    labels += [-1] * len(picked)
    return np.array(chosen, int), np.array(labels, int)


def fuzz_highlights(actual: Sequence[np.ndarray], sample: np.ndarray, rng: np.random.Generator, *,
                    fire: float = FIRE) -> list[tuple[int, np.ndarray, bool]]:
    """delphi's default fuzzing items over the sampled contexts: (context, highlighted token indices, correct).
    Activating contexts highlight their firing tokens (correct); non-activating ones highlight
    ceil(mean firing tokens per activating context) random tokens below the line (incorrect)."""
    active = [i for i in sample if np.max(actual[i]) >= fire]
    n_incorrect = ceil(np.mean([(actual[i] >= fire).sum() for i in active])) if active else 1
    items = []
    for i in sample:
        values = actual[i]
        if np.max(values) >= fire:
            items.append((int(i), np.flatnonzero(values >= fire), True))
        else:
            below = np.flatnonzero(values < fire)
            items.append((int(i), rng.choice(below, min(n_incorrect, len(below)), replace=False), False))
    return items


# --- sufficient statistics per unit (context), so a bootstrap is a matrix product --------------------

def _ba_stats(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per item: [positive, negative, true positive, true negative]."""
    return np.stack([actual, ~actual, predicted & actual, ~predicted & ~actual], axis=1).astype(float)


def _ba(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (s[..., 2] / s[..., 0] + s[..., 3] / s[..., 1]) / 2
    return np.where((s[..., 0] > 0) & (s[..., 1] > 0), value, np.nan)


def _per_context(values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All contexts' values end to end and each context's start offset (contexts must be non-empty)."""
    lengths = np.array([len(v) for v in values], int)
    flat = np.concatenate([np.asarray(v, float) for v in values]) if len(values) else np.zeros(0)
    return flat, np.r_[0, np.cumsum(lengths)[:-1]] if len(values) else np.zeros(0, int)


def _sums(flat: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(flat, starts) if len(starts) else np.zeros(0)


def _corr_stats(predicted: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> np.ndarray:
    """Per context: [n, Σx, Σy, Σx², Σy², Σxy] of (predicted x, actual y)."""
    if not len(predicted):
        return np.zeros((0, 6))
    x, starts = _per_context(predicted)
    y, _ = _per_context(actual)
    n = np.array([len(v) for v in predicted], float)
    return np.stack([n, _sums(x, starts), _sums(y, starts), _sums(x * x, starts), _sums(y * y, starts),
                     _sums(x * y, starts)], axis=1)


def _corr(s: np.ndarray) -> np.ndarray:
    n, sx, sy, sxx, syy, sxy = (s[..., i] for i in range(6))
    with np.errstate(invalid="ignore", divide="ignore"):
        vx, vy = sxx - sx * sx / n, syy - sy * sy / n
        value = (sxy - sx * sy / n) / np.sqrt(vx * vy)
    scale = np.maximum(np.abs(sxx), 1.0) * 1e-12
    return np.where((vx > scale) & (vy > np.maximum(np.abs(syy), 1.0) * 1e-12), value, np.nan)


def _f1_stats(predicted: Sequence[np.ndarray], actual: Sequence[np.ndarray], fire: float) -> np.ndarray:
    """Per context: [true positives, false positives, false negatives] of token firing."""
    if not len(predicted):
        return np.zeros((0, 3))
    x, starts = _per_context(predicted)
    y, _ = _per_context(actual)
    p, a = x >= fire, y >= fire
    return np.stack([_sums((p & a).astype(float), starts), _sums((p & ~a).astype(float), starts),
                     _sums((~p & a).astype(float), starts)], axis=1)


def _f1(s: np.ndarray) -> np.ndarray:
    tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 2 * tp / (2 * tp + fp + fn)
    return np.where(tp + fn > 0, value, np.nan)


def resample_counts(n: int, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """(resamples × n) counts of each unit in bootstrap resamples of ``n`` units with replacement."""
    if not n:
        return np.zeros((resamples, 0))
    flat = np.repeat(np.arange(resamples) * n, n) + rng.integers(0, n, resamples * n)
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def bootstrap(stats: np.ndarray, score: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, *,
              resamples: int = RESAMPLES, counts: np.ndarray | None = None) -> tuple[float | None, list[float] | None]:
    """The score of the summed per-unit ``stats`` and its 95 % percentile interval over ``resamples``
    resamples of the units with replacement (resamples where the score is undefined are dropped). ``counts``
    (from :func:`resample_counts`) lets several predictors share the same resamples."""
    if not len(stats):
        return None, None
    value = float(score(stats.sum(axis=0)))
    if not np.isfinite(value):
        return None, None
    counts = resample_counts(len(stats), rng, resamples) if counts is None else counts
    samples = score(counts @ stats)
    samples = samples[np.isfinite(samples)]
    ci = [float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))] if len(samples) else None
    return value, ci


def _undefined_reason(kind: str, actual_any: bool, flat_activation: bool) -> str:
    if kind in ("detection", "fuzzing"):
        return NO_FIRING if not actual_any else ALL_FIRING
    if kind == "simulation":
        return FLAT_ACTIVATION if flat_activation else FLAT_PREDICTION
    return NO_FIRING


def score_predictor(predicted: Sequence[np.ndarray], actual: Sequence[np.ndarray], sample: np.ndarray,
                    fuzz: list[tuple[int, np.ndarray, bool]], rng: np.random.Generator, *,
                    fire: float = FIRE, resamples: int = RESAMPLES,
                    counts: dict[int, np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """The four scores of one predictor (per-token predicted normalised activations per context) against
    the real ones, on a shared detection ``sample`` and shared ``fuzz`` items. ``counts``: shared bootstrap
    resamples keyed by the number of units."""
    counts = {} if counts is None else counts
    out: dict[str, dict[str, Any]] = {}
    fires = np.array([np.max(a) >= fire for a in actual]) if len(actual) else np.zeros(0, bool)
    predicted_fires = np.array([np.max(p) >= fire if len(p) else False for p in predicted])
    det = _ba_stats(predicted_fires[sample], fires[sample]) if len(sample) else np.zeros((0, 4))
    fuzz_pred = np.array([np.mean(np.asarray(predicted[i])[h] >= fire) >= 0.5 if len(h) else False
                          for i, h, _ in fuzz], bool)
    fuzz_true = np.array([c for _, _, c in fuzz], bool)
    fz = _ba_stats(fuzz_pred, fuzz_true) if fuzz else np.zeros((0, 4))
    sim = _corr_stats([predicted[i] for i in sample], [actual[i] for i in sample])
    f1 = _f1_stats(predicted, actual, fire)
    flat_act = bool(len(sample)) and np.ptp(np.concatenate([np.asarray(actual[i], float) for i in sample])) == 0
    for kind, stats, fn in (("detection", det, _ba), ("fuzzing", fz, _ba), ("simulation", sim, _corr),
                            ("f1", f1, _f1)):
        if len(stats) not in counts:
            counts[len(stats)] = resample_counts(len(stats), rng, resamples)
        value, ci = bootstrap(stats, fn, rng, resamples=resamples, counts=counts[len(stats)])
        row: dict[str, Any] = {"value": value, "ci": ci}
        if value is None:
            row["reason"] = _undefined_reason(kind, bool(fires.any()), flat_act)
        out[kind] = row
    return out


def explanation_scores(actual: Sequence[np.ndarray], predictors: dict[str, Sequence[np.ndarray] | None],
                       rng: np.random.Generator, *, fire: float = FIRE,
                       resamples: int = RESAMPLES) -> dict[str, dict[str, Any]]:
    """Per score, the explanation's value and CI with both baselines and a one-line reading.

    ``actual``: real normalised activations per held-out context; ``predictors``: ``explanation``,
    ``token_lookup`` and ``random_explanation`` (None when no other neuron's explanation exists), each
    predicted normalised activations per context. All predictors are scored on the same sample."""
    actual = [np.asarray(a, float) for a in actual]
    maxima = np.array([a.max() if len(a) else -np.inf for a in actual])
    sample, _ = quantile_sample(maxima, rng, fire=fire)
    fuzz = fuzz_highlights(actual, sample, rng, fire=fire)
    counts: dict[int, np.ndarray] = {}  # every predictor is bootstrapped on the same resamples
    scored = {name: (score_predictor(p, actual, sample, fuzz, rng, fire=fire, resamples=resamples, counts=counts)
                     if p is not None else None) for name, p in predictors.items()}
    n_active = int((maxima[sample] >= fire).sum()) if len(sample) else 0
    result = {}
    for kind in SCORES:
        row = dict(scored["explanation"][kind])
        row["baselines"] = {}
        for name in ("token_lookup", "random_explanation"):
            base = scored.get(name)
            row["baselines"][name] = ({"value": None, "ci": None, "reason": NO_OTHER} if base is None
                                      else base[kind])
        row["n"] = {"contexts": int(len(sample)), "activating": n_active, "tokens": int(sum(len(a) for a in actual))}
        row["versus_token_lookup"] = versus(row.get("value"), row.get("ci"), row["baselines"]["token_lookup"])
        row["reading"] = reading(kind, row)
        result[kind] = row
    return result


_WHAT = {"detection": "tells held-out contexts where it fires from those where it does not",
         "fuzzing": "tells its firing tokens from random tokens",
         "simulation": "predicted activations correlate with the real ones",
         "f1": "token-level F1 of firing"}


def versus(value: float | None, ci: list[float] | None, base: dict[str, Any]) -> str:
    """"better" / "worse" when the 95 % CI excludes the baseline's score, "same" when it does not (or has no
    CI), "undefined" when either score is."""
    other = base.get("value")
    if value is None or other is None:
        return "undefined"
    if ci is not None and ci[0] > other:
        return "better"
    if ci is not None and ci[1] < other:
        return "worse"
    return "same"


def _compare(value: float, ci: list[float] | None, base: dict[str, Any], name: str) -> str:
    verdict = versus(value, ci, base)
    if verdict == "undefined":
        return f"{name}: undefined"
    other = base["value"]
    return {"better": f"better than {name} ({other:.2f})", "worse": f"worse than {name} ({other:.2f})",
            "same": f"{name} does as well ({other:.2f})"}[verdict]


def reading(kind: str, row: dict[str, Any]) -> str:
    """One line of plain English, e.g. "predicts where it fires in 8 of 10 held-out cases; token lookup
    does as well (0.79)"."""
    value, ci = row.get("value"), row.get("ci")
    if value is None:
        return f"undefined: {row.get('reason', 'not measured')}"
    if kind in ("detection", "fuzzing"):
        head = f"right in {round(10 * value)} of 10 balanced held-out cases ({_WHAT[kind]})"
    elif kind == "simulation":
        head = f"{_WHAT[kind]} with r = {value:.2f}"
    else:
        head = f"{_WHAT[kind]} {value:.2f}"
    base = row.get("baselines", {})
    parts = [_compare(value, ci, base["token_lookup"], "token lookup")] if "token_lookup" in base else []
    if base.get("random_explanation", {}).get("value") is not None:
        parts.append(_compare(value, ci, base["random_explanation"], "a random other neuron's explanation"))
    return head + ("; " + "; ".join(parts) if parts else "")


def causal_efficacy(firing: Sequence[float], quiet: Sequence[float], rng: np.random.Generator, *,
                    resamples: int = RESAMPLES, minimum: int = 3) -> dict[str, Any]:
    """Output change when the neuron is ablated, on held-out contexts where its explanation predicts firing
    (``firing``) and where it does not (``quiet``); each value is one context's clean-vs-ablated change.
    Supported when the 95 % bootstrap interval of the difference of means lies above zero."""
    firing, quiet = np.asarray(firing, float), np.asarray(quiet, float)
    row: dict[str, Any] = {"n_firing": int(len(firing)), "n_not_firing": int(len(quiet)),
                           "effect_firing": float(firing.mean()) if len(firing) else None,
                           "effect_not_firing": float(quiet.mean()) if len(quiet) else None}
    if len(firing) < minimum or len(quiet) < minimum:
        which = "fire" if len(firing) < minimum else "stay quiet"
        row.update(difference=None, ci=None, supported=None,
                   reason=f"fewer than {minimum} held-out contexts where the explanation predicts it would {which}")
        row["reading"] = f"causal efficacy not measured: {row['reason']}"
        return row
    difference = float(firing.mean() - quiet.mean())
    a = firing[rng.integers(0, len(firing), (resamples, len(firing)))].mean(axis=1)
    b = quiet[rng.integers(0, len(quiet), (resamples, len(quiet)))].mean(axis=1)
    ci = [float(np.percentile(a - b, 2.5)), float(np.percentile(a - b, 97.5))]
    supported = ci[0] > 0
    ratio = f" ({firing.mean() / quiet.mean():.1f}× the change)" if quiet.mean() > 0 else ""
    row.update(difference=difference, ci=ci, supported=supported,
               reading=(f"ablating it changes the output more where the explanation predicts firing{ratio}"
                        if supported else "not causally supported: ablating it changes the output no more where "
                                          "the explanation predicts firing than where it does not"))
    return row
