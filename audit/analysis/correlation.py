"""Neuron-to-neuron correlation between two models, as a small mergeable state (Gurnee et al. 2024).

:class:`CorrelationState` keeps running float64 sums over samples (tokens, or texts when the two models
tokenize differently): n, Σx, Σx² per neuron of model A, Σy, Σy² per neuron of model B, and Σxyᵀ for each
compared layer pair — memory bounded by neurons_A × neurons_B, never by the number of samples. A second,
smaller set of sums over a deterministic subsample of the samples (every ``stride``-th token of a text) keeps
each side's Gram matrix Σxxᵀ, which is what the rotation baseline needs: rotating B's basis by R gives
Σxy'ᵀ = Σxyᵀ·Rᵀ (from all samples) and Σy'² = diag(R·Σyyᵀ·Rᵀ) without a second pass.

All sums are plain sums, so :meth:`CorrelationState.merge` is addition (associative and commutative; two
states over disjoint shards add up to the state over the whole corpus, up to float rounding), and
:meth:`to_arrays` / :meth:`from_arrays` move a state losslessly across processes. Each batch is centred on
its own mean before its product, then its mean is added back in float64 (the shifted-data formula), so
rounding scales with the spread of the activations rather than their mean. The mean terms n·x̄·ȳᵀ of many
batches are added together as one product (:meth:`_Sums.settle`), not one outer product per batch.

A state has a ``precision``: ``float32`` multiplies the centred float32 values; ``bfloat16`` first rounds
them to bfloat16 (8 significant bits), then multiplies with float32 accumulation — two to four times faster
where the CPU has bfloat16 units. The rounding is applied to the samples themselves, before any of their
sums, so every sum describes the same rounded samples (a neuron against an exact copy still gives r = 1);
:class:`Products` is the product engine, and a faster engine with the same rounding may replace it. Each
product runs on one thread (several at once on threads of our own), because a product split across
threads changes its bits with their number.
"""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import AuditInputError

PERSISTENCE_THRESHOLD = 0.5  # excess correlation above which a neuron counts as persisting (Gurnee et al. 2024)
FORMAT = "neuron-audit/correlation-state/2"


SETTLE_EVERY = 64  # batches whose mean terms wait before being added as one product
T = TypeVar("T")
R = TypeVar("R")


def _moments(count: int, mean: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σx and Σx² per column in float64, from Σ of the squares of the values centred on ``mean`` rounded to
    float32 (no cancellation in the squares; the rounding of the mean is accounted for exactly)."""
    shift = mean.astype(np.float32).astype(np.float64)
    return mean * count, squares + 2 * shift * count * (mean - shift) + count * shift * shift


_local = threading.local()
_pool: ThreadPoolExecutor | None = None


PRECISIONS = ("float32", "bfloat16")


def round_bfloat16(values: np.ndarray) -> None:
    """Round float32 ``values`` in place to the nearest bfloat16 (ties to even), kept as float32."""
    if values.dtype != np.float32:
        raise ValueError(f"round_bfloat16: expected float32 values, got {values.dtype}")
    bits = values.view(np.uint32)
    bits += np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    bits &= np.uint32(0xFFFF0000)


class Products:
    """The product engine: ``multiply`` writes ``leftᵀ·right`` (float32) on the calling thread only; ``round``
    rounds samples to the engine's precision. This one is NumPy's BLAS held to one thread per product."""

    def __init__(self, precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise AuditInputError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision

    def centre(self, values: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write ``values`` minus their column means (as float32), rounded to the engine's precision, to ``out``
        (which may be ``values``); returns the means and the float64 Σ of the squares of what was written."""
        mean = values.mean(0, dtype=np.float64)
        np.subtract(values, mean.astype(np.float32), out=out)
        if self.precision == "bfloat16":
            round_bfloat16(out)
        return mean, np.einsum("ij,ij->j", out, out, dtype=np.float64)

    @contextmanager
    def session(self) -> Iterator[None]:
        """Around a round of products on several threads: one BLAS thread each (OpenBLAS's setting is global)."""
        with threadpool_limits(limits=1, user_api="blas"):
            yield

    def multiply(self, left: np.ndarray, right: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.matmul(left.T, right, out=out)


def _threads() -> int:
    """Threads for the products: OMP_NUM_THREADS when set (Ray gives each worker its CPUs), else the CPUs."""
    setting = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(setting)) if setting.isdigit() else max(1, len(os.sched_getaffinity(0)))


def _parallel(function: Callable[[T], R], items: Sequence[T], products: Products) -> list[R]:
    """``function`` over ``items`` on threads of our own (never the caller's: the engine may set per-thread
    state there), inside one ``products.session()``."""
    global _pool
    threads = min(_threads(), len(items))
    if _pool is None or _pool._max_workers < threads:
        _pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="correlation")
    with products.session():
        return list(_pool.map(function, items))


