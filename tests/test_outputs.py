"""Writes stay where the user said (issue 18, class 1) and a failed command leaves nothing
behind (class 5): run folders are always inside ``--runs-dir`` whatever the scenario string,
names made from user strings are safe, and every output option refuses a bad place with one
line *before* the long work starts.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from _export_fixtures import shared_run

from millinet.experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "configs" / "ppo_tiny.yaml"
CITY = "extends: sunflower-metro\nname: city\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_run(tmp_path_factory)


# --------------------------------------------------------------------------- run folders
@pytest.mark.parametrize(
    "spec",
    ["../elsewhere/city.yaml", "ABS/elsewhere/city.yaml", "../elsewhere/city", "ABS/elsewhere/city",
     "../elsewhere/..", "../elsewhere/.hidden city"],
)  # fmt: skip
def test_run_folders_are_always_inside_runs_dir(tmp_path, monkeypatch, spec):
    from millinet.agents.ppo import Trainer
    from millinet.agents.train_config import load_train_config

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    for name in ("city.yaml", "city", ".hidden city"):
        (elsewhere / name).write_text(CITY)
    monkeypatch.chdir(work)
    spec = spec.replace("ABS", str(tmp_path))
    if spec.endswith(".."):  # a folder: not a scenario, refused before any folder is made
        with pytest.raises(Exception, match="is a directory"):
            load_train_config(TINY, scenario=spec)
        assert sorted(p.name for p in tmp_path.rglob("*")) == [
            ".hidden city", "city", "city.yaml", "elsewhere", "work"
        ]  # fmt: skip
        return
    cfg = load_train_config(TINY, scenario=spec)
    trainer = Trainer.create(cfg, runs_dir="runs")
    trainer.close()
    assert trainer.root.parent.resolve() == (work / "runs").resolve()
    assert trainer.root.name.startswith(("city_maskppo_s0_", "hidden_city_maskppo_s0_"))
    made = {p for p in tmp_path.rglob("*") if not p.is_relative_to(work / "runs")}
    assert made == {work, elsewhere, *elsewhere.iterdir()}


def test_safe_name_keeps_names_inside_one_folder():
    from millinet.envs.files import label_of, safe_name

    for text in ("..", "../../etc/passwd", "/abs/x", "a/b", "", ".", "-rf", "a\x00b", "é" * 99):
        name = safe_name(text)
        assert "/" not in name and "\\" not in name and name not in (".", "..", "")
        assert not name.startswith(("-", ".")) and len(name) <= 80
    assert label_of("../cities/Big City.yaml") == "Big_City"
    assert label_of("C:\\cities\\x.yml") == "x"
    assert label_of("sunflower-metro") == "sunflower-metro"


def test_evaluate_sub_folders_use_safe_names(tmp_path, monkeypatch, capsys):
    """A scenario's ``name:`` becomes a sub-folder of --out: never a path out of it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("extends: sunflower-metro\nname: ../../escaped\n")
    (tmp_path / "b.yaml").write_text("extends: sunflower-metro\nname: /tmp/absolute\n")
    argv = ["evaluate", "--scenario", "a.yaml", "--scenario", "b.yaml", "--policy", "nearest",
            "--seeds", "1", "--duration", "2ms", "--no-plots", "--out", "out/eval"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out" / "eval").iterdir()) == [
        "README.md", "escaped", "tmp_absolute"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml", "out"]


# --------------------------------------------------------------------------- output options
def _cases(tmp: Path, run: Path) -> dict[str, tuple[list[str], str]]:
    """command -> (argv with OUT where the output path goes, the option's name)."""
    tiny = str(TINY)
    return {
        "simulate --json": (["simulate", "--duration", "100s", "--json", "OUT"], "--json"),
        "evaluate --out": (["evaluate", "--seeds", "1000", "--out", "OUT"], "--out"),
        "evaluate --report": (
            ["evaluate", "--seeds", "1000", "--out", str(tmp / "e"), "--report", "OUT"],
            "--report",
        ),  # fmt: skip
        "analyze --out": (["analyze", str(run), "--out", "OUT"], "--out"),
        "export --out": (["export", str(run), "--out", "OUT"], "--out"),
        "bench --out": (["bench", "sim", "--out", "OUT"], "--out"),
        "train --runs-dir": (["train", "--config", tiny, "--runs-dir", "OUT"], "--runs-dir"),
        "demo --runs-dir": (["demo", "--config", tiny, "--runs-dir", "OUT"], "--runs-dir"),
    }


FILE_OPTIONS = ("simulate --json", "evaluate --report")
BAD_PLACES = {
    # kind -> (path under tmp, what the line must say for a folder option, for a file option)
    "existing_file": ("a-file", "is a file, not a folder", None),
    "directory": ("a-dir", None, "is a directory; give a file name"),
    "under_a_file": ("a-file/sub", "'{tmp}/a-file' is a file, not a folder", "is a file"),
    "missing_parent": ("no-such/x.json", None, "does not exist"),
    "unwritable": ("/proc/millinet-out", "cannot write in '/proc'", "cannot write in"),
}


COMMANDS = ("simulate --json", "evaluate --out", "evaluate --report", "analyze --out",
            "export --out", "bench --out", "train --runs-dir", "demo --runs-dir")  # fmt: skip


def _says(command: str, kind: str) -> str | None:
    """What the line must say for this output option and bad place; None where the place is
    not bad for it (a folder option given an existing folder; --report creates parents)."""
    _, folder_says, file_says = BAD_PLACES[kind]
    if command == "evaluate --report" and kind == "missing_parent":
        return None
    return file_says if command in FILE_OPTIONS else folder_says


@pytest.mark.parametrize(
    "command, kind", [(c, k) for c in COMMANDS for k in sorted(BAD_PLACES) if _says(c, k)]
)
def test_bad_output_places_are_one_line_before_any_work(tmp_path, capsys, exported, command, kind):
    where, says = BAD_PLACES[kind][0], _says(command, kind)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    run_dir, _ = exported
    argv, flag = _cases(tmp_path, run_dir)[command]
    out = where if where.startswith("/") else str(tmp_path / where)
    before = sorted(tmp_path.rglob("*"))
    t0 = time.monotonic()
    assert main([out if a == "OUT" else a for a in argv]) == 2
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{flag} {out}" in err and says.format(tmp=tmp_path) in err, err
    assert elapsed < 5.0, f"{elapsed:.1f} s: the long work started first"
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


# --------------------------------------------------------------------------- failed commands
def test_failed_commands_leave_no_output_folder(tmp_path, capsys, exported):
    run_dir, _ = exported
    bad_run = tmp_path / "bad-run"
    shutil.copytree(run_dir, bad_run)
    (bad_run / "best" / "best_model.zip").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "garbage" / "tb").mkdir(parents=True)
    (tmp_path / "garbage" / "tb" / "events.out.tfevents.1.x").write_bytes(b"\x07" * 64)
    commands = {
        "evaluate": ["evaluate", "--policy", "no-such-policy", "--out", "new/eval"],
        "analyze": ["analyze", str(tmp_path / "garbage"), "--out", "new/analysis"],
        "export": ["export", str(bad_run), "--out", "new/export"],
        "train": ["train", "--config", str(TINY), "--set", "ppo.n_steps=0", "--runs-dir",
                  "new/runs"],
    }  # fmt: skip
    for name, argv in commands.items():
        argv = [str(tmp_path / a) if a.startswith("new/") else a for a in argv]
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "new").exists(), (name, sorted((tmp_path / "new").rglob("*")))
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
