"""Pictures: rgb_array frames, Gymnasium's RecordVideo, ``millinet render`` PNG and MP4.

What a frame encodes is checked against the engine's own accounting (link utilisation from
``Engine.utilisation``, compute waits from the pools' free times), not against pixels of a
stored image; the video tests read the written files back with imageio.
"""

from __future__ import annotations

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
from gymnasium.wrappers import RecordVideo

import millinet.envs  # noqa: F401  (registers the env)
from millinet.envs import errors
from millinet.envs.engine import Engine
from millinet.envs.errors import MissingExtraError
from millinet.envs.render import CityRenderer
from millinet.envs.scenario import load_scenario
from millinet.envs.simulation import nearest_slot
from millinet.experiments.cli import main

SHAPE = (720, 960, 3)


@pytest.fixture(scope="module")
def city():
    return load_scenario("sunflower-metro")


def run_until(scenario, t_s: float, seed: int = 0):
    engine = Engine(scenario, seed)
    while True:
        a = engine.next_arrival()
        if a.time_s >= t_s:
            return engine, a
        engine.dispatch(a, nearest_slot(engine, a))


def test_a_frame_colours_links_by_the_engines_utilisation(city):
    engine, pending = run_until(city, 0.01)
    renderer = CityRenderer(city)
    frame = renderer.frame(engine, pending, (pending, 0))
    assert frame.shape == SHAPE and frame.dtype == np.uint8
    util = engine.utilisation(engine.now)["links"]  # busy / elapsed per direction, by name
    nodes = city.topology.nodes
    expected = [
        max(
            util[f"{nodes[lk.a].name}->{nodes[lk.b].name}"],
            util[f"{nodes[lk.b].name}->{nodes[lk.a].name}"],
        )
        for lk in city.topology.links
    ]
    drawn = renderer._links.get_array()
    np.testing.assert_allclose(drawn, np.minimum(expected, 1.0), rtol=1e-9)
    assert (drawn > 0).sum() >= 4  # the factories' uplinks at least carry traffic
    # the next frame shows the interval since this one, not the average since the start
    engine.dispatch(pending, 0)
    later = engine.next_arrival()
    busy_before = np.array(renderer._prev[1])
    t_before = renderer._prev[0]
    renderer.frame(engine, later)
    state = engine.queue_state()
    since = (state["link_busy_s"] - busy_before) / (engine.now - t_before)
    np.testing.assert_allclose(
        renderer._links.get_array(), np.minimum(since.reshape(-1, 2).max(axis=1), 1.0)
    )


def test_env_rgb_array_frames_are_deterministic_and_change(city):
    def frames(seed):
        env = gym.make("millinet/Placement-v0", scenario=city, render_mode="rgb_array", horizon=50)
        env.reset(seed=seed)
        out = [env.render()]
        for _ in range(30):
            env.step(int(env.unwrapped.action_masks().argmax()))
        out.append(env.render())
        env.close()
        return out

    a, b = frames(4), frames(4)
    assert a[0].shape == SHAPE
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.abs(a[0].astype(int) - a[1]).sum() > 1000


def test_record_video_records_an_episode(city, tmp_path):
    env = gym.make("millinet/Placement-v0", scenario=city, render_mode="rgb_array", horizon=12)
    env = RecordVideo(
        env, str(tmp_path / "videos"), episode_trigger=lambda e: e == 0, disable_logger=True
    )
    env.reset(seed=1)
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(int(env.unwrapped.action_masks().argmax()))
    env.close()
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    frames = [f for f in imageio.get_reader(videos[0], format="FFMPEG")]  # len() is inf
    assert len(frames) == 13  # the reset frame and one per step
    assert frames[0].shape == SHAPE
    diffs = [np.abs(f.astype(int) - g).mean() for f, g in zip(frames[:-1], frames[1:])]
    assert min(diffs) > 0  # every step changes the picture (clock, pending task, counts)


def test_rgb_array_needs_matplotlib_only_when_drawing(city, monkeypatch):
    monkeypatch.setitem(errors.EXTRAS, "render", ("no_such_module_for_millinet",))
    env = gym.make("millinet/Placement-v0", scenario=city, render_mode="rgb_array", horizon=5)
    env.reset(seed=0)  # SB3's make_vec_env asks for rgb_array: building must still work
    with pytest.raises(MissingExtraError, match=r"needs the 'render' extra .* pip install"):
        env.render()


def test_cli_render_png_and_mp4(tmp_path, capsys):
    png, mp4 = tmp_path / "city.png", tmp_path / "episode.mp4"
    assert main(["render", "--out", str(png), "--at", "5ms"]) == 0
    picture = imageio.imread(png)
    assert picture.shape[:2] == SHAPE[:2] and picture[..., :3].std() > 10
    assert main(["render", "--out", str(mp4), "--duration", "4ms", "--frame-ms", "1"]) == 0
    frames = [f for f in imageio.get_reader(mp4, format="FFMPEG")]
    assert len(frames) == 4 and frames[0].shape == SHAPE
    assert "4 frames at 10 fps" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.png", "episode.mp4"]


def test_cli_render_without_the_video_extra_says_which_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(errors.EXTRAS, "video", ("no_such_module_for_millinet",))
    assert main(["render", "--out", str(tmp_path / "e.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "needs the 'video' extra" in err[0] and "pip install 'millinet[video]'" in err[0]
    assert not list(tmp_path.iterdir())
    assert main(["render", "--out", str(tmp_path / "e.gif")]) == 2
    assert "write a .png picture or an .mp4 video" in capsys.readouterr().err
