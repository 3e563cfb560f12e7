"""What a memory budget must hold for accelerate to place a model within it.

accelerate's big-model loading (``device_map="auto"`` with ``max_memory``) keeps what fits in
memory and offloads the rest to disk, but a module it does not split (a decoder layer, named
in the model's ``_no_split_modules``, or any module without children) is brought into memory
whole while it runs. A budget smaller than the largest such module cannot be met: it is
refused here, naming the module and the size that would do, rather than exceeded silently.
The budget bounds the weights held in memory, not the process (activations, torch itself).
"""

from __future__ import annotations

import ctypes
import functools
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


def resident_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers held in memory (on the CPU or a GPU, not on
    the meta device or offloaded to disk), each storage once (tied weights once)."""
    import itertools

    storages: dict[tuple[str, int], int] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.device.type != "meta":
            storage = t.untyped_storage()
            storages[(str(t.device), storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


def release_after_use(model: Any) -> None:
    """Hooks that keep a placed model's memory to its budget as it runs.

    After each module of the device map and each module accelerate moves whole (decoder
    layers) has run: a layer read back from disk keeps nothing of its weights (the
    packed product's kept view of its codes is dropped with them), and the memory freed is
    handed back to the system (glibc's ``malloc_trim``; elsewhere nothing), so that the
    weights read back and the decoded ones do not stay with the process as freed heap. What
    the load itself freed (the copies it read through) is handed back at once.
    """
    from torch import nn

    placed = getattr(model, "hf_device_map", None) or {"": "cpu"}
    whole = set(getattr(model, "_no_split_modules", None) or ())
    # with a GPU in the map, accelerate brings the modules it put on the CPU to the GPU for
    # each call (and back to the meta device after), as it reads the disk's back
    offloaded = (
        {"disk", "cpu"} if any(d not in ("cpu", "disk") for d in placed.values()) else {"disk"}
    )
    for name, module in model.named_modules():
        if not name or isinstance(module, nn.ModuleList | nn.ModuleDict):
            continue  # the model's own call, and containers, which are never called
        if name in placed or type(module).__name__ in whole:
            module.register_forward_hook(_released(placed_on(name, placed) in offloaded))
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def placed_on(name: str, placed: dict[str, Any]) -> Any:
    """Where a device map puts the module (or tensor) ``name``: the entry of its longest
    named prefix, or None."""
    parts = name.split(".")
    for n in range(len(parts), -1, -1):
        prefix = ".".join(parts[:n])
        if prefix in placed:
            return placed[prefix]
    return None


def _released(offloaded: bool):
    def hook(module: Any, args: Any, output: Any) -> None:
        if offloaded:  # accelerate has put its weights back on the meta device
            for sub in module.modules():
                # a quantized layer keeps its packed layout (views of its codes) between
                # calls; for a layer read back (from disk, or to the GPU) that would keep
                # every one read
                forget = getattr(sub, "forget_layout", None)
                if forget is not None:
                    forget()
        trim = _malloc_trim()
        if trim is not None:
            trim(0)

    return hook


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
