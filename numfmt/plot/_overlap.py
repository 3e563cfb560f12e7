"""Marks and lines that would hide one another: finding them on the page.

Whether two markers hide each other depends on where they land on the page, not on their
distance in data units: the test is made in points (1/72 inch), from the axes' limits and
scales as they stand, and two markers touch when their centres lie closer than their radii
add up. The figures use the answers to draw the later of two touching marks smaller and on
top, a series that runs over an earlier one dashed with open markers, and to say in the
legend which one it lies on ("same as mse" when the numbers are equal, "≈ mse" when close).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Marker shapes, one per series or mark in order: a shape tells them apart where colours meet.
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "p", "h", "<", ">")


def page_points(ax, x, y) -> np.ndarray:
    """(n, 2) positions of data points on the page, in points from the axes' lower left
    corner (NaN where the scale cannot place them, e.g. zero on a log axis)."""
    xy = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    with np.errstate(all="ignore"):
        pixels = ax.transData.transform(xy)
    return (pixels - ax.transAxes.transform((0.0, 0.0))) * (72.0 / ax.figure.dpi)


def touching(centres: np.ndarray, diameters: Sequence[float]) -> list[int | None]:
    """For each mark, the first earlier mark of its group (the one it is drawn over), or
    None: mark j joins the group of the first earlier mark whose marker it touches.

    Examples:
        >>> touching(np.array([[0.0, 0.0], [3.0, 0.0], [50.0, 0.0]]), [8, 8, 8])
        [None, 0, None]
    """
    first: list[int | None] = []
    for j in range(len(centres)):
        owner = None
        for i in range(j):
            gap = float(np.hypot(*(centres[i] - centres[j])))
            if gap < (diameters[i] + diameters[j]) / 2:  # NaN compares False: never touching
                owner = i if first[i] is None else first[i]
                break
        first.append(owner)
    return first


def share_of_points_touching(a: np.ndarray, b: np.ndarray, diameter: float) -> float:
    """The share of two series' points (page positions, at the same x) whose markers of
    ``diameter`` points touch."""
    with np.errstate(invalid="ignore"):
        close = np.hypot(*(a - b).T) < diameter
    return float(np.mean(close)) if len(close) else 0.0


def relation(a, b) -> str:
    """How a legend names what a mark or series lies on: equal numbers are "same as", close
    ones "≈"."""
    equal = np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return "same as" if equal else "≈"
