"""Physical constants of the network model.

Propagation is physics, not a tuning knob: the delay of a fiber span is its length times
the group index of the fiber divided by the speed of light in vacuum.
"""

from __future__ import annotations

SPEED_OF_LIGHT_KM_PER_S = 299_792.458
"""Speed of light in vacuum (km/s), exact by the SI definition of the metre."""

FIBER_GROUP_INDEX: dict[str, float] = {
    # Standard single-mode fiber (ITU-T G.652, e.g. Corning SMF-28) at 1550 nm: n_g = 1.4682,
    # i.e. 4.897 us/km.
    "smf": 1.4682,
    # Hollow-core (nested antiresonant nodeless) fiber: light travels in air, n_g ~= 1.0003
    # (Poletti 2014; Lumenisity/Microsoft quote ~47 % faster than SMF), i.e. 3.337 us/km.
    "hollow_core": 1.0003,
}

FIBER_TYPES = tuple(FIBER_GROUP_INDEX)


def propagation_s_per_km(fiber: str) -> float:
    """One-way propagation delay of one km of ``fiber`` (s/km)."""
    try:
        index = FIBER_GROUP_INDEX[fiber]
    except KeyError:
        raise ValueError(f"unknown fiber type {fiber!r}; known: {', '.join(FIBER_TYPES)}") from None
    return index / SPEED_OF_LIGHT_KM_PER_S


def propagation_s(length_km: float, fiber: str) -> float:
    """One-way propagation delay (s) of a span of ``length_km`` km of ``fiber``."""
    return length_km * propagation_s_per_km(fiber)


def serialisation_s(nbytes: float, capacity_gbps: float) -> float:
    """Time (s) to put ``nbytes`` bytes on a link of ``capacity_gbps`` Gbit/s."""
    return nbytes * 8.0 / (capacity_gbps * 1e9)
