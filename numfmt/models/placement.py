"""What a memory budget must hold for accelerate to place a model within it.

accelerate's big-model loading (``device_map="auto"`` with ``max_memory``) keeps what fits in
memory and offloads the rest to disk, but a module it does not split (a decoder layer, named
in the model's ``_no_split_modules``, or any module without children) is brought into memory
whole while it runs. A budget smaller than the largest such module cannot be met: it is
refused here, naming the module and the size that would do, rather than exceeded silently.
The budget bounds the weights held in memory, not the process (activations, torch itself).
"""

from __future__ import annotations

from typing import Any

from numfmt._display import byte_size as _size
from numfmt.errors import NumfmtError


def largest_unit(model: Any) -> tuple[str, int]:
    """(name, bytes) of the largest module accelerate moves whole (parameters and buffers)."""
    from accelerate.utils import compute_module_sizes

    sizes = compute_module_sizes(model)
    whole = set(getattr(model, "_no_split_modules", None) or ())
    best = ("", 0)
    stack = [("", model)]
    while stack:
        name, module = stack.pop()
        children = list(module.named_children())
        if children and type(module).__name__ not in whole:
            stack.extend(reversed([(f"{name}.{n}" if name else n, c) for n, c in children]))
        elif sizes.get(name, 0) > best[1]:
            best = (name, sizes[name])
    return best


def check_budget(model: Any, max_memory: dict[Any, Any], what: str) -> None:
    """Refuse a ``max_memory`` none of whose devices holds the model's largest whole module."""
    from accelerate.utils import convert_file_size_to_int

    try:
        room = max(convert_file_size_to_int(v) for v in max_memory.values())
    except (ValueError, TypeError):
        raise NumfmtError(
            f"max_memory is a size such as 2GB or 500MB per device, not {max_memory!r}"
        ) from None
    name, size = largest_unit(model)
    if size > room:
        raise NumfmtError(
            f"{what}: a max_memory of {_size(room)} cannot hold {name or 'the model'} "
            f"({_size(size)}), which is brought into memory whole while it runs: give at least "
            f"{_size(size)} (the budget bounds the weights kept in memory)"
        )
