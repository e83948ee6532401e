"""Pydantic models of a scenario file (YAML).

Every field states its unit. Unknown keys are rejected (``extra="forbid"``) so a typo in a
scenario is an error, never a silently ignored setting. See ``envs/scenarios/*.yaml`` for
annotated examples and ``envs/scenario.py`` for how a file becomes a runnable scenario.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from millinet.envs.features import CLASS_NAMES, SITE_TIERS  # numpy-only single source of names
from millinet.envs.physics import FIBER_TYPES
from millinet.envs.validation import StrictModel

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]

# Practical ranges: what validates, runs. Limits on a whole scenario (streams after scaling,
# total arrival rate, tasks per run) are checked when it is built (envs/scenario.py).
MAX_US = 1e9
"""Largest time in microseconds (1,000 s): beyond it a value is a unit error."""
MAX_SECONDS = 86_400.0
"""Longest simulated time (one day), s."""
MAX_BYTES = 1e10
"""Largest payload of one task (10 GB); also bounds a distribution's values."""
MAX_KM = 20_000.0
"""Longest fiber or coordinate (half the Earth's circumference), km."""
MAX_GBPS = 1e9
"""Fastest link, Gbit/s: far beyond any fiber (~1e6), so that a link can be made negligible
(the queueing-theory tests isolate a server behind one)."""
MAX_HOP_US = 1e6
"""Longest per-hop forwarding delay (1 s)."""
MAX_SERVERS = 100_000
"""Most servers in one pool."""
MAX_NODES = 5_000
"""Most network nodes of a topology (a random-geometric city of 2,000 builds in ~2 s; the
build grows quadratically)."""
MAX_STREAMS = 100_000
"""Most periodic streams of one source (each stream holds its own state)."""
MAX_RATE_PER_S = 1e7
"""Largest Poisson rate of one source, tasks/s (the default city makes ~5e4)."""
MAX_SCALE = 1e4
"""Largest load multiplier (``scale``, ``load_scale``, a surge ``factor``)."""
MAX_PRIORITY = 7
"""Lowest strict-priority level (8 levels, as IEEE 802.1p)."""
RESOURCES = ("cpu", "gpu")
NODE_ROLES = ("factory", "access", "aggregation", "core", *SITE_TIERS)


def _check_class_names(mapping: dict[str, Any]) -> None:
    """Keys of a per-class mapping must be known task classes (a typo is an error)."""
    unknown = sorted(set(mapping) - set(CLASS_NAMES))
    if unknown:
        raise ValueError(f"unknown task class(es) {unknown}; known: {list(CLASS_NAMES)}")


def _check_nodes(nodes: int, formula: str) -> None:
    """A generated topology may have at most :data:`MAX_NODES` network nodes."""
    if nodes > MAX_NODES:
        raise ValueError(f"{formula} = {nodes:,} network nodes; the limit is {MAX_NODES:,}")


# --------------------------------------------------------------------------- distributions
class ConstantDist(StrictModel):
    """Always ``value``."""

    dist: Literal["constant"]
    value: Annotated[float, Field(ge=0, le=MAX_BYTES)]


class UniformDist(StrictModel):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: Annotated[float, Field(ge=0, le=MAX_BYTES)]
    high: Annotated[float, Field(ge=0, le=MAX_BYTES)]

    @model_validator(mode="after")
    def _ordered(self) -> UniformDist:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class ExponentialDist(StrictModel):
    """Exponential with the given mean."""

    dist: Literal["exponential"]
    mean: Annotated[float, Field(gt=0, le=MAX_BYTES)]


class LogNormalDist(StrictModel):
    """Log-normal with the given mean and coefficient of variation ``cv`` (std/mean)."""

    dist: Literal["lognormal"]
    mean: Annotated[float, Field(gt=0, le=MAX_BYTES)]
    cv: Annotated[float, Field(gt=0, le=100)]


