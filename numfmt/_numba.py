"""Compiling plain Python functions for numba without changing them for Python callers.

numba resolves a jitted function's global names when it compiles it, and a call to a plain
Python function fails there. The scalar cores (``numfmt.formats._core``, ``numfmt.arith._core``)
call one another by name and must stay plain Python (they also run on Python's unbounded
integers). ``compile_functions`` copies them with a globals dict of their own in which every
named function is the compiled copy, and leaves the module itself untouched.
"""

from __future__ import annotations

import types


def compile_functions(module: types.ModuleType, names: list[str], extra: dict | None = None):
    """{name: compiled copy} of module's functions; calls between them (and to the compiled
    functions in ``extra``, by their global names) stay compiled."""
    import numba

    scope = dict(vars(module))
    scope.update(extra or {})
    compiled = {}
    for name in names:
        f = getattr(module, name)
        copy = types.FunctionType(f.__code__, scope, f.__name__, f.__defaults__, f.__closure__)
        compiled[name] = scope[name] = numba.njit(inline="always")(copy)
    return compiled
