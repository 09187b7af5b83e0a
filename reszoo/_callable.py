"""Let ``reszoo.fit(...)`` and ``reszoo.export(...)`` work however the attribute got set.

reszoo/__init__.py exposes the *functions* ``fit`` and ``export`` lazily (a module-level
``__getattr__``, so importing reszoo does not import TensorFlow). But importing the submodule of
the same name (``import reszoo.fit``, ``from reszoo.fit import ...``, ``python -m``) makes Python
set the package attribute ``reszoo.fit`` to the *module*, which then shadows the lazy function.
Making the module itself callable, forwarding to the function of the same name, keeps
``reszoo.fit(...)`` working whichever of the two the attribute holds.
"""

from __future__ import annotations

import sys
import types


def make_module_callable(module_name: str, function_name: str) -> None:
    """Make the module ``sys.modules[module_name]`` callable: calling it calls the module's
    function ``function_name`` (looked up at call time) with the same arguments."""
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    module.__class__ = _CallableModule