Distribution = Annotated[
    Union[ConstantDist, UniformDist, ExponentialDist, LogNormalDist], Field(discriminator="dist")
]


# --------------------------------------------------------------------------- arrivals
class Surge(StrictModel):
    """A window in which a Poisson stream's rate is multiplied by ``factor`` (shift change)."""

    start_s: Annotated[float, Field(ge=0, le=MAX_SECONDS)]
    end_s: Annotated[float, Field(gt=0, le=MAX_SECONDS)]
    factor: Annotated[float, Field(gt=0, le=MAX_SCALE)]

    @model_validator(mode="after")
    def _ordered(self) -> Surge:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be > start_s ({self.start_s})")
        return self


class PeriodicArrivals(StrictModel):
    """``streams`` independent periodic sources (robot cells, cameras).

    Each stream draws its period once, uniformly in [period_min_us, period_max_us], starts at a
    uniform random phase, and each release is delayed by a uniform jitter in [0, jitter_us].
    """

    process: Literal["periodic"]
    streams: Annotated[int, Field(ge=1, le=MAX_STREAMS)]
    period_min_us: Annotated[float, Field(ge=1, le=MAX_US)]
    period_max_us: Annotated[float, Field(ge=1, le=MAX_US)]
    jitter_us: Annotated[float, Field(ge=0, le=MAX_US)] = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> PeriodicArrivals:
        if self.period_max_us < self.period_min_us:
            raise ValueError("period_max_us must be >= period_min_us")
        if self.jitter_us >= self.period_min_us:
            raise ValueError("jitter_us must be smaller than period_min_us")
        return self


class PoissonArrivals(StrictModel):
    """A Poisson source of ``rate_per_s`` tasks per second, optionally with surges."""

    process: Literal["poisson"]
    rate_per_s: Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)]
    surges: list[Surge] = Field(default_factory=list, max_length=1000)


class TraceArrivals(StrictModel):
    """Recorded tasks replayed from a CSV trace (``envs/trace.py`` gives the format).

    The entry replays the rows of this class whose ``factory`` column is ``trace_factory``
    (default: this factory's name), with their recorded sizes and compute demand. ``path`` is
    relative to the scenario file (or to ``envs/data`` for a bare file name).
    """

    process: Literal["trace"]
    path: str
    trace_factory: str | None = Field(
        None, description="factory name in the trace whose rows this entry replays"
    )
    time_scale: Annotated[float, Field(gt=0, le=1e6)] = Field(
        1.0, description="simulated s per trace s (2 = half the rate)"
    )
    loop: bool = Field(False, description="repeat the trace every period_s")
    period_s: Annotated[float, Field(gt=0, le=1e9)] | None = Field(
        None, description="trace time between loops (s); default: last row + mean gap"
    )


Arrivals = Annotated[
    Union[PeriodicArrivals, PoissonArrivals, TraceArrivals], Field(discriminator="process")
]


# --------------------------------------------------------------------------- task classes
class TaskClassConfig(StrictModel):
    """One task class: sizes, compute demand, deadline and scheduling weights."""

    deadline_us: Annotated[float, Field(gt=0, le=MAX_US)]
    resource: Literal["cpu", "gpu"]
    up_bytes: Distribution
    down_bytes: Distribution
    compute_us: Distribution = Field(description="service time on a speed-1.0 server (us)")
    weight: Annotated[float, Field(gt=0, le=1e6)] = Field(
        1.0, description="weight of a violation in the RL reward"
    )
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY)] = Field(
        0, description="strict-priority level on links (0 = highest); used only if enabled"
    )


class TaskClassOverride(StrictModel):
    """Per-scenario override of a built-in class; unset fields keep the built-in default."""

    deadline_us: Annotated[float, Field(gt=0, le=MAX_US)] | None = None
    resource: Literal["cpu", "gpu"] | None = None
    up_bytes: Distribution | None = None
    down_bytes: Distribution | None = None
    compute_us: Distribution | None = None
    weight: Annotated[float, Field(gt=0, le=1e6)] | None = None
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY)] | None = None


