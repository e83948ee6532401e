"""millinet simulator and Gymnasium environments.

Importing ``envs`` registers ``millinet/Placement-v0`` with Gymnasium. It does so without
importing gymnasium itself: if gymnasium is already imported the env is registered now,
otherwise the moment gymnasium is first imported (a one-shot import hook). That keeps
``import envs.features`` free of gymnasium, so the scheduler service can share the featuriser
without the training stack.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

ENV_ID = "millinet/Placement-v0"
_ENTRY_POINT = "envs.placement_env:PlacementEnv"


def _register() -> None:
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point=_ENTRY_POINT)


class _RegisterWhenGymnasiumLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when ``gymnasium`` is imported it runs ``_register`` right after."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("gymnasium")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register()

        spec.loader.exec_module = exec_then_register
        return spec


if "gymnasium" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterWhenGymnasiumLoads) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenGymnasiumLoads())
