"""Resolve a ``--policy`` argument into a placement rule for the simulator."""

from __future__ import annotations

from envs.scenario import Scenario
from envs.simulation import Chooser, nearest_slot
from experiments.errors import UserError

POLICY_HELP = "placement policy: nearest (default)"


def chooser_for(name: str, scenario: Scenario) -> Chooser:
    """A ``choose(engine, arrival) -> slot`` callable for the policy called ``name``."""
    if name == "nearest":
        return nearest_slot
    raise UserError(f"unknown policy {name!r}; known: nearest")