def _accumulate(task: tuple[np.ndarray, np.ndarray, np.ndarray], products: Products) -> None:
    """``block += leftᵀ·right``: a float32 product (one thread) added to a float64 block."""
    block, left, right = task
    scratch = getattr(_local, "scratch", None)
    if scratch is None or scratch.shape != block.shape:
        scratch = _local.scratch = np.empty(block.shape, np.float32)
    np.add(block, products.multiply(left, right, scratch), out=block)


@dataclass
class _Sums:
    """Running sums over one set of samples; ``gram`` only for the baseline subsample. ``pending`` holds the
    (count, means of A, means of B) of batches whose n·x̄·ȳᵀ terms are not yet in the product sums."""

    n: int
    sx: dict[int, np.ndarray]
    sxx: dict[int, np.ndarray]
    sy: dict[int, np.ndarray]
    syy: dict[int, np.ndarray]
    sxy: dict[tuple[int, int], np.ndarray]
    gxx: dict[int, np.ndarray] | None = None
    gyy: dict[int, np.ndarray] | None = None
    pending: list[tuple[int, dict[int, np.ndarray], dict[int, np.ndarray]]] = field(default_factory=list)
    workspace: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def zeros(cls, pairs: Sequence[tuple[int, int]], width_a: int, width_b: int, *, gram: bool) -> _Sums:
        """Sums for ``pairs``: the cross products (``gram=False``) or each side's Gram matrix (``gram=True``)."""
        layers_a, layers_b = sorted({a for a, _ in pairs}), sorted({b for _, b in pairs})
        return cls(n=0, sx={a: np.zeros(width_a) for a in layers_a}, sxx={a: np.zeros(width_a) for a in layers_a},
                   sy={b: np.zeros(width_b) for b in layers_b}, syy={b: np.zeros(width_b) for b in layers_b},
                   sxy={} if gram else {p: np.zeros((width_a, width_b)) for p in pairs},
                   gxx={a: np.zeros((width_a, width_a)) for a in layers_a} if gram else None,
                   gyy={b: np.zeros((width_b, width_b)) for b in layers_b} if gram else None)

    def update(self, xs: Mapping[int, np.ndarray], ys: Mapping[int, np.ndarray], products: Products, *,
               overwrite: bool = False) -> None:
        """Add a batch of float32 activations: each layer centred on its mean and rounded to the engine's
        precision (layers on parallel threads; in place when ``overwrite``, else in a reused workspace), then
        multiplied one product per thread and added in float64."""
        count = len(next(iter(xs.values())))
        if count == 0:
            return
        self.n += count
        sides = [("a", a, xs[a]) for a in self.sx] + [("b", b, ys[b]) for b in self.sy]

        def prepare(side: tuple[str, int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            name, layer, values = side
            out = values if overwrite else self._workspace((name, layer), values.shape)
            mean, squares = products.centre(values, out)
            return mean, out, squares

        prepared = {(name, layer): done for (name, layer, _), done in zip(sides, _parallel(prepare, sides, products))}
        means_x = {a: prepared["a", a][0] for a in self.sx}
        means_y = {b: prepared["b", b][0] for b in self.sy}
        tasks = []
        for name, sums, squares, gram in (("a", self.sx, self.sxx, self.gxx), ("b", self.sy, self.syy, self.gyy)):
            for layer in sums:
                mean, centred, centred_squares = prepared[name, layer]
                total, total_squares = _moments(count, mean, centred_squares)
                sums[layer] += total
                squares[layer] += total_squares
                if gram is not None:
                    tasks.append((gram[layer], centred, centred))
        tasks += [(block, prepared["a", a][1], prepared["b", b][1]) for (a, b), block in self.sxy.items()]
        _parallel(lambda task: _accumulate(task, products), tasks, products)
        self.pending.append((count, means_x, means_y))
        if len(self.pending) >= SETTLE_EVERY:
            self.settle()

    def __getstate__(self) -> dict:
        """Pickled (sent to another process) without the reusable buffers."""
        return {**self.__dict__, "workspace": {}}

    def _workspace(self, key: tuple[str, int], shape: tuple[int, int]) -> np.ndarray:
        """A float32 array of ``shape`` reused from batch to batch (fresh arrays of this size cost as much in
        page faults as the products cost)."""
        space = self.workspace.get(key)
        if space is None or space.shape[0] < shape[0] or space.shape[1] != shape[1]:
            space = self.workspace[key] = np.empty((max(shape[0], 2 * (0 if space is None else len(space))),
                                                    shape[1]), np.float32)
        return space[:shape[0]]

    def settle(self) -> None:
        """Add the pending batches' n·x̄·ȳᵀ terms: Σ over batches as one float64 product per table."""
        if not self.pending:
            return
        counts = np.array([count for count, _, _ in self.pending], dtype=np.float64)[:, None]
        mx = {a: np.stack([means[a] for _, means, _ in self.pending]) for a in self.sx}
        my = {b: np.stack([means[b] for _, _, means in self.pending]) for b in self.sy}
        for (a, b), block in self.sxy.items():
            block += mx[a].T @ (counts * my[b])
        for table, means in ((self.gxx, mx), (self.gyy, my)):
            for layer, block in (table or {}).items():
                block += means[layer].T @ (counts * means[layer])
        self.pending = []

    def add(self, other: _Sums) -> None:
        """Add ``other``'s sums (left unchanged: it may be a read-only copy from another process)."""
        self.n += other.n
        for mine, theirs in self._tables(other):
            for key in mine:
                mine[key] += theirs[key]
        self.pending.extend(other.pending)
        if len(self.pending) >= SETTLE_EVERY:
            self.settle()

    def _tables(self, other: _Sums):
        yield from ((self.sx, other.sx), (self.sxx, other.sxx), (self.sy, other.sy), (self.syy, other.syy),
                    (self.sxy, other.sxy))
        if self.gxx is not None and other.gxx is not None and self.gyy is not None and other.gyy is not None:
            yield from ((self.gxx, other.gxx), (self.gyy, other.gyy))


class CorrelationState:
    """Mergeable sums for all-pairs Pearson r between model A's and model B's neurons on chosen layer pairs.

    ``pairs`` lists (layer of A, layer of B) blocks; ``update`` takes per-layer activations, samples × neurons,
    and a boolean row mask choosing the baseline subsample. ``precision`` (float32 or bfloat16) is what the
    samples are rounded to before their products (see the module docstring); states merge only with their own.
    """

    def __init__(self, pairs: Sequence[tuple[int, int]], width_a: int, width_b: int, *,
                 precision: str = "float32") -> None:
        if not pairs:
            raise AuditInputError("correlation: at least one layer pair is needed")
        self.precision = Products(precision).precision
        self.pairs = tuple(sorted({(int(a), int(b)) for a, b in pairs}))
        self.width_a, self.width_b = int(width_a), int(width_b)
        self.full = _Sums.zeros(self.pairs, self.width_a, self.width_b, gram=False)
        self.baseline = _Sums.zeros(self.pairs, self.width_a, self.width_b, gram=True)

    @property
    def layers_a(self) -> list[int]:
        return sorted(self.full.sx)

    @property
    def layers_b(self) -> list[int]:
        return sorted(self.full.sy)

    @property
    def n(self) -> int:
        return self.full.n

    @staticmethod
    def nbytes(pairs: Sequence[tuple[int, int]], width_a: int, width_b: int) -> int:
        """Memory a state over ``pairs`` holds: a neurons_A × neurons_B block per pair, a Gram matrix per layer."""
        layers_a, layers_b = {a for a, _ in pairs}, {b for _, b in pairs}
        return 8 * (len(set(pairs)) * width_a * width_b + len(layers_a) * width_a ** 2
                    + len(layers_b) * width_b ** 2)

    def update(self, xs: Mapping[int, np.ndarray], ys: Mapping[int, np.ndarray],
               baseline_rows: np.ndarray | None = None, *, products: Products | None = None,
               overwrite: bool = False) -> None:
        """Add a batch: ``xs[layer]`` samples × neurons_A, ``ys[layer]`` samples × neurons_B (same samples).

        ``baseline_rows`` (bool per sample) picks the samples the rotation baseline uses; default all.
        ``products``: the engine (NumPy's by default); its precision must be the state's. ``overwrite``: the
        caller's float32 arrays may be used as scratch (saves a copy of the batch).
        """
        xs, ys = self._checked(xs, ys)
        if baseline_rows is None:
            self.add_baseline(xs, ys, products=products)
        else:
            rows = np.asarray(baseline_rows, dtype=bool)  # copies: the baseline may centre them in place
            self.add_baseline({a: x[rows] for a, x in xs.items()}, {b: y[rows] for b, y in ys.items()},
                              products=products, overwrite=True)
        self.add_samples(xs, ys, products=products, overwrite=overwrite)

    def add_samples(self, xs: Mapping[int, np.ndarray], ys: Mapping[int, np.ndarray], *,
                    products: Products | None = None, overwrite: bool = False) -> None:
        """Add a batch to the all-sample sums only (with :meth:`add_baseline`, the two halves of ``update``,
        for a caller that gathers the sparse baseline samples into larger products of their own)."""
        xs, ys = self._checked(xs, ys)
        self.full.update(xs, ys, self._engine(products), overwrite=overwrite)

    def add_baseline(self, xs: Mapping[int, np.ndarray], ys: Mapping[int, np.ndarray], *,
                     products: Products | None = None, overwrite: bool = False) -> None:
        """Add a batch of baseline samples (its Gram matrices and sums) only."""
        xs, ys = self._checked(xs, ys)
        self.baseline.update(xs, ys, self._engine(products), overwrite=overwrite)

    def _engine(self, products: Products | None) -> Products:
        products = products or Products(self.precision)
        if products.precision != self.precision:
            raise ValueError(f"update: a {products.precision} engine for a {self.precision} state")
        return products

    def _checked(self, xs: Mapping[int, np.ndarray],
                 ys: Mapping[int, np.ndarray]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        missing = [a for a in self.layers_a if a not in xs] + [b for b in self.layers_b if b not in ys]
        if missing:
            raise ValueError(f"update: activations for layers {missing} are missing")
        sizes = {len(xs[a]) for a in self.layers_a} | {len(ys[b]) for b in self.layers_b}
        if len(sizes) != 1:
            raise ValueError(f"update: model A and B activations cover different numbers of samples {sorted(sizes)}")
        return ({a: np.asarray(xs[a], dtype=np.float32) for a in self.layers_a},
                {b: np.asarray(ys[b], dtype=np.float32) for b in self.layers_b})

    def merge(self, other: CorrelationState) -> CorrelationState:
        """Add ``other``'s sums (a state over other samples, same pairs and widths) into this one; returns self."""
        if (other.pairs, other.width_a, other.width_b) != (self.pairs, self.width_a, self.width_b):
            raise ValueError("merge: states cover different layer pairs or neuron counts")
        if other.precision != self.precision:
            raise ValueError(f"merge: a {other.precision} state into a {self.precision} one")
        self.full.add(other.full)
        self.baseline.add(other.baseline)
        return self

    def settle(self) -> None:
        """Bring every sum up to date (done before any read; updates leave some terms pending)."""
        self.full.settle()
        self.baseline.settle()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every sum as a named array (lossless; ``from_arrays`` restores the state)."""
        self.settle()
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT), "pairs": np.array(self.pairs, dtype=np.int64).reshape(-1, 2),
            "widths": np.array([self.width_a, self.width_b], dtype=np.int64), "precision": np.array(self.precision)}
        for prefix, sums in (("full", self.full), ("baseline", self.baseline)):
            arrays[f"{prefix}.n"] = np.array(sums.n, dtype=np.int64)
            for name in ("sx", "sxx", "sy", "syy", "gxx", "gyy"):
                table = getattr(sums, name)
                if table is not None:
                    arrays.update({f"{prefix}.{name}.{layer}": value for layer, value in table.items()})
            arrays.update({f"{prefix}.sxy.{a}.{b}": value for (a, b), value in sums.sxy.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> CorrelationState:
        """The state that ``to_arrays`` wrote."""
        if str(arrays.get("format", "")) != FORMAT:
            raise AuditInputError(f"correlation state: expected format {FORMAT!r}, got {arrays.get('format')!r}")
        width_a, width_b = (int(v) for v in arrays["widths"])
        state = cls([tuple(p) for p in np.asarray(arrays["pairs"]).tolist()], width_a, width_b,
                    precision=str(arrays["precision"]))
        for prefix, sums in (("full", state.full), ("baseline", state.baseline)):
            sums.n = int(arrays[f"{prefix}.n"])
            for name in ("sx", "sxx", "sy", "syy", "gxx", "gyy"):
                table = getattr(sums, name)
                for layer in (table or {}):
                    table[layer] = np.array(arrays[f"{prefix}.{name}.{layer}"], dtype=np.float64)
            for a, b in sums.sxy:
                sums.sxy[(a, b)] = np.array(arrays[f"{prefix}.sxy.{a}.{b}"], dtype=np.float64)
        return state

    def to_bytes(self) -> bytes:
        """The state as .npz bytes (for sending between processes or machines)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.to_arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CorrelationState:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls.from_arrays({key: archive[key] for key in archive.files})

    def correlation(self, a: int, b: int) -> np.ndarray:
        """Pearson r, neurons_A × neurons_B, for layer pair (a, b); 0 where a neuron never varied."""
        self.settle()
        s = self.full
        return _pearson(s.n, s.sxy[(a, b)], s.sx[a], s.sxx[a], s.sy[b], s.syy[b])

    def diagonal(self, layer: int) -> np.ndarray:
        """Neuron i of A against neuron i of B on layer pair (layer, layer): same-shape models only."""
        if (layer, layer) not in self.full.sxy or self.width_a != self.width_b:
            raise ValueError("diagonal: needs the same layer in both models with the same neuron count")
        self.settle()
        s = self.full
        cross = np.diagonal(s.sxy[(layer, layer)])
        return _pearson(s.n, cross, s.sx[layer], s.sxx[layer], s.sy[layer], s.syy[layer], diagonal=True)

    def rotated_correlation(self, a: int, b: int, rotation: np.ndarray, *, rotate: str = "b") -> np.ndarray:
        """Pearson r after mixing one side's standardised neurons with ``rotation`` (rows = new neurons):
        ``rotate="b"`` gives A × rotated B, ``"a"`` rotated A × B (neurons_A × neurons_B either way).

        The covariances come from all samples (Σxyᵀ·Rᵀ); only each mixture's variance, Rᵢ·Cov·Rᵢᵀ, comes from
        the Gram matrix of the baseline subsample, a smooth quantity that few samples estimate well.
        """
        self.settle()
        full, sub = self.full, self.baseline
        assert sub.gxx is not None and sub.gyy is not None
        n, m = full.n, sub.n
        if n < 2 or m < 2:
            raise AuditInputError(f"correlation: needs at least 2 samples (and 2 baseline samples), got {n}, {m}")
        mixed_sums, mixed_squares = (full.sy[b], full.syy[b]) if rotate == "b" else (full.sx[a], full.sxx[a])
        # mix standardised neurons: Pearson r ignores each neuron's scale, so the baseline must too (otherwise
        # one high-variance neuron dominates every mixture and the baseline copies it)
        spread = np.sqrt(np.maximum(mixed_squares / n - (mixed_sums / n) ** 2, 0.0))
        rotation = rotation * np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 0.0)
        gram, sub_sums = (sub.gyy[b], sub.sy[b]) if rotate == "b" else (sub.gxx[a], sub.sx[a])
        sub_mean = sub_sums / m
        mixed_var = np.maximum(((rotation @ (gram / m)) * rotation).sum(axis=1) - (rotation @ sub_mean) ** 2, 0.0)
        if rotate == "b":
            cov = full.sxy[(a, b)] @ rotation.T / n - np.outer(full.sx[a] / n, rotation @ full.sy[b] / n)
            var_x = np.maximum(full.sxx[a] / n - (full.sx[a] / n) ** 2, 0.0)
            return _ratio(cov, var_x, mixed_var)
        cov = rotation @ full.sxy[(a, b)] / n - np.outer(rotation @ full.sx[a] / n, full.sy[b] / n)
        var_y = np.maximum(full.syy[b] / n - (full.sy[b] / n) ** 2, 0.0)
        return _ratio(cov, mixed_var, var_y)


def _pearson(n: int, sxy: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sy: np.ndarray, syy: np.ndarray, *,
             diagonal: bool = False) -> np.ndarray:
    if n < 2:
        raise AuditInputError(f"correlation: needs at least 2 samples, got {n}")
    cov = sxy - (sx * sy if diagonal else np.outer(sx, sy)) / n
    var_x, var_y = np.maximum(sxx - sx * sx / n, 0.0), np.maximum(syy - sy * sy / n, 0.0)
    denominator = np.sqrt(var_x * var_y) if diagonal else np.sqrt(np.outer(var_x, var_y))
    scale = max(float(np.max(var_x, initial=0.0)), float(np.max(var_y, initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denominator > 1e-12 * scale, cov / denominator, 0.0)
    return np.clip(r, -1.0, 1.0)


def _ratio(cov: np.ndarray, var_rows: np.ndarray, var_columns: np.ndarray) -> np.ndarray:
    denominator = np.sqrt(np.outer(var_rows, var_columns))
    scale = max(float(np.max(var_rows, initial=0.0)), float(np.max(var_columns, initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denominator > 1e-12 * scale, cov / denominator, 0.0)
    return np.clip(r, -1.0, 1.0)


def random_rotation(width: int, seed: int) -> np.ndarray:
    """A random width × width mixing matrix with unit-norm rows (Gaussian rows, normalised)."""
    matrix = np.random.default_rng(seed).standard_normal((width, width))
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@dataclass
class SideMatch:
    """Per neuron of one model (layers × neurons): its most correlated partner in the other model, the rotation
    baseline (max r against the other model's randomly rotated neurons) and the excess r − baseline."""

    layers: list[int]
    r: np.ndarray
    partner_layer: np.ndarray
    partner_neuron: np.ndarray
    baseline: np.ndarray
    excess: np.ndarray

    def persistent(self, threshold: float = PERSISTENCE_THRESHOLD) -> np.ndarray:
        return self.excess > threshold


@dataclass
class Matching:
    """Both directions of the matching, the diagonal for same-shape models, and the settings behind them."""

    a: SideMatch
    b: SideMatch
    diagonal: np.ndarray | None  # layers × neurons for layers compared with themselves, else None
    n_samples: int
    n_baseline_samples: int


def match(state: CorrelationState | Sequence[CorrelationState], *, seed: int = 0) -> Matching:
    """Best partners both ways, rotation baselines and excess correlation from one state or from several
    states over disjoint sets of layer pairs (the blocks of a large comparison).

    Rotations are drawn once per layer from ``seed`` so blocks sharing a layer use the same random basis.
    """
    states = [state] if isinstance(state, CorrelationState) else list(state)
    width_a, width_b = states[0].width_a, states[0].width_b
    layers_a = sorted({a for s in states for a in s.layers_a})
    layers_b = sorted({b for s in states for b in s.layers_b})
    side_a = _empty_side(layers_a, width_a)
    side_b = _empty_side(layers_b, width_b)
    rot_a = {a: random_rotation(width_a, _seed(seed, 0, a)) for a in layers_a}
    rot_b = {b: random_rotation(width_b, _seed(seed, 1, b)) for b in layers_b}
    same_shape = width_a == width_b
    diagonal: dict[int, np.ndarray] = {}
    for s in states:
        for a, b in s.pairs:
            r = s.correlation(a, b)
            ia, ib = layers_a.index(a), layers_b.index(b)
            _keep_best(side_a, ia, r.max(axis=1), r.argmax(axis=1), b)
            _keep_best(side_b, ib, r.max(axis=0), r.argmax(axis=0), a)
            side_a.baseline[ia] = np.maximum(side_a.baseline[ia], s.rotated_correlation(a, b, rot_b[b]).max(axis=1))
            side_b.baseline[ib] = np.maximum(side_b.baseline[ib],
                                             s.rotated_correlation(a, b, rot_a[a], rotate="a").max(axis=0))
            if same_shape and a == b:
                diagonal[a] = s.diagonal(a)
    for side in (side_a, side_b):
        side.excess = side.r - side.baseline
    rows = None
    if diagonal and set(diagonal) == set(layers_a):
        rows = np.stack([diagonal[a] for a in layers_a])
    return Matching(a=side_a, b=side_b, diagonal=rows, n_samples=states[0].n, n_baseline_samples=states[0].baseline.n)


def _seed(seed: int, side: int, layer: int) -> int:
    return int(np.random.SeedSequence([seed, side, layer]).generate_state(1)[0])


def _empty_side(layers: list[int], width: int) -> SideMatch:
    shape = (len(layers), width)
    return SideMatch(layers=layers, r=np.full(shape, -np.inf), partner_layer=np.full(shape, -1, np.int64),
                     partner_neuron=np.full(shape, -1, np.int64), baseline=np.full(shape, -np.inf),
                     excess=np.zeros(shape))


def _keep_best(side: SideMatch, row: int, best: np.ndarray, index: np.ndarray, partner_layer: int) -> None:
    better = best > side.r[row]
    side.r[row] = np.where(better, best, side.r[row])
    side.partner_neuron[row] = np.where(better, index, side.partner_neuron[row])
    side.partner_layer[row] = np.where(better, partner_layer, side.partner_layer[row])


def layer_pairs(n_layers_a: int, n_layers_b: int, mode: str) -> list[tuple[int, int]]:
    """Which layer blocks to correlate: ``same`` (layer i with layer i; equal depths), ``depth`` (each layer of
    A with the layers of B nearest its relative depth, and every layer of B covered), or ``all``."""
    if mode == "all":
        return [(a, b) for a in range(n_layers_a) for b in range(n_layers_b)]
    if mode == "same":
        if n_layers_a != n_layers_b:
            raise AuditInputError(f"--layers same: the models have {n_layers_a} and {n_layers_b} layers; "
                                  "use --layers depth or all")
        return [(a, a) for a in range(n_layers_a)]
    if mode != "depth":
        raise AuditInputError(f"--layers: expected same, depth or all, got {mode!r}")

    def nearest(index: int, n_from: int, n_to: int) -> int:
        return int(round(index * (n_to - 1) / max(n_from - 1, 1)))

    pairs = {(a, nearest(a, n_layers_a, n_layers_b)) for a in range(n_layers_a)}
    pairs |= {(nearest(b, n_layers_b, n_layers_a), b) for b in range(n_layers_b)}
    return sorted(pairs)


def plan_blocks(pairs: Sequence[tuple[int, int]], width_a: int, width_b: int,
                budget_bytes: int) -> list[list[tuple[int, int]]]:
    """Split ``pairs`` into groups whose state fits in ``budget_bytes`` (one corpus pass per group)."""
    if CorrelationState.nbytes(pairs[:1], width_a, width_b) > budget_bytes:
        needed = CorrelationState.nbytes(pairs[:1], width_a, width_b)
        raise AuditInputError(f"--memory-budget: one layer pair needs {needed / 2**20:.0f} MiB; raise the budget")
    blocks: list[list[tuple[int, int]]] = [[]]
    for pair in pairs:
        if blocks[-1] and CorrelationState.nbytes([*blocks[-1], pair], width_a, width_b) > budget_bytes:
            blocks.append([])
        blocks[-1].append(pair)
    return blocks