# --------------------------------------------------------------------------- topology
class PoolConfig(StrictModel):
    """A pool of identical servers of one resource type at a compute site."""

    servers: Annotated[int, Field(ge=0, le=MAX_SERVERS)]
    speed: Annotated[float, Field(gt=0, le=1e3)] = Field(
        1.0, description="service-rate multiplier vs. the reference"
    )


class SitePools(StrictModel):
    """CPU and GPU pools of a compute site."""

    cpu: PoolConfig = Field(default_factory=lambda: PoolConfig(servers=0))
    gpu: PoolConfig = Field(default_factory=lambda: PoolConfig(servers=0))


class NodeConfig(StrictModel):
    """A node of an explicit topology; sites may carry their own pools."""

    name: str
    role: Literal["factory", "access", "aggregation", "core", "on_prem", "edge", "city"]
    x_km: Annotated[float, Field(ge=-MAX_KM, le=MAX_KM)] = 0.0
    y_km: Annotated[float, Field(ge=-MAX_KM, le=MAX_KM)] = 0.0
    pools: SitePools | None = None


class LinkConfig(StrictModel):
    """A full-duplex fiber link. Length defaults to the distance between its end nodes."""

    a: str
    b: str
    length_km: Annotated[float, Field(ge=0, le=MAX_KM)] | None = None
    fiber: Literal["smf", "hollow_core"] = "smf"
    capacity_gbps: Annotated[float, Field(gt=0, le=MAX_GBPS)] = 100.0
    forwarding_us: Annotated[float, Field(ge=0, le=MAX_HOP_US)] = 5.0


class ExplicitTopology(StrictModel):
    """Nodes and links listed one by one."""

    generator: Literal["explicit"]
    nodes: list[NodeConfig] = Field(max_length=MAX_NODES)
    links: list[LinkConfig] = Field(max_length=10 * MAX_NODES)


class LinkClass(StrictModel):
    """Capacity (Gbit/s) and per-hop forwarding delay (us) shared by a group of links."""

    capacity_gbps: Annotated[float, Field(gt=0, le=MAX_GBPS)]
    forwarding_us: Annotated[float, Field(ge=0, le=MAX_HOP_US)] = 5.0


class SunflowerTopology(StrictModel):
    """Core ring of city sites with petal rings of access nodes (1 ms metro architecture).

    ``petals`` core nodes sit on a ring of radius ``core_radius_km``. Petal *i* leaves core
    node *i* through an aggregation node (which hosts an edge DC), passes ``access_per_petal``
    access nodes and returns to core node *i+1*, so every access node is dual-homed.
    City compute centres hang off ``city_sites`` evenly spaced core nodes.
    """

    generator: Literal["sunflower"]
    petals: Annotated[int, Field(ge=2, le=500)] = 6
    access_per_petal: Annotated[int, Field(ge=1, le=500)] = 4
    core_radius_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 8.0
    petal_length_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 15.0
    city_sites: Annotated[int, Field(ge=1, le=500)] = 2
    core: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=400, forwarding_us=5))
    petal: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=100, forwarding_us=5))
    site_link: LinkClass = Field(
        default_factory=lambda: LinkClass(capacity_gbps=400, forwarding_us=2)
    )

    @field_validator("city_sites")
    @classmethod
    def _one_city_site_per_core_node(cls, v: int, info: ValidationInfo) -> int:
        petals = info.data.get("petals")
        if petals is not None and v > petals:
            raise ValueError(f"must be <= petals ({petals}): a core node hosts one city site")
        return v

    @model_validator(mode="after")
    def _size(self) -> SunflowerTopology:
        # per petal: a core node, an aggregation node, its edge DC and the access ring
        _check_nodes(self.petals * (self.access_per_petal + 3), "petals x (access_per_petal + 3)")
        return self


