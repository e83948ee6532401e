"""The run folder: the one contract between training and everything that reads a run.

A run lives in ``<runs_dir>/<run-name>/`` (name: :func:`run_name`)::

    config.yaml                      the resolved TrainConfig (what ran; --resume reads it)
    tb/                              TensorBoard event files (see agents/callbacks.py for tags)
    checkpoints/model_<steps>_steps.zip, vecnormalize_<steps>_steps.pkl
    best/best_model.zip, best/vecnormalize.pkl, best/best.json   best validation reward
    final/model.zip, final/vecnormalize.pkl                      the last model
    pretrained/model.zip, pretrained/vecnormalize.pkl            behaviour-cloned start (optional)
    metrics.json                     held-out metrics of the last and the best model

    clock.json                       wall time trained so far (survives Ctrl-C and kills)
    train.lock                       the PID of the process training into the folder (empty: none)

A *checkpoint name* is ``best``, ``last``, ``pretrained`` or a step count (``"20480"``).
:func:`load_checkpoint` loads any of them, with its normalisation statistics, for every reader:
evaluation and simulation (``millinet.agents.inference``), export, the service benchmark and
resume. Every problem is a :class:`~millinet.agents.errors.CheckpointError` naming the file.

Writing is atomic (:mod:`millinet.envs.files`): a periodic checkpoint writes its VecNormalize
file and then its model file, each through a temporary file and a rename, so a model file
that exists belongs to a complete pair; ``best/``, ``final/`` and ``pretrained/`` are built
in a temporary folder and swapped in whole (model and statistics always together). A kill at
any moment leaves at most a temporary ``.*.tmp`` leftover, which resume removes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import shutil
import socket
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from millinet.agents.errors import CheckpointError, CheckpointNotFoundError
from millinet.agents.train_config import TrainConfig, validate_train_config
from millinet.envs.errors import ConfigError
from millinet.envs.features import observation_size
from millinet.envs.files import (
    atomic_write,
    existing_dir,
    is_temporary,
    label_of,
    new_sibling_dir,
    previous_dir,
    replace_dir,
    write_text_atomic,
)
from millinet.envs.validation import read_yaml

CHECKPOINTS = ("best", "last", "pretrained")
"""Named checkpoints of a run; a step count names a periodic one."""
NAMED_FILES = {
    "best": ("best", "best_model.zip"),
    "last": ("final", "model.zip"),
    "pretrained": ("pretrained", "model.zip"),  # the behaviour-cloned start (pretrain.teacher)
}
"""Named checkpoint -> (folder, model file); each folder also holds ``vecnormalize.pkl``."""


def is_checkpoint_name(checkpoint: str) -> bool:
    """Whether ``checkpoint`` names a run checkpoint: one of ``CHECKPOINTS`` or a step count."""
    return checkpoint in CHECKPOINTS or str(checkpoint).isdigit()


def check_checkpoint_name(checkpoint: str, where: str) -> str:
    """``checkpoint`` if it names a checkpoint; else a :class:`CheckpointError` naming ``where``."""
    if not is_checkpoint_name(checkpoint):
        raise CheckpointError(
            f"{where}: unknown checkpoint {checkpoint!r}; use "
            f"{', '.join('@' + c for c in CHECKPOINTS)} or @<steps>"
        )
    return checkpoint


@dataclass(frozen=True)
class RunPaths:
    """The files of a run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_dir(self) -> Path:
        return self.root / "best"

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    @property
    def pretrained_dir(self) -> Path:
        return self.root / "pretrained"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def clock(self) -> Path:
        return self.root / "clock.json"

    @property
    def lock(self) -> Path:
        return self.root / "train.lock"

    def model(self, checkpoint: str) -> tuple[Path, Path]:
        """(model zip, vecnormalize pkl) of ``best``, ``last``, ``pretrained`` or a step count.

        For the named folders this is where the files are *read*: the previous complete
        folder when a swap was killed half-way (``millinet.envs.files.existing_dir``)."""
        if checkpoint in NAMED_FILES:
            folder, model_file = NAMED_FILES[checkpoint]
            where = existing_dir(self.root / folder)
            return where / model_file, where / "vecnormalize.pkl"
        steps = int(checkpoint)
        return (
            self.checkpoints / f"model_{steps}_steps.zip",
            self.checkpoints / f"vecnormalize_{steps}_steps.pkl",
        )

    def checkpoint_steps(self) -> list[int]:
        """Step counts of the periodic checkpoints (their model files), newest first."""
        steps = []
        for p in self.checkpoints.glob("model_*_steps.zip"):
            middle = p.name.removeprefix("model_").removesuffix("_steps.zip")
            if middle.isdigit():
                steps.append(int(middle))
        return sorted(steps, reverse=True)

    def latest_checkpoint(self) -> int | None:
        """Step count of the newest periodic checkpoint, or None."""
        steps = self.checkpoint_steps()
        return steps[0] if steps else None

    def leftovers(self) -> list[Path]:
        """What writes that were killed left: temporary files and folders (``.*.tmp``) and
        the previous ``<folder>.old`` of a folder swap that had completed."""
        places = (self.root, self.checkpoints)
        temporary = [p for d in places if d.is_dir() for p in d.iterdir() if is_temporary(p)]
        swapped = [
            previous_dir(self.root / folder)
            for folder, _ in NAMED_FILES.values()
            if (self.root / folder).is_dir() and previous_dir(self.root / folder).is_dir()
        ]
        return sorted(temporary + swapped)

    def is_run(self) -> bool:
        """Whether the folder looks like a run: a config and some model."""
        return self.config.is_file() and (self.checkpoints.is_dir() or self.best_dir.is_dir())


