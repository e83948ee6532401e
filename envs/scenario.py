"""Load, validate and build scenarios.

``load_scenario`` accepts a shipped scenario name (``envs/scenarios/<name>.yaml``), a path to a
YAML file, a plain dict or a :class:`~millinet.envs.config.ScenarioConfig`, and returns a built
:class:`Scenario`. Every problem raises :class:`~millinet.envs.errors.ScenarioError` naming the
file, the field and the reason; nothing is built half-way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx

from millinet.envs import config as schema
from millinet.envs import generators
from millinet.envs.config import MAX_STREAMS
from millinet.envs.errors import FieldError, ScenarioError, warn
from millinet.envs.graphml import load_graphml
from millinet.envs.network import CompiledNetwork
from millinet.envs.telemetry import ReportPlan
from millinet.envs.topology import Topology
from millinet.envs.trace import check_trace, checked_summary
from millinet.envs.validation import read_yaml, validate
from millinet.envs.workload import DEFAULT_CLASSES, PROFILES, WorkloadGenerator

SCENARIO_DIR = Path(__file__).parent / "scenarios"
MAX_ARRIVAL_RATE = 1e7
"""Most tasks per second a scenario may generate, all sources at their peak together."""
MAX_TASKS = 20_000_000
"""Most tasks one simulation or episode may keep records of (~470 bytes each, ~9 GB)."""
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_SCENARIO = "sunflower-metro"


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def validate_config(data: Any, source: str) -> schema.ScenarioConfig:
    """Validate plain data as a scenario; the first error becomes a ``ScenarioError``."""
    return validate(schema.ScenarioConfig, data, source, ScenarioError, what="scenario")


def _deep_merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``: mappings merge recursively, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_extends(data: dict, source: str, here: Path | None, chain: tuple[Path, ...]) -> dict:
    """Merge ``data`` onto its ``extends`` base (a shipped name or a YAML path), recursively.

    ``here`` is the file ``data`` came from (None for a dict); ``chain`` the files above it.
    """
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(source, "extends", "must be a shipped scenario name or a YAML path")
    parent_path = Path(parent)
    if parent_path.suffix not in (".yaml", ".yml"):
        parent_path = SCENARIO_DIR / f"{parent}.yaml"
        if not parent_path.is_file():
            raise ScenarioError(
                source,
                "extends",
                f"base scenario {parent!r} not found; shipped: {', '.join(list_scenarios())}",
            )
    elif not parent_path.is_absolute():
        parent_path = (here.parent if here is not None else Path.cwd()) / parent_path
    if parent_path.is_dir():
        raise ScenarioError(source, "extends", f"{str(parent_path)!r} is a directory, not a file")
    if not parent_path.is_file():
        raise ScenarioError(source, "extends", f"base scenario file {str(parent_path)!r} not found")
    if parent_path.resolve() in chain:
        loop = " -> ".join(str(p.name) for p in (*chain, parent_path.resolve()))
        raise ScenarioError(source, "extends", f"circular extends: {loop}")
    base = _read_yaml(parent_path, chain)
    return _deep_merge(base, data)


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """Read a scenario file as plain data, resolving ``extends: <name or path>`` recursively."""
    data = read_yaml(path, ScenarioError)
    if data is None:
        raise ScenarioError(str(path), "", "the file is empty; a scenario is a YAML mapping")
    if not isinstance(data, dict):
        raise ScenarioError(str(path), "", "a scenario must be a YAML mapping at the top level")
    return _resolve_extends(data, str(path), path, (*chain, path.resolve()))


def read_config(path: Path) -> schema.ScenarioConfig:
    """Read and validate a scenario YAML file (``extends`` resolved)."""
    return validate_config(_read_yaml(path), str(path))


def resolve_config(
    spec: str | Path | dict | schema.ScenarioConfig,
) -> tuple[schema.ScenarioConfig, str, Path]:
    """Turn a name, path, dict or config into (config, source label, base directory)."""
    if isinstance(spec, schema.ScenarioConfig):
        return spec, f"<scenario {spec.name}>", DATA_DIR
    if isinstance(spec, dict):
        data = _resolve_extends(dict(spec), "<dict>", None, ())
        return validate_config(data, "<dict>"), "<dict>", DATA_DIR
    text = str(spec)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return read_config(path), str(path), path.resolve().parent
    shipped = SCENARIO_DIR / f"{text}.yaml"
    if not shipped.is_file():
        raise ScenarioError(
            text, "scenario", f"unknown scenario; shipped: {', '.join(list_scenarios())}"
        )
    return read_config(shipped), str(shipped), SCENARIO_DIR


@dataclass
class Scenario:
    """A built scenario: topology, compiled network, task classes, sources and faults."""

    config: schema.ScenarioConfig
    source: str
    topology: Topology
    network: CompiledNetwork
    classes: list[schema.TaskClassConfig]  # in CLASS_NAMES order
    sources: list[tuple[int, int, schema.Arrivals, float]]  # (factory, class, spec, scale)
    factory_names: list[str]
    scheduled_faults: list[tuple[float, str, int, bool]]  # (time s, "link"|"node", index, up)

    @property
    def name(self) -> str:
        return self.config.name

    @cached_property
    def report_plan(self) -> ReportPlan | None:
        """Who decides and how long reports take to reach them; None under oracle telemetry."""
        if self.config.telemetry.mode == "oracle":
            return None
        return ReportPlan.build(self.network, self.config.telemetry, self.source)

    @property
    def arrival_rates(self) -> list[float]:
        """Peak arrival rate per class (tasks/s, ``CLASS_NAMES`` order): every source at its
        shortest period and highest surge, all at once; an upper bound for resource checks."""
        rates = [0.0] * len(schema.CLASS_NAMES)
        for _, c, spec, scale in self.sources:
            rates[c] += _peak_rate(spec, scale)
        return rates

    def check_tasks(self, seconds: float, field: str, source: str | None = None) -> None:
        """Raise :class:`ScenarioError` (naming ``source``, default the scenario's, and
        ``field``) when ``seconds`` of arrivals at the peak rate exceed :data:`MAX_TASKS`."""
        rate = sum(self.arrival_rates)
        tasks = rate * seconds
        if tasks > MAX_TASKS:
            raise ScenarioError(
                source or self.source,
                field,
                f"{seconds:g} s of arrivals at up to {rate:,.0f} tasks/s is {tasks:,.3g} tasks; "
                f"one run keeps at most {MAX_TASKS:,} (~{MAX_TASKS * 470 / 1e9:.0f} GB of records)",
            )

    def workload(self, seed: int) -> WorkloadGenerator:
        """A fresh arrival generator; the same seed gives the same arrivals."""
        return WorkloadGenerator(self.sources, self.classes, seed)


def _data_path(text: str, base: Path) -> Path:
    """A file named in a scenario: absolute, else relative to the scenario's folder ``base``,
    else in ``envs/data``."""
    path = Path(text)
    if path.is_absolute():
        return path
    return base / path if (base / path).exists() else DATA_DIR / path


def _read_for(exc: ScenarioError, source: str, field: str) -> ScenarioError:
    """An error inside a file that the scenario names (a network, a trace) names that file and
    the scenario field that read it; an error of the scenario itself stays as it is."""
    if exc.source == source:
        return exc
    return ScenarioError(exc.source, exc.field, f"{exc.reason} (read for {field} of {source})")


def _peak_rate(spec: schema.Arrivals, scale: float) -> float:
    """Highest arrival rate (tasks/s) of one source scaled by ``scale``. A trace (already
    checked by ``_resolve_traces``) counts at its mean rate over a loop: all of the file's rows
    per loop period, its bursts being recorded data rather than a parameter."""
    if isinstance(spec, schema.TraceArrivals):
        summary = checked_summary(Path(spec.path))
        return summary.rows / ((spec.period_s or summary.period_s()) * spec.time_scale)
    if isinstance(spec, schema.PeriodicArrivals):
        return _streams(spec, scale) * 1e6 / spec.period_min_us
    surge = 1.0
    for s in spec.surges:
        surge *= max(s.factor, 1.0)
    return spec.rate_per_s * scale * surge


def _streams(spec: schema.PeriodicArrivals, scale: float) -> int:
    """Streams of a periodic source after scaling (as ``WorkloadGenerator`` rounds them)."""
    return max(1, int(spec.streams * scale + 0.5))


def _check_load(cfg: schema.ScenarioConfig, sources: list, fields: list[str], source: str) -> None:
    """Limits of the whole workload, checked before any arrival state is allocated: streams of
    a source after ``scale`` x ``load_scale``, the peak arrival rate of all sources together,
    and the tasks of ``duration_s``."""
    for (_, _, spec, scale), field in zip(sources, fields):
        if isinstance(spec, schema.PeriodicArrivals) and _streams(spec, scale) > MAX_STREAMS:
            raise ScenarioError(
                source,
                field,
                f"{spec.streams:,} streams x scale {scale:g} (factory scale x load_scale) = "
                f"{_streams(spec, scale):,.3g} streams; the limit is {MAX_STREAMS:,}",
            )
    rates = [_peak_rate(spec, scale) for _, _, spec, scale in sources]
    if sum(rates) > MAX_ARRIVAL_RATE:
        worst = fields[max(range(len(rates)), key=rates.__getitem__)]
        raise ScenarioError(
            source,
            "load_scale" if cfg.load_scale > 1 else worst,
            f"the sources generate up to {sum(rates):,.3g} tasks/s (most from {worst}); the "
            f"limit is {MAX_ARRIVAL_RATE:,.0f} tasks/s",
        )


def _build_topology(cfg: schema.ScenarioConfig, source: str, base: Path) -> Topology:
    spec = cfg.topology
    try:
        if isinstance(spec, schema.GraphMLTopology):
            return load_graphml(_data_path(spec.path, base), spec, cfg.sites, source)
        builder = {
            "explicit": generators.explicit,
            "sunflower": generators.sunflower,
            "ring": generators.ring,
            "grid": generators.grid,
            "random_geometric": generators.random_geometric,
        }[spec.generator]
        return builder(spec, cfg.sites)
    except ScenarioError as exc:
        raise _read_for(exc, source, "topology.path") from None
    except FieldError as exc:
        raise ScenarioError(source, exc.field, exc.reason) from None
    except ValueError as exc:
        raise ScenarioError(source, "topology", str(exc)) from None


_NETWORK_ROLES = ("access", "aggregation", "core")


def _attach_factories(
    topo: Topology, cfg: schema.ScenarioConfig, source: str
) -> tuple[list[int], dict[int, int]]:
    """Add factory nodes (and their on-prem sites); return factory indices and site owners."""
    free_access = topo.by_role("access") or topo.by_role("aggregation")
    factories, private = [], {}
    for i, fac in enumerate(cfg.factories):
        field = f"factories[{i}]"
        if fac.attach is not None:
            if fac.attach not in topo.index:
                pops = [topo.nodes[n].name for n in topo.by_role(*_NETWORK_ROLES)]
                examples = ", ".join(repr(p) for p in pops[:3])
                raise ScenarioError(
                    source,
                    f"{field}.attach",
                    f"no node named {fac.attach!r} in the topology "
                    f"({len(pops)} network nodes, e.g. {examples})",
                )
            attach = topo.index[fac.attach]
            if topo.nodes[attach].role not in _NETWORK_ROLES:
                raise ScenarioError(
                    source,
                    f"{field}.attach",
                    f"{fac.attach!r} is a compute site ({topo.nodes[attach].role}); a factory "
                    f"attaches to an access, aggregation or core node",
                )
        elif free_access:
            attach = free_access[
                (i * max(1, len(free_access) // len(cfg.factories))) % len(free_access)
            ]
        else:
            raise ScenarioError(source, f"{field}.attach", "no access node to attach to")
        anchor = topo.nodes[attach]
        try:
            f = topo.add_node(fac.name, "factory", anchor.x_km, anchor.y_km - fac.uplink_km)
            topo.add_link(
                fac.name,
                anchor.name,
                capacity_gbps=fac.uplink_gbps,
                forwarding_us=fac.uplink_forwarding_us,
                length_km=fac.uplink_km,
            )
            pools = generators.pools_of(fac.on_prem)
            if pools:
                site = topo.add_node(
                    f"{fac.name}-on_prem",
                    "on_prem",
                    anchor.x_km,
                    anchor.y_km - fac.uplink_km - 0.2,
                    pools,
                )
                topo.add_link(
                    fac.name,
                    f"{fac.name}-on_prem",
                    capacity_gbps=fac.lan_gbps,
                    forwarding_us=1.0,
                    length_km=0.2,
                )
                private[site] = f
        except ValueError as exc:
            raise ScenarioError(source, f"{field}.name", str(exc)) from None
        factories.append(f)
    return factories, private


def _apply_fiber_overrides(topo: Topology, cfg: schema.ScenarioConfig, source: str) -> None:
    for i, ov in enumerate(cfg.network.fiber_overrides):
        field = f"network.fiber_overrides[{i}]"
        for end in (ov.a, ov.b):
            if end not in topo.index:
                raise ScenarioError(source, field, f"no node named {end!r}")
        link = topo.find_link(topo.index[ov.a], topo.index[ov.b])
        if link is None:
            raise ScenarioError(source, field, f"no link between {ov.a!r} and {ov.b!r}")
        topo.links[link].fiber = ov.fiber


def _faults(
    topo: Topology, cfg: schema.ScenarioConfig, source: str
) -> list[tuple[float, str, int, bool]]:
    events = []
    for i, fault in enumerate(cfg.faults.scheduled):
        field = f"faults.scheduled[{i}].element"
        if "--" in fault.element:
            a, b = fault.element.split("--", 1)
            if a not in topo.index or b not in topo.index:
                raise ScenarioError(source, field, f"unknown node in link {fault.element!r}")
            link = topo.find_link(topo.index[a], topo.index[b])
            if link is None:
                raise ScenarioError(source, field, f"no link {fault.element!r}")
            kind, idx = "link", link
        elif fault.element in topo.index:
            kind, idx = "node", topo.index[fault.element]
        else:
            raise ScenarioError(
                source, field, f"{fault.element!r} is neither a node nor a link 'a--b'"
            )
        events.append((fault.down_at_s, kind, idx, False))
        if fault.up_at_s is not None:
            events.append((fault.up_at_s, kind, idx, True))
    return sorted(events)


ONE_MS_S = 1e-3
"""The round trip that a 1 ms task must fit, propagation and all (s)."""


def _warn_if_no_site_within_1ms(
    topo: Topology, graph: nx.Graph, factories: list[int], source: str
) -> None:
    """Warn when no factory reaches any edge or city site within a 1 ms round trip of
    propagation and forwarding (a national network imported as a city, say)."""
    shared = [i for i in topo.by_role("edge", "city") if topo.nodes[i].pools]
    best = (float("inf"), -1, -1)
    for f in factories:
        dist = nx.single_source_dijkstra_path_length(graph, f, weight="delay")
        best = min([best, *((2 * dist[s], f, s) for s in shared if s in dist)])
    rtt, f, s = best
    if factories and shared and rtt > ONE_MS_S:
        warn(
            source,
            f"no factory-site pair can meet 1 ms: the closest, {topo.nodes[f].name} to "
            f"{topo.nodes[s].name}, is {rtt * 1e3:.2f} ms round trip of propagation and "
            f"forwarding alone, so 1 ms tasks meet their deadline only on-prem",
        )


def _classes(cfg: schema.ScenarioConfig) -> list[schema.TaskClassConfig]:
    out = []
    for name in schema.CLASS_NAMES:
        base = DEFAULT_CLASSES[name].model_dump()
        override = cfg.classes.get(name)
        if override is not None:
            base.update(override.model_dump(exclude_none=True))
        out.append(schema.TaskClassConfig.model_validate(base))
    return out


def _resolve_traces(
    sources: list[tuple[int, int, schema.Arrivals, float]],
    cfg: schema.ScenarioConfig,
    source: str,
    base: Path,
) -> list[tuple[int, int, schema.Arrivals, float]]:
    """Trace entries with an absolute ``path``, their ``trace_factory`` and loop period filled
    in; every trace file is checked once, in full (``envs/trace.py``), before anything runs."""
    out = list(sources)
    by_file: dict[Path, list[tuple[int, str]]] = defaultdict(list)  # file -> (index, field)
    for i, (f, c, spec, scale) in enumerate(sources):
        if isinstance(spec, schema.TraceArrivals):
            field = f"factories[{f}].workload.{schema.CLASS_NAMES[c]}"
            path = _data_path(spec.path, base)
            if not path.is_file():
                raise ScenarioError(source, f"{field}.path", f"trace file {spec.path!r} not found")
            update = {
                "path": str(path),
                "trace_factory": spec.trace_factory or cfg.factories[f].name,
            }
            out[i] = (f, c, spec.model_copy(update=update), scale)
            by_file[path].append((i, field))
    for path, entries in by_file.items():
        replayed = {(out[i][2].trace_factory, schema.CLASS_NAMES[out[i][1]]) for i, _ in entries}
        try:
            summary = check_trace(path, replayed)
        except ScenarioError as exc:
            raise _read_for(exc, source, f"{entries[0][1]}.path") from None
        for i, field in entries:
            f, c, spec, scale = out[i]
            if not spec.loop:
                continue
            period = spec.period_s or summary.period_s()
            if period < summary.last_s or period <= 0:
                raise ScenarioError(
                    source,
                    f"{field}.period_s",
                    f"the loop period must be > 0 and cover the trace, whose last row is at "
                    f"{summary.last_s:g} s (got {period:g})",
                )
            out[i] = (f, c, spec.model_copy(update={"period_s": period}), scale)
    return out


def build_scenario(
    cfg: schema.ScenarioConfig, source: str = "<scenario>", base: Path = DATA_DIR
) -> Scenario:
    """Build topology, network, classes, sources and faults from a validated config."""
    topo = _build_topology(cfg, source, base)
    factories, private = _attach_factories(topo, cfg, source)
    _apply_fiber_overrides(topo, cfg, source)
    graph = topo.graph()
    if not nx.is_connected(graph):
        parts = sorted(nx.connected_components(graph), key=len)
        lonely = topo.nodes[min(parts[0])].name
        raise ScenarioError(
            source,
            "topology",
            f"the network is disconnected ({len(parts)} components); "
            f"node {lonely!r} cannot reach the rest",
        )
    _warn_if_no_site_within_1ms(topo, graph, factories, source)
    net = CompiledNetwork(topo, factories, private, cfg.candidates.sites, cfg.candidates.paths)
    classes = _classes(cfg)
    sources, fields = [], []
    for f, fac in enumerate(cfg.factories):
        profile = dict(PROFILES.get(fac.profile, {}))
        profile.update(fac.workload)
        for c, name in enumerate(schema.CLASS_NAMES):
            if name not in profile:
                continue
            resource = classes[c].resource
            # the key in the file that brings these tasks in
            origin = f"workload.{name}" if name in fac.workload else "profile"
            if not net.candidates[f][resource].present.any():
                raise ScenarioError(
                    source,
                    f"factories[{f}].{origin}",
                    f"factory {fac.name!r} has {name} tasks but no reachable "
                    f"compute site with a {resource.upper()} pool",
                )
            sources.append((f, c, profile[name], fac.scale * cfg.load_scale))
            fields.append(f"factories[{f}].{origin}")
    sources = _resolve_traces(sources, cfg, source, base)
    _check_load(cfg, sources, fields, source)
    scenario = Scenario(
        cfg,
        source,
        topo,
        net,
        classes,
        sources,
        [f.name for f in cfg.factories],
        _faults(topo, cfg, source),
    )
    _ = scenario.report_plan  # an unknown telemetry.controller fails here, at load time
    scenario.check_tasks(cfg.duration_s, "duration_s")
    return scenario


def load_scenario(spec: str | Path | dict | schema.ScenarioConfig) -> Scenario:
    """Load and build a scenario from a name, a YAML path, a dict or a config object."""
    cfg, source, base = resolve_config(spec)
    return build_scenario(cfg, source, base)
