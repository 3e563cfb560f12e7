"""Compiling plain Python functions for numba without changing them for Python callers.

numba resolves a jitted function's global names when it compiles it, and a call to a plain
Python function fails there. The scalar cores (``numfmt.formats._core``, ``numfmt.arith._core``)
call one another by name and must stay plain Python (they also run on Python's unbounded
integers). ``compile_functions`` copies them with a globals dict of their own in which every
named function is the compiled copy, and leaves the module itself untouched.
"""

from __future__ import annotations

import types
from typing import Literal


def compile_functions(
    module: types.ModuleType,
    names: list[str],
    extra: dict | None = None,
    inline: tuple[str, ...] | None = None,
):
    """{name: compiled copy} of module's functions; calls between them (and to the compiled
    functions in ``extra``, by their global names) stay compiled.

    Functions named in ``inline`` (all of them where it is None) are inlined in numba's own
    IR, which lets the hot loops vectorise; the others are left to LLVM, which keeps a large
    call tree compiling in seconds rather than minutes."""
    import numba

    scope = dict(vars(module))
    scope.update(extra or {})
    compiled = {}
    for name in names:
        f = getattr(module, name)
        copy = types.FunctionType(f.__code__, scope, f.__name__, f.__defaults__, f.__closure__)
        how: Literal["always", "never"] = "always" if inline is None or name in inline else "never"
        compiled[name] = scope[name] = numba.njit(inline=how, cache=True, error_model="numpy")(copy)
    return compiled


def serial_twin(kernel, name: str):
    """A compiled copy of a ``parallel=True`` kernel that runs on the calling thread alone
    (its ``prange`` loops as plain ones), named ``name`` so that numba's cache keeps it apart.
    For small inputs: waking a thread pool costs more than the work, and on a busy machine a
    parallel region waits for its slowest thread."""
    import numba

    f = kernel.py_func
    copy = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    copy.__qualname__ = name
    copy.__module__ = f.__module__
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
    return numba.njit(cache=True, **options)(copy)
