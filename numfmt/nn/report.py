"""ModelReport: what quantizing a model did, a row a layer, with the totals."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from typing import Any

from numfmt._display import Displayable


@dataclass(frozen=True)
class LayerRow:
    """One quantized layer: its weight's shape and scheme, what it costs, how far it moved.

    ``bytes_before`` is the weight in its original dtype; ``bytes_after`` what a deployment
    stores (codes at their width, scales and zero points in their formats); ``rel_error`` the
    RMS error over the RMS weight; ``clipped`` the share of weights beyond their grid."""

    name: str
    kind: str
    shape: tuple[int, ...]
    scheme: str
    bits_per_weight: float
    bytes_before: int
    bytes_after: int
    sqnr_db: float
    rel_error: float
    clipped: float

    @classmethod
    def measure(
        cls, name: str, kind: str, w: Any, qt: Any, *, bytes_before: int, bytes_after: int
    ) -> LayerRow:
        """The row of weight ``w`` (a torch tensor or numpy array) quantized as ``qt``."""
        report = qt.report(w)
        # RMS error over RMS weight is sqrt(noise / signal): the SQNR's, without a pass more
        # (0 for no error, and for an all-zero weight)
        sqnr = report.sqnr_db
        return cls(
            name=name,
            kind=kind,
            shape=tuple(w.shape),
            scheme=str(qt.scheme),
            bits_per_weight=qt.bits_per_value,
            bytes_before=bytes_before,
            bytes_after=bytes_after,
            sqnr_db=report.sqnr_db,
            rel_error=0.0 if math.isinf(sqnr) else 10 ** (-sqnr / 20),
            clipped=report.clipped_fraction,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        if math.isinf(self.sqnr_db):
            d["sqnr_db"] = None  # no error at all: infinite
        return d


@dataclass(frozen=True, eq=False)
class ModelReport(Displayable):
    """The layers a recipe quantized, those it left in float (and why), and the model's size
    before and after (every parameter and buffer, each counted once: tied weights share)."""

    recipe: str
    layers: tuple[LayerRow, ...]
    kept: tuple[tuple[str, str], ...]
    bytes_before: int
    bytes_after: int
    parameters: int
    seconds: float
    #: The model-KL search's record (``numfmt.nn.algorithms.model_kl.ClipSearch``), when one ran.
    search: Any = None

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else math.inf

    @property
    def quantized_parameters(self) -> int:
        return sum(math.prod(r.shape) for r in self.layers)

    @property
    def bits_per_weight(self) -> float:
        """Storage bits per weight over the quantized layers (scales and zero points in)."""
        n = self.quantized_parameters
        return sum(r.bytes_after for r in self.layers) * 8 / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "layers": [r.to_dict() for r in self.layers],
            "kept_in_float": [{"name": n, "why": w} for n, w in self.kept],
            "totals": {
                "parameters": self.parameters,
                "quantized_parameters": self.quantized_parameters,
                "bits_per_weight": self.bits_per_weight,
                "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after,
                "ratio": self.ratio,
                "seconds": self.seconds,
            },
            **({} if self.search is None else {"search": self.search.to_dict()}),
        }

    def to_csv(self) -> str:
        """One line a layer, with a header (the fields of LayerRow)."""
        return rows_csv(self.layers, shape=lambda row: "x".join(str(n) for n in row.shape))


def rows_csv(rows, **columns: Any) -> str:
    """Dataclass rows as CSV with a header of their fields; ``columns`` replace a field's
    value by a function of the row (a shape as 576x1536)."""
    out = io.StringIO()
    rows = list(rows)
    if not rows:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(asdict(rows[0])), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        d = asdict(row)
        d.update({name: fn(row) for name, fn in columns.items()})
        writer.writerow(d)
    return out.getvalue()