def scenario_label(cfg: TrainConfig) -> str:
    """Short scenario name for run names: the shipped name or the file's name without its
    folders and ``.yaml`` (``millinet.envs.files.label_of``: never a path)."""
    return label_of(cfg.scenario)


def run_name(cfg: TrainConfig, when: float | None = None) -> str:
    """``<scenario>_<algo>[-<tag>]_s<seed>_<YYYYmmdd-HHMMSS>``, e.g.
    ``sunflower-metro_maskppo-warm_s0_20261126-113000``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    algo = f"{cfg.algo}-{cfg.tag}" if cfg.tag else cfg.algo
    return f"{scenario_label(cfg)}_{algo}_s{cfg.seed}_{stamp}"


def dump_run_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (readable by :func:`read_run_config`), atomically."""
    write_text_atomic(path, yaml.safe_dump(cfg.model_dump(), sort_keys=False))


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config of a run folder."""
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise CheckpointNotFoundError(f"{root}: is a file, not a run folder")
    path = RunPaths(root).config
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: missing (is {run_dir} a millinet run folder?)")
    return validate_train_config(read_yaml(path), str(path))


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``metrics.json``, or None if it has none yet."""
    path = RunPaths(Path(run_dir)).metrics
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def read_clock(run_dir: str | Path) -> dict[str, float]:
    """``{"wall_s", "env_s"}`` trained so far: ``clock.json`` (written during training), else
    ``metrics.json`` of a run written before it existed, else zeros."""
    paths = RunPaths(Path(run_dir))
    for path in (paths.clock, paths.metrics):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                return {k: float(data.get(k) or 0.0) for k in ("wall_s", "env_s")}
            except (OSError, ValueError, AttributeError) as exc:
                raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    return {"wall_s": 0.0, "env_s": 0.0}


def write_clock(run_dir: str | Path, wall_s: float, env_s: float, timesteps: int) -> None:
    """Record the wall time trained so far (atomically, cheap enough for every rollout)."""
    data = {"wall_s": wall_s, "env_s": env_s, "timesteps": timesteps}
    write_text_atomic(RunPaths(Path(run_dir)).clock, json.dumps(data) + "\n")


# --------------------------------------------------------------------------- saving
def save_checkpoint(model, paths: RunPaths) -> Path:
    """The periodic checkpoint at the model's step count: ``vecnormalize_<steps>_steps.pkl``
    first, then ``model_<steps>_steps.zip``, each written atomically; returns the model path."""
    model_path, norm_path = paths.model(str(int(model.num_timesteps)))
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None:
        atomic_write(norm_path, vecnorm.save)
    atomic_write(model_path, model.save)
    return model_path


def save_named(model, paths: RunPaths, checkpoint: str, extra: dict[str, str] | None = None):
    """Write the named checkpoint ``best``, ``last`` or ``pretrained``: the model, its
    VecNormalize and ``extra`` text files (name -> content) built in a temporary folder,
    then swapped in whole."""
    folder_name, model_file = NAMED_FILES[checkpoint]
    target = paths.root / folder_name
    tmp = new_sibling_dir(target)
    try:
        model.save(tmp / model_file)
        vecnorm = model.get_vec_normalize_env()
        if vecnorm is not None:
            vecnorm.save(tmp / "vecnormalize.pkl")
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- the lock
class RunLockedError(CheckpointError):
    """Another process is training into the run folder."""


class RunLock:
    """``train.lock``: one training process per run folder.

    The holder keeps an exclusive ``flock`` on the file for as long as it trains and writes
    its PID, host and start time into it. The operating system drops the ``flock`` when the
    holder dies, however it dies (Ctrl-C, SIGKILL, a crash), so a lock file nobody holds is
    stale by definition: the next process takes it over and says whose it was.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, root: str | Path) -> RunLock:
        """Take the lock of the run folder ``root`` or raise :class:`RunLockedError` naming
        the process that holds it."""
        import fcntl

        path = RunPaths(Path(root)).lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # never removed: see release()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe_holder(path)
            os.close(fd)
            raise RunLockedError(
                f"{root}: another process is training into this run folder ({holder}); "
                f"wait for it or stop it (lock file {path})"
            ) from None
        stale = _describe_holder(path, stale=True)
        if stale:
            print(f"{root}: took over a stale lock ({stale})", file=sys.stderr)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Empty the lock file and drop the lock (idempotent). The file stays: removing it
        races with anything copying the folder while training goes on (Ray Tune syncs a
        trial's run folders while another seed of the trial still trains), and an empty,
        unlocked file means "nobody trains here"."""
        if self._fd < 0:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = -1


