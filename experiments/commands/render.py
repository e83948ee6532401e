"""``millinet render``: the city map as a PNG, or an episode as an MP4 video."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from millinet.agents.specs import chooser_for
from millinet.envs.engine import Engine
from millinet.envs.errors import require_extra
from millinet.envs.files import check_output_file
from millinet.envs.render import CityRenderer, save_png
from millinet.envs.scenario import load_scenario
from millinet.envs.workload import WorkloadEndedError
from millinet.experiments.commands.simulate import add_run_arguments, parse_duration, seed_of
from millinet.experiments.errors import UserError

FORMATS = {".png": "render", ".mp4": "video"}  # suffix -> the extra it needs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="draw the city map (PNG) or an episode video (MP4)",
        description="Run a scenario under a policy and draw the city: nodes at their "
        "coordinates, sites by tier, links coloured by utilisation, site queues, the pending "
        "task's candidates and the policy's choice, the clock and the violations so far. "
        "--out city.png draws one picture at --at; --out episode.mp4 one frame every "
        "--frame-ms of simulated time up to --duration.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="city.png or episode.mp4")
    add_run_arguments(p)
    p.add_argument(
        "--at", type=parse_duration, default=0.02, help="PNG: simulated time (default 20ms)"
    )
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=0.1,
        help="MP4: simulated time of the episode (default 100ms)",
    )
    p.add_argument(
        "--frame-ms",
        type=float,
        default=1.0,
        help="MP4: simulated ms between frames (default 1)",
    )
    p.add_argument("--fps", type=int, default=10, help="MP4: frames per second (default 10)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> Path:
    extra = FORMATS.get(Path(args.out).suffix.lower())
    if extra is None:
        raise UserError(f"--out {args.out}: write a .png picture or an .mp4 video")
    out = check_output_file(args.out, "--out")
    if not (0 < args.frame_ms <= 1000) or not (1 <= args.fps <= 120):
        raise UserError("--frame-ms must be in (0, 1000] and --fps in [1, 120]")
    require_extra(extra, f"millinet render --out *{out.suffix.lower()}")
    return out


def run(args: argparse.Namespace) -> int:
    out = _check(args)
    scenario = load_scenario(args.scenario)
    seed = seed_of(args, scenario)
    choose = chooser_for(args.policy, scenario, seed=seed)
    engine = Engine(scenario, seed)
    renderer = CityRenderer(scenario)
    video = out.suffix.lower() == ".mp4"
    step_s = args.frame_ms * 1e-3 if video else args.at
    n_frames = max(1, round(args.duration / step_s)) if video else 1
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    writer = None
    if video:
        import imageio.v2 as imageio

        writer = imageio.get_writer(tmp, fps=args.fps, codec="libx264", quality=7, format="FFMPEG")
    bar = tqdm(total=n_frames, unit="frame", desc=f"render {scenario.name}", file=sys.stderr,
               disable=None, leave=False)  # fmt: skip
    frames = decisions = 0
    try:
        while frames < n_frames:
            try:
                arrival = engine.next_arrival()
            except WorkloadEndedError:
                break
            slot = choose(engine, arrival)
            if arrival.time_s >= (frames + 1) * step_s:
                frame = renderer.frame(engine, arrival, (arrival, slot), decisions)
                if writer is not None:
                    writer.append_data(frame)
                else:
                    save_png(str(tmp), frame)
                frames += 1
                bar.update(1)
            engine.dispatch(arrival, slot)
            decisions += 1
        if writer is not None:
            writer.close()
            writer = None
        if frames == 0:
            raise UserError(f"{scenario.name}: no task arrived before the first frame")
        os.replace(tmp, out)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        renderer.close()
    what = f"{frames} frames at {args.fps} fps" if video else f"t = {engine.now * 1e3:.1f} ms"
    print(
        f"wrote {out} ({renderer.size[0]}x{renderer.size[1]}, {what}): scenario "
        f"{scenario.name}, policy {args.policy}, seed {seed}"
    )
    return 0