class RingTopology(StrictModel):
    """``nodes`` access nodes on a ring; the first ``edge_sites`` positions get edge DCs."""

    generator: Literal["ring"]
    nodes: Annotated[int, Field(ge=3, le=MAX_NODES)] = 8
    radius_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 10.0
    edge_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 2
    city_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 1
    link: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=100))


class GridTopology(StrictModel):
    """A rows x cols Manhattan grid of access nodes, ``spacing_km`` apart."""

    generator: Literal["grid"]
    rows: Annotated[int, Field(ge=1, le=MAX_NODES)] = 4
    cols: Annotated[int, Field(ge=2, le=MAX_NODES)] = 4
    spacing_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 5.0
    edge_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 2
    city_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 1
    link: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=100))

    @model_validator(mode="after")
    def _size(self) -> GridTopology:
        _check_nodes(self.rows * self.cols, "rows x cols")
        return self


class RandomGeometricTopology(StrictModel):
    """``nodes`` access nodes placed uniformly in a square, linked within ``radius_km``.

    The generator adds a minimum spanning tree over the points so the graph is connected.
    """

    generator: Literal["random_geometric"]
    nodes: Annotated[int, Field(ge=2, le=MAX_NODES)] = 30
    side_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 40.0
    radius_km: Annotated[float, Field(gt=0, le=MAX_KM)] = 10.0
    edge_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 3
    city_sites: Annotated[int, Field(ge=0, le=MAX_NODES)] = 1
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    link: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=100))


class GraphMLTopology(StrictModel):
    """A network in the Internet Topology Zoo convention, as GraphML or GML (by suffix, ``.gml``).

    Nodes carry ``label`` and ``Latitude``/``Longitude`` in degrees; links may carry
    ``LinkSpeedRaw`` (bit/s) or ``LinkSpeed`` with ``LinkSpeedUnits``. ``path`` is relative to
    the scenario file (or to ``envs/data`` for a bare file name). Node names are the labels;
    a label that several nodes share, or a missing one, becomes ``<label>#<id>`` or
    ``node-<id>`` (the file's node id). Node names listed in ``edge_sites``/``city_sites``
    become compute sites attached to that PoP; every other node is an aggregation node that
    factories may attach to. ``route_factor`` converts great-circle distance to fiber length
    (ducts are not straight). How each quirk of published files is handled:
    ``envs/graphml.py`` and ``docs/real-networks.md``.
    """

    generator: Literal["graphml"]
    path: str
    edge_sites: list[str] = Field(default_factory=list)
    city_sites: list[str] = Field(default_factory=list)
    route_factor: Annotated[float, Field(ge=1.0, le=10.0)] = 1.0
    link: LinkClass = Field(default_factory=lambda: LinkClass(capacity_gbps=100))
    missing_coordinates: Literal["drop", "place_from_neighbours"] = Field(
        "drop",
        description="nodes without Latitude/Longitude (external peers): drop them with their "
        "links, or place each at the mean position of its neighbours that have coordinates",
    )
    min_link_km: Annotated[float, Field(gt=0, le=10.0)] = Field(
        0.1, description="shortest fiber of a link (km); co-located PoPs (length 0) get this"
    )


Topology = Annotated[
    Union[
        ExplicitTopology,
        SunflowerTopology,
        RingTopology,
        GridTopology,
        RandomGeometricTopology,
        GraphMLTopology,
    ],
    Field(discriminator="generator"),
]


class FiberOverride(StrictModel):
    """Set the fiber type of the link between nodes ``a`` and ``b``."""

    a: str
    b: str
    fiber: Literal["smf", "hollow_core"]


class NetworkConfig(StrictModel):
    """Queueing behaviour of links."""

    link_scheduling: Literal["fifo", "strict_priority"] = "fifo"
    queue_limit_bytes: Annotated[float, Field(gt=0, le=1e15)] | None = Field(
        None, description="drop-tail limit per link direction (bytes); None = unlimited"
    )
    fiber_overrides: list[FiberOverride] = Field(default_factory=list)