def _describe_holder(path: Path, stale: bool = False) -> str:
    """Who holds (or, ``stale``, held) the lock file: ``PID 123 on host, since ...``; empty
    for an empty file."""
    try:
        info = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return "" if stale else "a process whose lock file is unreadable"
    if not isinstance(info, dict):
        return "" if stale else "an unknown process"
    text = f"PID {info.get('pid')} on {info.get('host')}, since {info.get('since_utc')}"
    return f"left by {text}; that process no longer holds it" if stale else text


def algo_class(algo: str):
    """The SB3 class of a config's ``algo``: MaskablePPO or PPO."""
    if algo == "maskppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    from stable_baselines3 import PPO

    return PPO


def load_model(cfg: TrainConfig, path: Path, env=None):
    """The SB3 model saved at ``path`` (on CPU), attached to ``env`` if given."""
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{path}: missing (is the run finished, this checkpoint saved?)"
        )
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a model zip, the file is truncated or corrupted")
    try:
        return algo_class(cfg.algo).load(str(path), env=env, device="cpu")
    except Exception as exc:  # SB3 raises assertions, zip, pickle and torch errors alike
        raise CheckpointError(
            f"{path}: cannot load the model, the file is truncated or corrupted or was saved "
            f"for another algorithm or env ({type(exc).__name__}: {exc})"
        ) from None


def load_vecnormalize(path: Path):
    """The ``VecNormalize`` statistics pickled at ``path`` (no venv attached)."""
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{path}: missing (and config.yaml does not say normalize.enabled: false)"
        )
    try:
        with open(path, "rb") as fh:
            vecnorm = pickle.load(fh)
    except Exception as exc:  # unpickling can raise nearly anything on a damaged file
        raise CheckpointError(
            f"{path}: cannot load the VecNormalize statistics, the file is truncated or "
            f"corrupted ({type(exc).__name__}: {exc})"
        ) from None
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(vecnorm, VecNormalize):
        raise CheckpointError(f"{path}: not a VecNormalize pickle ({type(vecnorm).__name__})")
    return vecnorm


@dataclass
class Checkpoint:
    """One checkpoint of a run, loaded on CPU with its normalisation statistics."""

    run_dir: Path
    name: str  # best | last | pretrained | <steps>
    model_path: Path
    model: Any  # sb3_contrib.MaskablePPO or stable_baselines3.PPO
    vecnormalize: Any | None  # VecNormalize (no venv attached), None if trained without
    config: TrainConfig
    metrics: dict[str, Any] | None
    K: int

    @property
    def agent_classes(self) -> tuple[str, ...]:
        """Classes the policy was trained to decide (the others get the nearest rule)."""
        return tuple(self.config.env.agent_classes)

    @property
    def norm_obs(self) -> bool:
        """Whether observations are normalised before the network sees them."""
        return self.vecnormalize is not None and bool(self.vecnormalize.norm_obs)

    def normalize(self, observations: np.ndarray) -> np.ndarray:
        """SB3's own observation normalisation (identity when ``norm_obs`` is off)."""
        if not self.norm_obs:
            return np.asarray(observations, dtype=np.float32)
        return self.vecnormalize.normalize_obs(observations)


def load_checkpoint(run_dir: str | Path, checkpoint: str = "best") -> Checkpoint:
    """Load a run's checkpoint (see the module docstring) and check that it acts on the
    featuriser's observation. Raises :class:`CheckpointError` naming the file."""
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise CheckpointNotFoundError(f"{root}: is a file, not a run folder")
    if not root.is_dir():
        raise CheckpointNotFoundError(f"{root}: run folder not found")
    check_checkpoint_name(checkpoint, str(root))
    try:
        cfg = read_run_config(root)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    model_path, norm_path = RunPaths(root).model(checkpoint)
    model = load_model(cfg, model_path)
    vecnorm = load_vecnormalize(norm_path) if cfg.normalize.enabled else None
    n = getattr(model.action_space, "n", None)
    if n is None:
        raise CheckpointError(f"{model_path}: action space {model.action_space} is not Discrete")
    k = int(n)
    shape = getattr(model.observation_space, "shape", None)
    if shape != (observation_size(k),):
        raise CheckpointError(
            f"{model_path}: observation shape {shape} is not the featuriser's "
            f"({observation_size(k)},) for K = {k}"
        )
    # VecNormalize(norm_obs=False) has no obs_rms at all; attribute lookups of missing names on
    # an unpickled VecNormalize recurse, hence vars().
    if vecnorm is not None and vecnorm.norm_obs:
        rms = vars(vecnorm).get("obs_rms")
        if rms is None or np.shape(rms.mean) != shape:
            got = "missing" if rms is None else np.shape(rms.mean)
            raise CheckpointError(f"{norm_path}: observation statistics {got} do not match {shape}")
    return Checkpoint(root, checkpoint, model_path, model, vecnorm, cfg, read_metrics(root), k)
