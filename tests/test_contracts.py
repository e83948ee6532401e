"""The shared contracts of issue 12: one seed table, one validation path, one env declaration,
one policy-spec resolver, extras named when missing, experiment groups across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from millinet.envs.errors import ConfigError, MissingExtraError, require_extra
from millinet.envs.placement_env import EnvConfig, PlacementEnv, default_config
from millinet.envs.seeds import ENV_ENGINE_SEEDS, REPORT, SEED_RANGES, TEST, TRAINING, VALIDATION
from millinet.envs.validation import read_yaml


def test_seed_ranges_are_disjoint_and_training_engines_never_reach_test_seeds():
    resets = [r for r in SEED_RANGES.values() if r.kind == "reset"]
    for a in resets:
        for b in resets:
            if a is not b:
                assert a.stop <= b.start or b.stop <= a.start, (a, b)
    assert TEST.start >= ENV_ENGINE_SEEDS  # an env's engine seed is below every test seed
    assert VALIDATION.seeds(3) == [900_000, 900_001, 900_002]
    assert REPORT.seeds(2, offset=5) == [950_005, 950_006]
    assert TRAINING.stop == VALIDATION.start and VALIDATION.stop == REPORT.start
    with pytest.raises(ValueError, match="leave the range"):
        VALIDATION.seeds(50_001)


def test_env_parameters_are_declared_once():
    from millinet.agents.train_config import TrainConfig

    assert TrainConfig.model_fields["env"].annotation is EnvConfig
    defaults = default_config()
    assert {k: defaults[k] for k in EnvConfig.model_fields} == EnvConfig().model_dump()
    assert TrainConfig().env_kwargs() == {
        "scenario": TrainConfig().scenario,
        **EnvConfig().model_dump(),
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon": 2.5}, "horizon"),  # not an integer
        ({"horizon": 10**12}, "horizon"),  # beyond the practical range
        ({"agent_classes": []}, "agent_classes"),
        ({"agent_classes": ["robot_sync", "robot_sync"]}, "agent_classes"),
        ({"reward_weights": {"robot_sync": math.nan}}, "reward_weights.robot_sync"),
        ({"latency_coef": -1.0}, "latency_coef"),
        ({"horizn": 10}, "horizn"),  # a typo: close-match suggestion
    ],
)
def test_bad_env_keywords_are_one_line_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        PlacementEnv("sunflower-metro", **kwargs)
    assert err.value.field == field and "\n" not in str(err.value)
    if field == "horizn":
        assert "did you mean 'horizon'" in str(err.value)


def test_files_that_are_not_yaml_text_are_one_line(tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"\x00\x01PK\x03")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    twice = tmp_path / "twice.yaml"
    twice.write_text("seed: 1\nseed: 2\n")
    cases = [
        (binary, "binary"),
        (latin, "not a UTF-8"),
        (tmp_path, "is a directory"),
        (tmp_path / "nope.yaml", "file not found"),
        (twice, "duplicate key 'seed'"),
    ]
    for path, reason in cases:
        with pytest.raises(ConfigError, match=reason) as err:
            read_yaml(path)
        assert str(err.value).startswith(str(path))


def test_a_missing_extra_names_it():
    require_extra("train", "millinet train")  # installed here
    from millinet.envs import errors

    errors.EXTRAS["imaginary"] = ("no_such_module_for_millinet",)
    try:
        with pytest.raises(MissingExtraError, match=r"needs the 'imaginary' extra.*pip install"):
            require_extra("imaginary", "millinet dream")
    finally:
        del errors.EXTRAS["imaginary"]


def test_runs_of_one_experiment_are_grouped_across_training_seeds():
    from millinet.experiments.evaluation.groups import experiment_of, group_runs

    assert experiment_of("runs/sunflower-metro_maskppo-warm_s3_20261126-113000") == (
        "sunflower-metro_maskppo-warm"
    )
    assert experiment_of("runs/x_maskppo_s1_20261126-113000@last") == "x_maskppo@last"
    assert experiment_of("deadline-aware") is None

    class Ev:  # the two methods group_runs reads, over a hand-made table
        policies = ["nearest", "r/e_maskppo_s0_20260101-0000", "r/e_maskppo_s1_20260101-0000"]
        table = {  # policy -> (violation_rate_1ms per seed, violations, tasks)
            policies[0]: ([0.5, 0.5], [5, 5], [10, 10]),
            policies[1]: ([0.1, 0.3], [1, 3], [10, 10]),
            policies[2]: ([0.3, 0.5], [3, 5], [10, 10]),
        }

        def values(self, policy, metric):
            col = {"violation_rate_1ms": 0, "violations_1ms": 1, "tasks_1ms": 2}[metric]
            return np.array(self.table[policy][col], dtype=float)

    (g,) = group_runs(Ev())
    assert g.name == "e_maskppo" and g.per_run == (pytest.approx(0.2), pytest.approx(0.4))
    assert g.mean == pytest.approx(0.3) and (g.violations_1ms, g.tasks_1ms) == (12, 40)
    half = 12.706204736 * np.std([0.2, 0.4], ddof=1) / math.sqrt(2)  # t(0.975, 1 df)
    assert g.ci_high == pytest.approx(0.3 + half) and g.ci_low == 0.0  # clipped at 0