class SiteTiers(StrictModel):
    """Default pools of generated edge and city sites."""

    edge: SitePools = Field(
        default_factory=lambda: SitePools(cpu=PoolConfig(servers=16), gpu=PoolConfig(servers=4))
    )
    city: SitePools = Field(
        default_factory=lambda: SitePools(
            cpu=PoolConfig(servers=64), gpu=PoolConfig(servers=16, speed=1.5)
        )
    )


class FactoryConfig(StrictModel):
    """A factory: where its tasks originate, its uplink, its on-prem site and its workload."""

    name: str
    profile: Literal["car_plant", "display_factory", "brewery", "custom"]
    attach: str | None = Field(None, description="node to attach to; default: next access node")
    uplink_km: Annotated[float, Field(ge=0, le=MAX_KM)] = Field(
        2.0, description="fiber from factory to its access node"
    )
    uplink_gbps: Annotated[float, Field(gt=0, le=MAX_GBPS)] = 10.0
    uplink_forwarding_us: Annotated[float, Field(ge=0, le=MAX_HOP_US)] = 5.0
    on_prem: SitePools = Field(
        default_factory=lambda: SitePools(cpu=PoolConfig(servers=4), gpu=PoolConfig(servers=1))
    )
    lan_gbps: Annotated[float, Field(gt=0, le=MAX_GBPS)] = Field(
        25.0, description="factory LAN to its on-prem site"
    )
    scale: Annotated[float, Field(gt=0, le=MAX_SCALE)] = Field(
        1.0, description="multiplies the profile's streams/rates"
    )
    workload: dict[str, Arrivals] = Field(
        default_factory=dict, description="per-class arrivals; replaces the profile's entry"
    )

    @field_validator("workload")
    @classmethod
    def _known_classes(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_class_names(v)
        return v

    @model_validator(mode="after")
    def _custom_needs_workload(self) -> FactoryConfig:
        if self.profile == "custom" and not self.workload:
            raise ValueError("profile 'custom' needs a 'workload' mapping")
        return self


class ScheduledFault(StrictModel):
    """Element down in [down_at_s, up_at_s). ``element`` is a node name or a link "a--b"."""

    element: str
    down_at_s: Annotated[float, Field(ge=0, le=MAX_SECONDS)]
    up_at_s: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ScheduledFault:
        if self.up_at_s is not None and self.up_at_s <= self.down_at_s:
            raise ValueError("up_at_s must be > down_at_s")
        return self


class RandomFaults(StrictModel):
    """Independent exponential failures and repairs of every link between network nodes."""

    link_mtbf_s: Annotated[float, Field(ge=1e-3, le=1e9)] = Field(
        description="mean time between failures of one link (s; >= 1 ms)"
    )
    link_mttr_s: Annotated[float, Field(ge=1e-6, le=1e9)] = Field(
        description="mean time to repair (s)"
    )


class FaultsConfig(StrictModel):
    """Scheduled and random outages."""

    scheduled: list[ScheduledFault] = Field(default_factory=list, max_length=100_000)
    random: RandomFaults | None = None


class CandidateConfig(StrictModel):
    """The decision's candidate set: K = sites x paths (compute site, path) pairs."""

    sites: Annotated[int, Field(ge=1, le=16)] = 4
    paths: Annotated[int, Field(ge=1, le=8)] = 2


TELEMETRY_MEASUREMENTS = ("link_backlog", "pool_occupancy", "recent_violation")
"""What a report can carry: bytes queued per link direction; tasks queued, servers busy, the
declared work of the queued tasks and the recent mean declared work per pool; a site's recent
share of deadline violations. Never when a server will free (that needs the remaining service
of tasks in progress)."""


class TelemetryConfig(StrictModel):
    """What a scheduler knows when it decides (DESIGN §2 "Telemetry").

    ``oracle``: exact, instantaneous measurements of every element (the full-telemetry
    reference). ``reported``: every link direction and compute pool reports its measurements
    every ``period_us``, with its own clock phase; a report reaches a scheduler after the
    one-way fiber delay from the reporting element plus ``processing_us``. Besides reports, a
    scheduler knows its own dispatches: all of them with a ``central`` scheduler, only its
    factory's with ``per_factory`` schedulers. Failures are known at once (the mask): fault
    alarms travel outside the periodic reports.
    """

    mode: Literal["oracle", "reported"] = "oracle"
    period_us: Annotated[float, Field(gt=0, le=10_000_000)] = Field(
        1000.0, description="reporting period of every element (us)"
    )
    processing_us: Annotated[float, Field(ge=0, le=10_000_000)] = Field(
        50.0, description="collector + scheduler processing of a report (us)"
    )
    propagation: bool = Field(
        True, description="reports travel the fiber to the scheduler; false = no fiber delay"
    )
    phase: Literal["random", "aligned"] = Field(
        "random", description="report clocks: an independent random phase per element, or all 0"
    )
    jitter_us: Annotated[float, Field(ge=0, le=10_000_000)] = Field(
        0.0, description="each report is taken up to this much after its nominal time (us)"
    )
    scheduler: Literal["central", "per_factory"] = Field(
        "per_factory", description="one central scheduler, or one per factory (its own dispatches)"
    )
    controller: str | None = Field(
        None, description="node of the central scheduler; default: the first city site"
    )
    carries: list[Literal[TELEMETRY_MEASUREMENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(TELEMETRY_MEASUREMENTS),
        description="measurements the reports carry; a missing one reads as 0",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TelemetryConfig:
        if self.jitter_us >= self.period_us:
            raise ValueError(
                f"jitter_us ({self.jitter_us}) must be smaller than period_us ({self.period_us})"
            )
        if self.controller is not None and self.scheduler != "central":
            raise ValueError(
                "a controller places a central scheduler; per_factory schedulers sit at their "
                "factories (set scheduler: central, or drop controller)"
            )
        return self


class ScenarioConfig(StrictModel):
    """A complete scenario: city network, compute sites, factories and their workloads."""

    name: str
    description: str = ""
    duration_s: Annotated[float, Field(gt=0, le=MAX_SECONDS)] = Field(
        1.0, description="default simulated time (s)"
    )
    seed: Annotated[int, Field(ge=0, lt=2**63)] = Field(
        0,
        description="default workload seed of `millinet simulate` and `millinet render` "
        "(their --seed overrides it); evaluation, training and the env use their own seeds",
    )
    topology: Topology
    sites: SiteTiers = Field(default_factory=SiteTiers)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    classes: dict[str, TaskClassOverride] = Field(default_factory=dict)
    factories: Annotated[list[FactoryConfig], Field(min_length=1, max_length=1_000)]
    load_scale: Annotated[float, Field(gt=0, le=MAX_SCALE)] = Field(
        1.0, description="multiplies every factory's scale: the same city, busier or quieter"
    )
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_class_names(v)
        return v

    @field_validator("factories")
    @classmethod
    def _unique_names(cls, v: list[FactoryConfig]) -> list[FactoryConfig]:
        names = [f.name for f in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate factory names {dupes}")
        return v


def dump_config(config: ScenarioConfig) -> dict[str, Any]:
    """Return the scenario as plain data (what ``scenarios show`` prints)."""
    return config.model_dump(mode="json", exclude_none=True)


__all__ = [
    "CLASS_NAMES",
    "FIBER_TYPES",
    "NODE_ROLES",
    "RESOURCES",
    "SITE_TIERS",
    "TELEMETRY_MEASUREMENTS",
    "ScenarioConfig",
    "TelemetryConfig",
]
