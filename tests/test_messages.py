"""Messages that do not mislead (issue 18, class 7): a directory given where a file belongs
says "is a directory" (and a file given where a folder belongs "is a file"), every ``--help``
renders its percent signs once, and the sweep names the real places it looked in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from millinet.experiments.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, prefix: str = "millinet"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


def test_every_help_renders_percent_signs_once():
    helps = {name: p.format_help() for name, p in _parsers(build_parser())}
    assert len(helps) >= 14  # millinet, ten commands, scenarios list/show/validate
    for name, text in helps.items():
        assert "%%" not in text, name
    assert "95% CI" in helps["millinet analyze"] and "95% CI" in helps["millinet"]


# --------------------------------------------------------------------------- wrong kind of path
def _scenario_with(tmp: Path, **keys) -> Path:
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(keys))
    return path


@pytest.mark.parametrize(
    "case",
    ["scenarios validate", "simulate --scenario", "train --config", "sweep --config",
     "evaluate --scenario", "extends", "graphml path"],
)  # fmt: skip
def test_a_directory_given_as_a_file_says_is_a_directory(tmp_path, capsys, case):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    argv = {
        "scenarios validate": ["scenarios", "validate", str(folder)],
        "simulate --scenario": ["simulate", "--scenario", str(folder)],
        "train --config": ["train", "--config", str(folder)],
        "sweep --config": ["sweep", "--config", str(folder), "--check"],
        "evaluate --scenario": ["evaluate", "--scenario", str(folder), "--out", str(tmp_path)],
        "extends": ["scenarios", "validate",
                    str(_scenario_with(tmp_path, extends=str(folder), name="x"))],
        "graphml path": ["scenarios", "validate", str(_scenario_with(
            tmp_path, name="g", topology={"generator": "graphml", "path": str(folder)},
            factories=[{"name": "f", "profile": "brewery"}]))],
    }[case]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a directory" in err and str(folder) in err, err


@pytest.mark.parametrize(
    "case", ["train --resume", "export", "serve", "analyze", "evaluate --policy"]
)
def test_a_file_given_as_a_folder_says_is_a_file(tmp_path, capsys, case):
    file = tmp_path / "run"
    file.write_text("not a folder\n")
    argv = {
        "train --resume": ["train", "--resume", str(file)],
        "export": ["export", str(file), "--out", str(tmp_path / "out")],
        "serve": ["serve", str(file)],
        "analyze": ["analyze", str(file), "--out", str(tmp_path / "out")],
        "evaluate --policy": ["evaluate", "--policy", str(file), "--out", str(tmp_path / "o")],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err and str(file) in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_sweep_names_the_real_places_it_looked_in(tmp_path, monkeypatch, capsys):
    sweeps, work = tmp_path / "sweeps", tmp_path / "work"
    sweeps.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    config = sweeps / "s.yaml"
    config.write_text(
        yaml.safe_dump({"name": "s", "train": "missing.yaml",
                        "space": {"ppo.ent_coef": {"uniform": [0.0, 0.01]}}})
    )  # fmt: skip
    assert main(["sweep", "--config", "../sweeps/s.yaml", "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{sweeps / 'missing.yaml'} (next to the sweep config)" in err, err
    assert f"{work / 'missing.yaml'} (in the working directory)" in err, err
    assert " . " not in err and "looked for . and ." not in err
