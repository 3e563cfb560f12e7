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

from typing import Any, cast

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.quant import _xp, calibration, grid
from numfmt.quant.granularity import Grouping, PerTensor
from numfmt.quant.qparams import QParams, as_scheme
from numfmt.quant.schemes import Mapping, QuantScheme

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
        self.scheme = as_scheme(scheme)
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
        self._device = None  # where the observed tensors lived (None: numpy)

    def update(self, x: Any) -> Observer:
        """Add a batch, a numpy array or a torch tensor (NaN and inf are refused). The
        statistics are reduced where the batch lives; only per-group numbers come to the host."""
        a, xp = _xp.read(x)
        if int(np.prod(a.shape)) == 0:
            return self
        if not bool(xp.all(xp.isfinite(a))):
            raise NumfmtError("the batch holds NaN or infinite values; the observer refuses them")
        grouping = Grouping(tuple(a.shape), self.scheme.granularity)
        if self.grouping is not None and grouping.scale_shape != self.grouping.scale_shape:
            raise NumfmtError(
                f"this batch has {grouping.num_groups} groups; earlier ones had "
                f"{self.grouping.num_groups} (shape {self.grouping.shape})"
            )
        if _xp.is_torch(a):
            self._device = a.device
        ranges = [calibration.row_ranges(xp, rows) for rows in grouping.blocks(a)]
        lo = _xp.to_numpy(grouping.join_params([r[0] for r in ranges])).astype(np.float64)
        hi = _xp.to_numpy(grouping.join_params([r[1] for r in ranges])).astype(np.float64)
        if self.lo is None:
            self.grouping, self.lo, self.hi = grouping, lo, hi
        elif self.averaging == "running":  # (self.hi is set with self.lo)
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(cast(np.ndarray, self.hi), hi)
        else:
            m, old_hi = self.momentum, cast(np.ndarray, self.hi)
            self.lo, self.hi = (1 - m) * self.lo + m * lo, (1 - m) * old_hi + m * hi
        if self.scheme.method in HISTOGRAM_METHODS:
            self._add_to_histogram(xp, xp.reshape(a, (1, -1)))
        self.batches += 1
        return self

    def _add_to_histogram(self, xp, values) -> None:
        symmetric = self.scheme.mapping is Mapping.SYMMETRIC
        data = xp.abs(values) if symmetric else values
        lo = 0.0 if symmetric else float(xp.min(data))
        hi = float(xp.max(data))
        if self.edges is not None:
            lo, hi = min(lo, self.edges[0]), max(hi, self.edges[-1])
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, self.bins + 1)
        first = xp.asarray([lo], dtype=xp.float64, device=_xp.device(data))
        last = xp.asarray([hi], dtype=xp.float64, device=_xp.device(data))
        hist = _xp.to_numpy(calibration.histograms(xp, data, first, last, self.bins))[0]
        if self.hist is not None:  # (self.edges is set with self.hist)
            hist += _rebin(self.hist, cast(np.ndarray, self.edges), edges)
        self.hist, self.edges = hist, edges

    def qparams(self) -> QParams:
        """The qparams the statistics so far call for."""
        if self.lo is None:
            raise NumfmtError("the observer has seen no data: call update(batch) first")
        s = self.scheme
        lo, hi = self.lo, self.hi
        if s.method in HISTOGRAM_METHODS:
            lo, hi = self._histogram_range()
        xp = _xp.namespace(np.zeros(1))
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        amax = np.asarray(max(-np.min(lo), np.max(hi)))
        tensor_scale = grid.global_scale(xp, amax, s)
        flat = grid.scales(xp, lo.reshape(-1), hi.reshape(-1), s, tensor_scale)

        def shaped(a):
            return None if a is None else np.asarray(a).reshape(lo.shape)

        qp = QParams(
            s,
            cast(Grouping, self.grouping),  # set with self.lo
            shaped(flat.scale),
            shaped(flat.zero_point),
            tensor_scale,
            lo,
            hi,
            minimum=shaped(flat.minimum),
            saturated=int(np.sum(flat.saturated)),
        )
        return qp if self._device is None else qp.to(self._device)

    def _histogram_range(self) -> tuple[np.ndarray, np.ndarray]:
        s, hist, edges = self.scheme, self.hist, self.edges
        # qparams comes here after an update, which set them all
        assert hist is not None and edges is not None
        assert self.lo is not None and self.hi is not None
        lo: Any  # floats, then arrays
        hi: Any
        symmetric = s.mapping is Mapping.SYMMETRIC
        options = s.method_options
        xp = _xp.namespace(hist)
        first, last = np.array([edges[0]]), np.array([edges[-1]])
        if s.method == "entropy":
            t = float(
                calibration.entropy_thresholds(
                    xp, hist[None, :], last, calibration.positive_levels(s)
                )[0]
            )
            lo, hi = -t, t
        elif s.method == "l2_histogram":
            lo_a, hi_a = calibration.l2_ranges(
                xp, hist[None, :], first, last, calibration.num_levels(s), symmetric
            )
            lo, hi = float(lo_a[0]), float(hi_a[0])
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
        # _histogram_range comes here after an update, which set them all
        assert self.edges is not None and self.lo is not None and self.hi is not None
        centres = (self.edges[:-1] + self.edges[1:]) / 2
        weights = self.hist
        lo0, hi0 = float(np.min(self.lo)), float(np.max(self.hi))
        rows = centres[None, :]
        xp = _xp.namespace(rows)
        errors = []
        for k in range(ratios, 0, -1):
            r = k / ratios
            sc = grid.scales(xp, np.array([lo0 * r]), np.array([hi0 * r]), s)
            codes = grid.quantize_rows(xp, rows, sc.scale, sc.zero_point, sc.minimum, s)
            q = grid.dequantize_rows(xp, codes, sc.scale, sc.zero_point, sc.minimum, s)
            errors.append(float(np.sum(weights * np.square(q - rows))))
        best = int(calibration.first_least(xp, np.array([errors]))[0])
        r = (ratios - best) / ratios
        return lo0 * r, hi0 * r


def _rebin(hist: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Counts of a histogram moved onto wider edges, spread evenly within each old bin."""
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    return np.diff(np.interp(new, old, cdf))


def _quantile(hist: np.ndarray, edges: np.ndarray, q: float) -> float:
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    return float(np.interp(q * cdf[-1], cdf, edges))
