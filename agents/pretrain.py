"""Optional warm start: imitate a heuristic (behaviour cloning) before PPO.

``pretrain.teacher`` in the training config names a heuristic (``millinet.agents.heuristics``).
Before the first PPO update the trainer

1. runs the teacher for ``pretrain.steps`` decisions in the *training* env stack (so
   VecNormalize's observation and return statistics are those PPO will continue from);
2. with ``pretrain.privileged``, the teacher decides from the oracle view of each state
   (``PlacementEnv.oracle_observation``: exact measurements now) while the student is fitted to
   the observation the scenario's telemetry gives: the student learns what full information
   would do from what the reports show (a privileged teacher);
3. with ``pretrain.dagger_rounds``, the fitted student then acts for ``pretrain.dagger_steps``
   decisions per round, the teacher labels the states the *student* visits, and the student is
   refitted on everything collected so far (DAgger, Ross et al. 2011);
4. fits the actor to the teacher's actions (cross-entropy on the masked logits) and the critic
   to the discounted, normalised returns of those episodes (Monte Carlo targets), for
   ``pretrain.epochs`` epochs.

PPO then fine-tunes from there. Teacher decisions are not counted in the PPO timestep count;
their wall time is (``metrics.json``'s ``wall_s`` and the ``pretrain/*`` scalars).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from millinet.agents.heuristics import make_heuristic
from millinet.agents.train_config import TrainConfig


def collect(venv, teacher, steps: int, gamma: float, privileged: bool = False, student=None):
    """Run ``venv`` for about ``steps`` env steps; raw observations, masks, the teacher's
    actions, normalised Monte-Carlo returns and the episode metrics.

    The teacher reads the oracle view if ``privileged`` (else the observation). Actions are the
    teacher's, or, if ``student`` (an SB3 model) is given, the student's (deterministic): then
    the teacher only labels the states the student visits (DAgger)."""
    from stable_baselines3.common.vec_env import VecNormalize

    n = venv.num_envs
    iters = max(steps // n, 1)
    obs = venv.reset()
    raw, masks, actions, rewards, dones = [], [], [], [], []
    episodes = []
    for _ in range(iters):
        normalised = obs
        if isinstance(venv, VecNormalize):
            obs = venv.get_original_obs()
        mask = np.stack(venv.env_method("action_masks"))
        seen = np.stack(venv.env_method("oracle_observation")) if privileged else obs
        label = np.array([teacher.act(seen[i], mask[i]) for i in range(n)])
        if student is None:
            act = label
        else:
            act, _ = student.predict(normalised, action_masks=mask, deterministic=True)
        next_obs, rew, done, infos = venv.step(act)
        raw.append(np.array(obs, dtype=np.float32))
        masks.append(mask)
        actions.append(label)
        rewards.append(rew)
        dones.append(done)
        obs = next_obs
        episodes += [i["episode_metrics"] for i in infos if "episode_metrics" in i]
    rewards_a, dones_a = np.array(rewards), np.array(dones)
    returns = np.zeros_like(rewards_a, dtype=np.float64)
    running = np.zeros(n)
    for t in range(iters - 1, -1, -1):
        running = rewards_a[t] + gamma * running * (1.0 - dones_a[t])
        returns[t] = running
    return {
        "raw": np.concatenate(raw),
        "masks": np.concatenate(masks),
        "actions": np.concatenate(actions),
        "returns": returns.reshape(-1),
        "episodes": episodes,
    }


def _fit(model, cfg: TrainConfig, data: dict[str, Any]) -> tuple[float, float]:
    """Fit ``model``'s actor to ``data``'s actions and its critic to the returns for
    ``pretrain.epochs`` epochs; returns (imitation accuracy, critic MSE) after fitting."""
    from millinet.agents.inference import actor_logits

    pc = cfg.pretrain
    vecnorm = model.get_vec_normalize_env()
    obs = data["raw"] if vecnorm is None else vecnorm.normalize_obs(data["raw"])
    obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    masks_t = torch.as_tensor(data["masks"])
    act_t = torch.as_tensor(data["actions"], dtype=torch.long)
    ret_t = torch.as_tensor(data["returns"], dtype=torch.float32)
    policy = model.policy
    policy.set_training_mode(True)
    opt = torch.optim.Adam(policy.parameters(), lr=pc.learning_rate)
    n = obs_t.shape[0]
    gen = torch.Generator().manual_seed(cfg.seed)
    use_mask = cfg.algo == "maskppo"
    for _ in range(pc.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, pc.batch_size):
            idx = perm[start : start + pc.batch_size]
            logits = actor_logits(policy, obs_t[idx])
            if use_mask:
                logits = logits.masked_fill(~masks_t[idx], -1e8)
            ce = torch.nn.functional.cross_entropy(logits, act_t[idx])
            value = policy.predict_values(obs_t[idx]).squeeze(-1)
            vloss = torch.nn.functional.mse_loss(value, ret_t[idx])
            loss = ce + pc.value_coef * vloss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.ppo.max_grad_norm)
            opt.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        logits = actor_logits(policy, obs_t)
        if use_mask:
            logits = logits.masked_fill(~masks_t, -1e8)
        acc = float((logits.argmax(dim=1) == act_t).float().mean())
        vloss = float(torch.nn.functional.mse_loss(policy.predict_values(obs_t).squeeze(-1), ret_t))
    return acc, vloss


def _violation_rate(episodes: list[dict]) -> float:
    v1 = [e["violation_rate_1ms"] for e in episodes]
    return float(np.nanmean(v1)) if v1 else float("nan")


def behaviour_clone(model, cfg: TrainConfig, logger=None) -> dict[str, Any]:
    """Warm-start ``model`` (SB3 PPO / MaskablePPO with its training env) by imitating
    ``cfg.pretrain.teacher`` (privileged and with DAgger rounds if configured); returns summary
    statistics (also logged as ``pretrain/*``)."""
    pc = cfg.pretrain
    t0 = time.perf_counter()
    venv = model.get_env()
    teacher = make_heuristic(pc.teacher)
    data = collect(venv, teacher, pc.steps, cfg.ppo.gamma, privileged=pc.privileged)
    teacher_rate = _violation_rate(data["episodes"])
    acc, vloss = _fit(model, cfg, data)
    student_rates = []
    for _ in range(pc.dagger_rounds):
        more = collect(
            venv, teacher, pc.dagger_steps, cfg.ppo.gamma, privileged=pc.privileged, student=model
        )
        student_rates.append(_violation_rate(more["episodes"]))
        data = {
            key: np.concatenate((data[key], more[key]))
            for key in ("raw", "masks", "actions", "returns")
        }
        acc, vloss = _fit(model, cfg, data)
    stats: dict[str, Any] = {
        "teacher": pc.teacher,
        "privileged": pc.privileged,
        "samples": int(len(data["actions"])),
        "accuracy": acc,
        "value_mse": vloss,
        "teacher_violation_rate_1ms": teacher_rate,
        "dagger_student_violation_rate_1ms": student_rates,
        "wall_s": time.perf_counter() - t0,
    }
    if logger is not None:
        for key in ("accuracy", "value_mse", "teacher_violation_rate_1ms", "wall_s"):
            logger.record(f"pretrain/{key}", stats[key])
        for r, rate in enumerate(student_rates):
            logger.record(f"pretrain/dagger_round_{r + 1}_violation_rate_1ms", rate)
        logger.dump(0)
    # PPO's first learn() must start from a fresh reset, not mid-episode teacher states.
    model._last_obs = None
    return stats
