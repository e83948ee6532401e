"""Benchmark suites: which scenarios a policy is judged on, on which seeds, for how long.

A suite is a YAML file (shipped ones in ``experiments/suites/<name>.yaml``, found by name like
scenarios; any other by its path), validated like every config millinet reads::

    name: main
    description: ...
    duration_s: 0.05               # simulated arrivals per test episode
    seeds:                         # inside the ranges of millinet.envs.seeds: disjoint
      validation: {first: 0, count: 5}   # reset seeds 900000 + first + i (tuning, selection)
      test: {first: 0, count: 10}        # engine seeds 2**31 + first + i (the leaderboard)
    scenarios:                     # in distribution: what training and tuning may see
      - {scenario: sunflower-metro, tag: control}
      - {scenario: sunflower-metro-load2x, tag: headroom}
    ood:                           # out-of-distribution test sets: test seeds only
      - name: load-2.5x
        of: sunflower-metro        # the scenario it varies (shipped name or YAML path)
        varies: [load]
        set: {load_scale: 2.5}     # deep-merged onto the scenario, as `extends` does
      - name: munich
        of: sunflower-metro-load2x
        varies: [city]
        replace: {topology: {generator: graphml, path: metro-fixture.graphml, ...}}
    tuned: [../../results/tuned/main/deadline-aware.yaml]   # tuned-heuristic files
    heuristics: [...]              # optional: the default heuristics (default: every one)

**Splits.** Training uses reset seeds of ``millinet.envs.seeds.TRAINING`` (a run draws its
episodes there; the suite does not narrow it). Validation episodes are the engine seeds that
``PlacementEnv.reset`` derives from the suite's validation reset seeds (so a heuristic tuned
here is tuned on the episodes PPO's best-model choice sees); test episodes are test engine
seeds, which no training, validation or report episode can reach. ``--seed-base`` moves the
test seeds to another offset in the test range.

**Test sets** are every in-distribution scenario and every OOD variation, each evaluated on the
test seeds. ``tag`` is the suite author's expectation (``headroom``: the best heuristic on
reports is measurably worse than under the oracle view; ``control``: it is not); the
leaderboard *measures* it and says where it disagrees. Every test set must use reported
telemetry (its oracle view is the full-information reference), and an OOD set must differ
from every in-distribution scenario.

Any problem is one :class:`~millinet.envs.errors.ConfigError` line ``file: field: reason``;
every test set is built (``load_scenario``) and every tuned file read while validating, so a
suite that validates runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from millinet.envs.config import TelemetryConfig
from millinet.envs.errors import ConfigError, MillinetError
from millinet.envs.scenario import deep_merge
from millinet.envs.seeds import TEST, VALIDATION, engine_seed_of_reset
from millinet.envs.validation import StrictModel, read_yaml, validate

SUITE_DIR = Path(__file__).resolve().parent.parent / "suites"
"""The shipped suites (``experiments/suites/*.yaml``)."""
DEFAULT_SUITE = "main"
TAGS = ("headroom", "control")
VARIATIONS = ("load", "city", "faults", "report_period", "factory_mix", "scheduler")
"""What an out-of-distribution test set changes (its ``varies`` list)."""
MAX_DURATION_S = 10.0
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Tag = Literal["headroom", "control"]


class SuiteError(ConfigError):
    """A suite file is invalid (``file: field: reason``)."""


class SeedSplit(StrictModel):
    """``count`` consecutive seeds from offset ``first`` of one range of millinet.envs.seeds."""

    first: Annotated[int, Field(ge=0)] = 0
    count: Annotated[int, Field(ge=1, le=1000)]


class SuiteSeeds(StrictModel):
    """The suite's validation and test seeds (module docstring)."""

    validation: SeedSplit = Field(
        default_factory=lambda: SeedSplit(count=5),
        description="offsets into millinet.envs.seeds.VALIDATION (reset seeds)",
    )
    test: SeedSplit = Field(
        default_factory=lambda: SeedSplit(count=10),
        description="offsets into millinet.envs.seeds.TEST (engine seeds 2**31 + i)",
    )

    @model_validator(mode="after")
    def _inside_ranges(self) -> SuiteSeeds:
        for name, split, rng in (
            ("validation", self.validation, VALIDATION),
            ("test", self.test, TEST),
        ):
            try:
                rng.seeds(split.count, split.first)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if self.test.count < 2:
            raise ValueError("test.count must be at least 2 (a confidence interval needs two)")
        return self


class SuiteScenario(StrictModel):
    """An in-distribution scenario: training and tuning may see it (on their own seeds)."""

    scenario: str = Field(description="shipped scenario name or YAML path (relative to the suite)")
    tag: Tag = Field(description="headroom or control: the expectation, measured by the run")
    note: str = ""


class Variation(StrictModel):
    """An out-of-distribution test set: a named variation of a scenario that training never
    sees (evaluated on test seeds only)."""

    name: str = Field(pattern=NAME)
    of: str = Field(description="the scenario it varies: shipped name or YAML path")
    varies: Annotated[list[Literal[VARIATIONS]], Field(min_length=1)]  # type: ignore[valid-type]
    set: dict[str, Any] = Field(
        default_factory=dict, description="deep-merged onto the scenario (mappings merge)"
    )
    replace: dict[str, Any] = Field(
        default_factory=dict, description="top-level scenario sections replaced whole"
    )
    tag: Tag | None = Field(None, description="optional expectation, measured by the run")
    note: str = ""


class SuiteConfig(StrictModel):
    """A benchmark suite file (module docstring)."""

    name: str = Field(pattern=NAME)
    description: str = ""
    duration_s: Annotated[float, Field(gt=0, le=MAX_DURATION_S)] = Field(
        description="simulated time of arrivals per test and validation episode (s)"
    )
    warmup_s: Annotated[float, Field(ge=0)] = Field(
        0.0, description="tasks arriving before this are left out of the metrics (s)"
    )
    seeds: SuiteSeeds = Field(default_factory=SuiteSeeds)
    scenarios: Annotated[list[SuiteScenario], Field(min_length=1)]
    ood: list[Variation] = Field(default_factory=list)
    heuristics: list[str] | None = Field(
        None, description="default heuristics run as baselines and references (default: all)"
    )
    tuned: list[str] = Field(
        default_factory=list, description="tuned-heuristic files (relative to the suite file)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SuiteConfig:
        if self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s:g}) must be below duration_s ({self.duration_s:g})"
            )
        return self


# --------------------------------------------------------------------------- resolved suite
@dataclass(frozen=True)
class TestSet:
    """One test set: a fully resolved scenario (plain data, as ``load_scenario`` takes it)."""

    __test__ = False  # not a pytest test class

    name: str
    kind: Literal["in-distribution", "ood"]
    scenario: dict[str, Any]
    tag: str | None
    varies: tuple[str, ...] = ()
    of: str | None = None
    note: str = ""

    def view(self, view: str) -> dict[str, Any]:
        """The scenario as the scheduler sees it under ``view``: ``reported`` (as the test
        set defines it) or ``oracle`` (the same scenario with ``telemetry: {mode: oracle}``)."""
        if view == "reported":
            return self.scenario
        if view != "oracle":
            raise ValueError(f"unknown view {view!r}")
        data = copy.deepcopy(self.scenario)
        # Under the oracle view nothing else of the telemetry section has any effect: the
        # defaults keep equal oracle views of different test sets equal (one cell for both).
        data["telemetry"] = TelemetryConfig(mode="oracle").model_dump(mode="json")
        data["name"] = f"{self.name}-oracle"
        return data


@dataclass
class Suite:
    """A validated suite: its config, where it came from, its test sets and baselines."""

    config: SuiteConfig
    source: str
    test_sets: list[TestSet]
    heuristics: list[str]
    tuned: list[str]  # absolute paths of the tuned-heuristic files
    training: list[dict[str, Any]] = field(default_factory=list)  # in-distribution scenarios

    @property
    def name(self) -> str:
        return self.config.name

    def test_seeds(self, seed_base: int | None = None) -> list[int]:
        """Test engine seeds: ``2**31 + base + i`` (``base`` = the suite's ``test.first``
        unless ``seed_base`` is given)."""
        split = self.config.seeds.test
        first = split.first if seed_base is None else seed_base
        return TEST.seeds(split.count, first)

    def validation_reset_seeds(self) -> list[int]:
        split = self.config.seeds.validation
        return VALIDATION.seeds(split.count, split.first)

    def validation_seeds(self) -> list[int]:
        """Validation engine seeds (derived as ``PlacementEnv.reset`` does)."""
        return [engine_seed_of_reset(s) for s in self.validation_reset_seeds()]

    def test_set(self, name: str) -> TestSet:
        for ts in self.test_sets:
            if ts.name == name:
                return ts
        raise KeyError(name)


def suite_path(spec: str) -> Path:
    """The file of a suite given by shipped name or path; ``SuiteError`` if there is none."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = SUITE_DIR / f"{spec}.yaml"
    if not shipped.is_file():
        raise SuiteError(spec, "", f"unknown suite; shipped: {', '.join(list_suites())}")
    return shipped


def list_suites() -> list[str]:
    """Names of the shipped suites."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(spec: str | Path, with_tuned: bool = True) -> Suite:
    """Read, validate and resolve a suite (shipped name or YAML path); module docstring.

    ``with_tuned`` False leaves the ``tuned`` files out (unread): a heuristic sweep reads the
    suite it tunes on before those files exist."""
    path = suite_path(str(spec))
    data = read_yaml(path, SuiteError)
    return resolve_suite(data, str(path), path.resolve().parent, with_tuned)


def _scenario_file(name: str, base_dir: Path) -> str:
    """A scenario reference of the suite: a shipped name stays; a relative YAML path is taken
    relative to the suite file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and not path.is_absolute():
        return str(base_dir / path)
    return name


def _resolved(spec: str | dict, source: str, field_name: str) -> dict[str, Any]:
    """A scenario as fully resolved plain data (every default filled in; a GraphML path made
    absolute), built once to prove it runs; a problem is a ``SuiteError`` naming ``field``."""
    from millinet.envs.scenario import build_scenario, resolve_config

    try:
        cfg, scenario_source, base = resolve_config(spec)
        build_scenario(cfg, scenario_source, base)
    except MillinetError as exc:
        raise SuiteError(source, field_name, " ".join(str(exc).split())) from None
    data = cfg.model_dump(mode="json")
    topo = data["topology"]
    if topo.get("generator") == "graphml":
        path = Path(topo["path"])
        if not path.is_absolute() and (base / path).exists():
            topo["path"] = str((base / path).resolve())
    return data


def resolve_suite(
    data: Any, source: str, base_dir: Path = Path("."), with_tuned: bool = True
) -> Suite:
    """Validate plain suite data and resolve its test sets, heuristics and (``with_tuned``)
    tuned files."""
    from millinet.agents.heuristics import HEURISTICS
    from millinet.agents.specs import TunedHeuristicError, load_tuned_heuristic

    cfg = validate(SuiteConfig, data, source, SuiteError, what="benchmark suite")
    test_sets: list[TestSet] = []
    training: list[dict[str, Any]] = []
    for i, entry in enumerate(cfg.scenarios):
        where = f"scenarios[{i}]"
        scenario = _resolved(_scenario_file(entry.scenario, base_dir), source, f"{where}.scenario")
        _check_test_set(scenario, [t.name for t in test_sets], source, where)
        training.append(scenario)
        test_sets.append(
            TestSet(scenario["name"], "in-distribution", scenario, entry.tag, note=entry.note)
        )
    for i, var in enumerate(cfg.ood):
        where = f"ood[{i}]"
        base = _resolved(_scenario_file(var.of, base_dir), source, f"{where}.of")
        clash = sorted(set(var.replace) & set(var.set))
        if clash:
            raise SuiteError(source, where, f"{clash[0]!r} is both in set and replace")
        merged = deep_merge(base, copy.deepcopy(var.set))
        merged.update(copy.deepcopy(var.replace))
        merged["name"] = var.name
        scenario = _resolved(merged, source, f"{where} ({var.name})")
        _check_test_set(scenario, [t.name for t in test_sets], source, where)
        if any(_same_scenario(scenario, t) for t in training):
            raise SuiteError(
                source,
                where,
                f"{var.name!r} equals an in-distribution scenario; an out-of-distribution "
                "test set must change something",
            )
        test_sets.append(
            TestSet(var.name, "ood", scenario, var.tag, tuple(var.varies), var.of, var.note)
        )
    heuristics = list(HEURISTICS) if cfg.heuristics is None else list(cfg.heuristics)
    for i, name in enumerate(heuristics):
        if name not in HEURISTICS:
            raise SuiteError(
                source,
                f"heuristics[{i}]",
                f"unknown heuristic {name!r}; known: {', '.join(HEURISTICS)}",
            )
    if len(set(heuristics)) != len(heuristics):
        raise SuiteError(source, "heuristics", "a heuristic is listed twice")
    tuned = []
    for i, name in enumerate(cfg.tuned if with_tuned else []):
        path = Path(name) if Path(name).is_absolute() else base_dir / name
        try:
            load_tuned_heuristic(path)
        except TunedHeuristicError as exc:
            raise SuiteError(source, f"tuned[{i}]", str(exc)) from None
        tuned.append(str(path.resolve()))
    stems = [Path(t).stem for t in tuned]
    if len(set(stems)) != len(stems):
        raise SuiteError(source, "tuned", "two tuned-heuristic files share a file name")
    return Suite(cfg, source, test_sets, heuristics, tuned, training)


def _check_test_set(scenario: dict, earlier: list[str], source: str, where: str) -> None:
    """A test set needs its own name and reported telemetry."""
    if scenario["name"] in earlier:
        raise SuiteError(source, where, f"test set {scenario['name']!r} is listed twice")
    if scenario["telemetry"]["mode"] != "reported":
        raise SuiteError(
            source,
            where,
            f"{scenario['name']!r} uses oracle telemetry; a test set needs reported telemetry "
            "(its oracle view is the reference the leaderboard adds)",
        )


def _same_scenario(a: dict, b: dict) -> bool:
    """Whether two resolved scenarios differ only in their name and description."""
    strip = ("name", "description")
    return {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }
