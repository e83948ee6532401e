"""The shipped scenarios say what they are: physics and load claims of their YAML comments.

Offered loads are computed here from the profiles' definitions (streams x mean rate x mean
size or work), not taken from a simulation.
"""

from __future__ import annotations

import math

import pytest

from millinet.envs.config import CLASS_NAMES, PeriodicArrivals
from millinet.envs.scenario import list_scenarios, load_scenario
from millinet.envs.workload import DEFAULT_CLASSES, PROFILES, mean_of

C_KM_PER_S = 299_792.458
SMF, HCF = 1.4682, 1.0003


def test_the_new_scenarios_are_shipped_and_extend_the_default():
    shipped = set(list_scenarios())
    assert {"auto-plant", "display-factory", "link-failure", "hollow-core"} <= shipped
    base = load_scenario("sunflower-metro").config
    for name in ("auto-plant", "display-factory", "link-failure", "hollow-core"):
        cfg = load_scenario(name).config
        assert cfg.name == name
        assert cfg.topology == base.topology and cfg.sites == base.sites


def _rate_per_s(spec, scale: float) -> float:
    """Mean arrivals per second of one source (periodic: streams x E[1/T], T uniform)."""
    if isinstance(spec, PeriodicArrivals):
        lo, hi = spec.period_min_us * 1e-6, spec.period_max_us * 1e-6
        per_stream = 1 / lo if hi == lo else math.log(hi / lo) / (hi - lo)
        return max(1, round(spec.streams * scale)) * per_stream
    return spec.rate_per_s * scale  # Poisson (surges excluded: they are short)


def _offered(fac, cls: str) -> tuple[float, float]:
    """(busy servers of its resource, upstream Gbit/s) a factory offers for one class."""
    spec = {**PROFILES.get(fac.profile, {}), **fac.workload}.get(cls)
    if spec is None:
        return 0.0, 0.0
    rate = _rate_per_s(spec, fac.scale)
    c = DEFAULT_CLASSES[cls]
    return rate * mean_of(c.compute_us) * 1e-6, rate * mean_of(c.up_bytes) * 8 / 1e9


@pytest.mark.parametrize("name", ["auto-plant", "display-factory"])
def test_factory_scenarios_are_loaded_but_not_melting(name):
    """On-prem CPU pools run busy but below saturation on average; every factory's frames
    fit its uplink; the city as a whole has several times the compute it needs."""
    cfg = load_scenario(name).config
    total = {"cpu": 0.0, "gpu": 0.0}
    for fac in cfg.factories:
        cpu = sum(_offered(fac, c)[0] for c in ("robot_sync", "agv_dispatch"))
        gpu, gbps = _offered(fac, "vision_qa")
        total["cpu"] += cpu
        total["gpu"] += gpu
        assert 0.3 < cpu / fac.on_prem.cpu.servers < 0.8, fac.name  # busy, not saturated
        assert gbps < 0.5 * fac.uplink_gbps, fac.name  # all frames off-site still fit
    sites = cfg.sites
    edge_sites, city_sites = cfg.topology.petals, cfg.topology.city_sites
    shared_cpu = edge_sites * sites.edge.cpu.servers + city_sites * sites.city.cpu.servers
    shared_gpu = edge_sites * sites.edge.gpu.servers * sites.edge.gpu.speed + (
        city_sites * sites.city.gpu.servers * sites.city.gpu.speed
    )
    assert total["cpu"] < 0.25 * shared_cpu and total["gpu"] < 0.5 * shared_gpu


def test_auto_plant_is_robot_sync_heavy_and_display_factory_vision_heavy():
    def share(name: str, cls: str) -> float:
        cfg = load_scenario(name).config
        n = {c: sum(_rate_per_s_of(f, c) for f in cfg.factories) for c in CLASS_NAMES}
        return n[cls] / sum(n.values())

    def _rate_per_s_of(fac, cls):
        spec = {**PROFILES.get(fac.profile, {}), **fac.workload}.get(cls)
        return 0.0 if spec is None else _rate_per_s(spec, fac.scale)

    assert share("auto-plant", "robot_sync") > 0.95
    cfg = load_scenario("display-factory").config
    gpu_s = sum(_offered(f, "vision_qa")[0] for f in cfg.factories)
    cpu_s = sum(_offered(f, c)[0] for f in cfg.factories for c in ("robot_sync", "agv_dispatch"))
    assert gpu_s > cpu_s  # more GPU-seconds of AOI than CPU-seconds of everything else
    lcd = cfg.factories[0]
    assert _offered(lcd, "vision_qa")[0] > lcd.on_prem.gpu.servers  # must spill, by design


def test_hollow_core_changes_exactly_the_listed_links_and_saves_what_physics_says():
    smf, hcf = load_scenario("sunflower-metro"), load_scenario("hollow-core")
    topo = hcf.topology
    listed = {
        topo.find_link(topo.index[o.a], topo.index[o.b]) for o in hcf.config.network.fiber_overrides
    }
    assert len(listed) == 18
    for i, link in enumerate(topo.links):
        assert link.fiber == ("hollow_core" if i in listed else "smf")
    per_km_rtt = 2 * (SMF - HCF) / C_KM_PER_S  # s of round trip saved per km of HCF
    assert per_km_rtt * 1e6 == pytest.approx(3.12, abs=0.01)
    same = 0
    for f in range(len(hcf.factory_names)):
        for r in ("cpu", "gpu"):
            pairs = zip(smf.network.candidates[f][r].slots, hcf.network.candidates[f][r].slots)
            for a, b in pairs:
                if b is None:
                    continue
                one_way = sum(
                    topo.links[k].length_km * (HCF if k in listed else SMF) / C_KM_PER_S
                    + topo.links[k].forwarding_us * 1e-6
                    for k in b.links
                )
                assert b.base_rtt_s == pytest.approx(2 * one_way, rel=1e-12)
                if a is not None and a.path == b.path:  # same route: saving = HCF km x 3.1 us
                    hcf_km = sum(topo.links[k].length_km for k in b.links if k in listed)
                    saved = a.base_rtt_s - b.base_rtt_s
                    assert saved == pytest.approx(hcf_km * per_km_rtt, rel=1e-9, abs=1e-12)
                    same += 1
    assert same >= 40


def test_link_failure_cuts_a_core_link_in_the_middle_of_the_run():
    cfg = load_scenario("link-failure").config
    (fault,) = cfg.faults.scheduled
    a, b = fault.element.split("--")
    assert a.startswith("core-") and b.startswith("core-")
    assert 0 < fault.down_at_s < fault.up_at_s < cfg.duration_s
