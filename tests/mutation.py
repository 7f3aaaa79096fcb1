"""Mutation helper for control tests: a module's source with one line changed, loaded as a new module.

A control's test shows it would fail if the control were removed by running the same check against a
mutant in which a single line disables the control (``mutant(module, old, new)``), and asserting that
the attack then succeeds. ``old`` must occur exactly once, so a refactor that moves the control makes
the mutation test fail loudly instead of silently testing nothing.
"""

from __future__ import annotations

import inspect
import sys
import types


def mutant(module: types.ModuleType, old: str, new: str) -> types.ModuleType:
    """``module`` re-executed from its source with the one occurrence of ``old`` replaced by ``new``."""
    source = inspect.getsource(module)
    count = source.count(old)
    assert count == 1, f"{old!r} occurs {count} times in {module.__name__}: the mutation is stale"
    name = f"{module.__name__}__mutant"
    mutated = types.ModuleType(name)
    mutated.__file__ = module.__file__
    sys.modules[name] = mutated
    try:
        exec(compile(source.replace(old, new), f"<mutant of {module.__file__}>", "exec"), mutated.__dict__)
    finally:
        sys.modules.pop(name, None)
    return mutated
