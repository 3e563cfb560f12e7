"""Observers: statistics of activations gathered batch by batch, then turned into qparams.

Weights are known in advance; activations are not, so their range is learned from a few
calibration batches. An :class:`Observer` keeps

* the running minimum and maximum per group (``averaging="running"``), or their exponential
  moving average (``averaging="moving"``, weight ``momentum`` for each new batch), and
* for per-tensor schemes, a histogram (``bins`` bins) that widens as the range grows, from
  which ``percentile``, ``entropy``, ``l2_histogram`` and ``mse`` choose the range. On a
  histogram these are estimates: each bin's values are taken at its centre.

Example:
    >>> obs = Observer("int8/l2_histogram")
    >>> for seed in range(4):
    ...     _ = obs.update(np.random.default_rng(seed).standard_normal(10_000))
    >>> qp = obs.qparams()
    >>> 3.0 < float(qp.hi) < 4.5
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.quant import calibration, grid
from numfmt.quant.granularity import Grouping, PerTensor
from numfmt.quant.qparams import QParams, _as_scheme, as_array
from numfmt.quant.scheme import Mapping, QuantScheme

HISTOGRAM_METHODS = ("percentile", "entropy", "l2_histogram", "mse")


class Observer:
    """Accumulate range statistics over batches; :meth:`qparams` chooses the scales."""

    def __init__(
        self,
        scheme: QuantScheme | str = "int8",
        *,
        averaging: str = "running",
        momentum: float = 0.01,
        bins: int = 2048,
    ) -> None:
        self.scheme = _as_scheme(scheme)
        if averaging not in ("running", "moving"):
            raise NumfmtError(f"averaging is 'running' or 'moving', not '{averaging}'")
        if not 0 < momentum <= 1:
            raise NumfmtError(f"momentum lies in (0, 1], not {momentum}")
        method = self.scheme.method
        if method in HISTOGRAM_METHODS and not isinstance(self.scheme.granularity, PerTensor):
            raise NumfmtError(
                f"'{method}' observes a histogram, which numfmt keeps per tensor only; "
                "use minmax for per-channel or per-group activations"
            )
        if method == "search":
            raise NumfmtError("'search' needs the tensors themselves; run it on a batch")
        self.averaging, self.momentum, self.bins = averaging, momentum, bins
        self.grouping: Grouping | None = None
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        self.hist: np.ndarray | None = None
        self.edges: np.ndarray | None = None
        self.batches = 0

    def update(self, x: Any) -> Observer:
        """Add a batch (NaN and inf are refused)."""
        a, _ = as_array(x)
        if a.size == 0:
            return self
        if not np.isfinite(a).all():
            raise NumfmtError("the batch holds NaN or infinite values; the observer refuses them")
        grouping = Grouping(a.shape, self.scheme.granularity)
        if self.grouping is not None and grouping.scale_shape != self.grouping.scale_shape:
            raise NumfmtError(
                f"this batch has {grouping.num_groups} groups; earlier ones had "
                f"{self.grouping.num_groups} (shape {self.grouping.shape})"
            )
        blocks = grouping.blocks(a)
        lo = grouping.join_params([r.min(axis=1) for r in blocks]).astype(np.float64)
        hi = grouping.join_params([r.max(axis=1) for r in blocks]).astype(np.float64)
        if self.lo is None:
            self.grouping, self.lo, self.hi = grouping, lo, hi
        elif self.averaging == "running":
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
        else:
            m = self.momentum
            self.lo, self.hi = (1 - m) * self.lo + m * lo, (1 - m) * self.hi + m * hi
        if self.scheme.method in HISTOGRAM_METHODS:
            self._add_to_histogram(a.reshape(-1))
        self.batches += 1
        return self

    def _add_to_histogram(self, values: np.ndarray) -> None:
        symmetric = self.scheme.mapping is Mapping.SYMMETRIC
        data = np.abs(values) if symmetric else values
        lo, hi = (0.0, float(data.max())) if symmetric else (float(data.min()), float(data.max()))
        if self.edges is not None:
            lo, hi = min(lo, self.edges[0]), max(hi, self.edges[-1])
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, self.bins + 1)
        hist = np.histogram(data, bins=edges)[0].astype(np.float64)
        if self.hist is not None:
            hist += _rebin(self.hist, self.edges, edges)
        self.hist, self.edges = hist, edges

    def qparams(self) -> QParams:
        """The qparams the statistics so far call for."""
        if self.lo is None:
            raise NumfmtError("the observer has seen no data: call update(batch) first")
        s = self.scheme
        lo, hi = self.lo, self.hi
        if s.method in HISTOGRAM_METHODS:
            lo, hi = self._histogram_range()
        amax = float(max(-np.min(lo), np.max(hi)))
        tensor_scale = grid.global_scale(amax, s)
        scale, zero = grid.scales(lo, hi, s, tensor_scale)
        return QParams(s, self.grouping, scale, zero, tensor_scale, np.asarray(lo), np.asarray(hi))

    def _histogram_range(self) -> tuple[np.ndarray, np.ndarray]:
        s, hist, edges = self.scheme, self.hist, self.edges
        symmetric = s.mapping is Mapping.SYMMETRIC
        options = s.method_options
        if s.method == "entropy":
            t = calibration.entropy_threshold(hist, edges, calibration._positive_levels(s))
            lo, hi = -t, t
        elif s.method == "l2_histogram":
            lo, hi = calibration.l2_range(hist, edges, calibration._levels(s), symmetric)
            lo = -hi if symmetric else lo
        elif s.method == "percentile":
            p = options.get("percentile", 99.99)
            if symmetric:
                hi = _quantile(hist, edges, p / 100)
                lo = -hi
            else:
                lo, hi = _quantile(hist, edges, 1 - p / 100), _quantile(hist, edges, p / 100)
        else:  # mse on bin centres
            lo, hi = self._mse_on_histogram(options.get("ratios", 100))
        lo = np.maximum(np.asarray(lo, dtype=np.float64), self.lo)
        hi = np.minimum(np.asarray(hi, dtype=np.float64), self.hi)
        return lo.reshape(self.lo.shape), hi.reshape(self.hi.shape)

    def _mse_on_histogram(self, ratios: int) -> tuple[float, float]:
        s = self.scheme
        centres = (self.edges[:-1] + self.edges[1:]) / 2
        weights = self.hist
        lo0, hi0 = float(np.min(self.lo)), float(np.max(self.hi))
        rows = centres[None, :]
        best, best_err = 1.0, np.inf
        for k in range(ratios, 0, -1):
            r = k / ratios
            scale, zero = grid.scales(np.array([lo0 * r]), np.array([hi0 * r]), s)
            q = grid.dequantize_rows(grid.quantize_rows(rows, scale, zero, s), scale, zero, s)
            err = float(np.sum(weights * np.square(q - rows)))
            if err < best_err:
                best, best_err = r, err
        return lo0 * best, hi0 * best


def _rebin(hist: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Counts of a histogram moved onto wider edges, spread evenly within each old bin."""
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    return np.diff(np.interp(new, old, cdf))


def _quantile(hist: np.ndarray, edges: np.ndarray, q: float) -> float:
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    return float(np.interp(q * cdf[-1], cdf, edges))
