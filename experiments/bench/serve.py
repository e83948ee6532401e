"""``millinet bench serve``: decision latency of an exported policy, in process and over HTTP.

Measured (targets recorded next to the figures, never asserted):

a. **in process, batch 1**: featurise + infer per decision on real engine inputs
   (sunflower-metro under the nearest-site rule), p50/p99/p99.9 in us, for the exported ONNX
   policy through the runtime's public ``decide`` (validated featuriser, score) and through
   ``act(featurize_rows(...))`` (the simulator's path), and for the *torch* policy of the same
   checkpoint: SB3's ``normalize_obs`` + ``MaskablePPO.predict`` and a bare ``torch.no_grad``
   forward. One thread each (onnxruntime intra-op 1, ``torch.set_num_threads(1)``).
b. **HTTP on loopback**: ``millinet serve`` in a child process, request logging on. An
   open-loop load generator (asyncio, raw HTTP/1.1 keep-alive, at most ``connections`` in
   flight) sends ``POST /v1/decide`` at a fixed rate on a precomputed schedule for
   ``duration_s``; latency is taken from the *scheduled* send time, so a slow server cannot hide
   queueing by slowing the client down (no coordinated omission). Also the latency from the
   actual send, the client's own lateness, and the sustained req/s of closed-loop clients
   (1 and 8 connections) and of the batch endpoint. A second open-loop run at a quarter of the
   rate shows the latency away from saturation.

Without ``policy_dir`` it benchmarks an *untrained* MaskablePPO with the default MlpPolicy
(what ``millinet train`` produces, same shapes and cost; the weights do not change latency) with
VecNormalize statistics fitted on engine observations, exported like any run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from millinet.experiments.bench.benchmarks import load_average, machine_info, write_result

TARGETS = {"in_process_p99_us_max": 100.0, "http_p99_ms_max_at_1000_rps": 2.0}


def _log(msg: str) -> None:
    print(f"bench serve: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs
def engine_inputs(n: int, seed: int = 0) -> list[tuple[tuple, list, np.ndarray]]:
    """(task row, telemetry rows, mask) of ``n`` consecutive sunflower-metro arrivals placed by
    the nearest-site rule: what a scheduler sees in a loaded city."""
    from millinet.envs.engine import Engine
    from millinet.envs.scenario import load_scenario
    from millinet.envs.simulation import nearest_slot

    engine = Engine(load_scenario("sunflower-metro"), seed)
    out = []
    for _ in range(n):
        a = engine.next_arrival()
        out.append((engine.task_row(a), engine.telemetry_rows(a), engine.mask(a).copy()))
        engine.dispatch(a, nearest_slot(engine, a))
    return out


def make_untrained_run(run_dir: Path, inputs) -> Path:
    """A run folder (best/ and final/) with an untrained default MaskablePPO and VecNormalize
    statistics of the given inputs' observations."""
    import gymnasium
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import millinet.envs  # noqa: F401  (registers the env)
    from millinet.agents.run_folder import dump_run_config
    from millinet.agents.train_config import validate_train_config
    from millinet.envs.features import featurize_rows

    venv = VecNormalize(DummyVecEnv([lambda: gymnasium.make("millinet/Placement-v0")]))
    venv.obs_rms.update(np.array([featurize_rows(t, r) for t, r, _ in inputs], dtype=np.float64))
    model = MaskablePPO("MlpPolicy", venv, seed=0, device="cpu")
    for sub, name in (("best", "best_model"), ("final", "model")):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
        model.save(run_dir / sub / name)
        venv.save(run_dir / sub / "vecnormalize.pkl")
    dump_run_config(
        validate_train_config({"tag": "untrained"}, "bench serve"), run_dir / "config.yaml"
    )
    venv.close()
    return run_dir


# --------------------------------------------------------------------------- in process
BLOCK = 2000
"""Calls per block for the per-block p99 (interference from other processes shows as blocks
much worse than the rest)."""


def _percentiles_us(ns: np.ndarray) -> dict:
    us = ns / 1e3
    blocks = [np.percentile(us[i : i + BLOCK], 99) for i in range(0, us.size - BLOCK + 1, BLOCK)]
    return {
        "n": int(us.size),
        "p50_us": round(float(np.percentile(us, 50)), 2),
        "p99_us": round(float(np.percentile(us, 99)), 2),
        "p999_us": round(float(np.percentile(us, 99.9)), 2),
        "mean_us": round(float(us.mean()), 2),
        "p99_us_per_block": [round(float(b), 1) for b in blocks],
        "p99_us_best_block": round(float(min(blocks)), 2) if blocks else None,
    }


def time_calls(fn: Callable, inputs, n: int, warmup: int = 1000) -> dict:
    """Latency of ``fn(*inputs[i % len])`` per call (perf_counter_ns), GC paused."""
    for i in range(min(warmup, n)):
        fn(*inputs[i % len(inputs)])
    samples = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(n):
            args = inputs[i % len(inputs)]
            t0 = clock()
            fn(*args)
            samples[i] = clock() - t0
    finally:
        gc.enable()
    return _percentiles_us(samples)


def bench_in_process(folder: Path, run_dir: Path, inputs, n: int) -> dict:
    import torch

    from millinet.agents.export import ExportGraph, SB3PredictPolicy
    from millinet.agents.run_folder import load_checkpoint
    from millinet.envs.features import featurize, featurize_rows
    from millinet.scheduler.runtime import load_policy_folder

    torch.set_num_threads(1)
    policy = load_policy_folder(folder, threads=1)
    arrays = [(np.array(t), np.array(r), m) for t, r, m in inputs]
    run = load_checkpoint(run_dir, "best")
    torch_policy = SB3PredictPolicy(run)
    graph = ExportGraph(run).eval()

    def torch_forward(task, rows, mask):
        with torch.no_grad():
            obs = torch.from_numpy(featurize_rows(task, rows)).unsqueeze(0)
            action, _, _ = graph(obs, torch.from_numpy(mask).unsqueeze(0))
        return int(action[0])

    # Same decisions everywhere (a cheap sanity check of what is being timed).
    for t, r, m in inputs[:200]:
        obs = featurize_rows(t, r)
        assert policy.act(obs, m) == torch_policy.act(obs, m) == torch_forward(t, r, m)

    cases = {
        "onnx_decide": (lambda t, tel, m: policy.decide(t, tel, m), arrays),
        "onnx_featurize_rows_act": (lambda t, r, m: policy.act(featurize_rows(t, r), m), inputs),
        "featurize_only": (lambda t, tel, m: featurize(t, tel), arrays),
        "featurize_rows_only": (lambda t, r, m: featurize_rows(t, r), inputs),
        "onnx_infer_only": (
            lambda o, m: policy.act(o, m),
            [(featurize_rows(t, r), m) for t, r, m in inputs],
        ),
        "torch_sb3_predict": (
            lambda t, r, m: torch_policy.act(featurize_rows(t, r), m),
            inputs,
        ),
        "torch_forward": (torch_forward, inputs),
    }
    out = {}
    for name, (fn, args) in cases.items():
        k = n if not name.startswith("torch_sb3") else max(n // 4, 2000)
        out[name] = time_calls(fn, args, k)
        _log(f"in process {name}: p50 {out[name]['p50_us']} us, p99 {out[name]['p99_us']} us")
    return out


# --------------------------------------------------------------------------- HTTP
class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _open_loop(
    host: str, port: int, bodies: list[bytes], rate: float, duration_s: float, connections: int
) -> dict:
    n = int(rate * duration_s)
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await _Conn.open(host, port))
    from_schedule = np.zeros(n)
    from_send = np.zeros(n)
    lateness = np.zeros(n)
    statuses = np.zeros(n, dtype=np.int64)
    clock = time.perf_counter

    async def one(i: int, scheduled: float) -> None:
        conn = await pool.get()
        sent = clock()
        try:
            statuses[i] = await conn.post("/v1/decide", bodies[i % len(bodies)])
        finally:
            pool.put_nowait(conn)
        done = clock()
        from_schedule[i] = done - scheduled
        from_send[i] = done - sent
        lateness[i] = sent - scheduled

    # The schedule is kept by a thread in time.sleep (~0.1 ms precise; asyncio's own timers
    # have epoll's 1 ms granularity) that wakes the event loop for each request.
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task] = []
    all_sent = asyncio.Event()
    start = clock() + 0.05

    def launch(i: int, scheduled: float) -> None:
        tasks.append(loop.create_task(one(i, scheduled)))

    def ticker() -> None:
        for i in range(n):
            scheduled = start + i / rate
            wait = scheduled - clock()
            if wait > 0:
                time.sleep(wait)
            loop.call_soon_threadsafe(launch, i, scheduled)
        loop.call_soon_threadsafe(all_sent.set)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # let the ticker thread take the GIL promptly
    try:
        thread = threading.Thread(target=ticker, daemon=True)
        thread.start()
        await all_sent.wait()
        await asyncio.gather(*tasks)
        thread.join()
    finally:
        sys.setswitchinterval(switch)
    elapsed = clock() - start
    while not pool.empty():
        pool.get_nowait().close()

    def ms(a: np.ndarray) -> dict:
        return {
            "p50_ms": round(float(np.percentile(a, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(a, 99)) * 1e3, 3),
            "p999_ms": round(float(np.percentile(a, 99.9)) * 1e3, 3),
            "max_ms": round(float(a.max()) * 1e3, 3),
        }

    per_s = int(rate)
    seconds = [from_schedule[i : i + per_s] for i in range(0, n - per_s + 1, per_s)]
    return {
        "rate_rps": rate,
        "duration_s": duration_s,
        "requests": n,
        "connections_max": connections,
        "achieved_rps": round(n / elapsed, 1),
        "status_200": int((statuses == 200).sum()),
        "latency_from_schedule": ms(from_schedule),
        "p99_ms_per_second": [round(float(np.percentile(w, 99)) * 1e3, 2) for w in seconds],
        "latency_from_send": ms(from_send),
        "client_lateness": ms(lateness),
    }


async def _closed_loop(
    host: str, port: int, path: str, bodies: list[bytes], connections: int, duration_s: float
) -> dict:
    conns = [await _Conn.open(host, port) for _ in range(connections)]
    counts = [0] * connections
    ok = [0] * connections
    stop = time.perf_counter() + duration_s

    async def worker(j: int) -> None:
        i = j
        while time.perf_counter() < stop:
            status = await conns[j].post(path, bodies[i % len(bodies)])
            counts[j] += 1
            ok[j] += status == 200
            i += connections

    start = time.perf_counter()
    await asyncio.gather(*(worker(j) for j in range(connections)))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {
        "connections": connections,
        "requests": sum(counts),
        "status_200": sum(ok),
        "requests_per_s": round(sum(counts) / elapsed, 1),
    }


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _with_server_cpu(pid: int, run: Callable[[], dict]) -> dict:
    """``run()``'s result plus the server's CPU time per request (us)."""
    before = _cpu_s(pid)
    result = run()
    after = _cpu_s(pid)
    if before is not None and after is not None and result["requests"]:
        result["server_cpu_us_per_request"] = round((after - before) / result["requests"] * 1e6, 1)
    return result


def _server_side(log_path: Path, skip_lines: int) -> dict:
    """p50/p99 of the handling time the service logged itself (request in to response out of
    the app, without socket and HTTP parsing) for the decide requests after ``skip_lines``."""
    durations = []
    for line in log_path.read_text().splitlines()[skip_lines:]:
        parts = line.split()
        if "/v1/decide" in parts and parts[-1] == "ms":
            durations.append(float(parts[-2]))
    if not durations:
        return {}
    a = np.asarray(durations)
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }


def bench_http(
    folder: Path, inputs, rate: float, duration_s: float, log_path: Path, sustained_s: float = 3.0
) -> dict:
    from millinet.experiments.bench.service_process import running_service
    from millinet.scheduler.client import build_request

    bodies = [json.dumps(build_request(np.array(t), np.array(r), m)).encode() for t, r, m in inputs]
    batch_size = 64
    batches = [
        json.dumps({"requests": [json.loads(b) for b in bodies[i : i + batch_size]]}).encode()
        for i in range(0, len(bodies) - batch_size + 1, batch_size)
    ]
    with running_service(folder, log_path=log_path, log_level="info") as svc:
        host, port = "127.0.0.1", int(svc.url.rsplit(":", 1)[1])
        asyncio.run(_closed_loop(host, port, "/v1/decide", bodies, 4, min(2.0, sustained_s)))

        def open_loop_at(r: float, seconds: float) -> dict:
            _log(f"open loop: {r:g} req/s for {seconds:g} s ...")
            lines_before = len(log_path.read_text().splitlines())
            gc.disable()
            try:
                res = _with_server_cpu(
                    svc.pid, lambda: asyncio.run(_open_loop(host, port, bodies, r, seconds, 64))
                )
            finally:
                gc.enable()
            time.sleep(0.2)  # let the server's log catch up
            res["server_side"] = _server_side(log_path, lines_before)
            lat = res["latency_from_schedule"]
            _log(f"open loop {r:g} req/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
            return res

        open_loop = open_loop_at(rate, duration_s)
        light = open_loop_at(rate / 4, duration_s / 2)

        def closed(path: str, payloads: list[bytes], connections: int) -> dict:
            run = _closed_loop(host, port, path, payloads, connections, sustained_s)
            return _with_server_cpu(svc.pid, lambda: asyncio.run(run))

        sustained = {f"decide_{c}_connections": closed("/v1/decide", bodies, c) for c in (1, 8)}
        res = closed("/v1/decide/batch", batches, 2)
        res["decisions_per_s"] = round(res["requests_per_s"] * batch_size, 1)
        res["batch_size"] = batch_size
        sustained["batch_2_connections"] = res
        _log(
            "sustained: "
            + ", ".join(f"{k} {v['requests_per_s']:,.0f} req/s" for k, v in sustained.items())
        )
    logged = sum(1 for line in log_path.read_text().splitlines() if "POST /v1/decide" in line)
    return {
        "server": "millinet serve: FastAPI + uvicorn, 1 process, request log (info) to a file",
        "client": "asyncio raw HTTP/1.1 keep-alive in the benchmark process",
        "open_loop_decide": open_loop,
        "open_loop_decide_quarter_rate": light,
        "sustained": sustained,
        "requests_logged": logged,
    }


# --------------------------------------------------------------------------- entry point
def bench_serve(
    out_dir: str,
    policy_dir: str | None = None,
    rate: float = 1000.0,
    duration_s: float = 10.0,
    n_in_process: int = 20_000,
    sustained_s: float = 3.0,
    n_inputs: int = 4000,
) -> dict:
    """Run the serving benchmark and write ``<out_dir>/serve.json``; returns the result.

    ``rate`` (req/s) and ``duration_s``: the open-loop HTTP load; ``n_in_process``: timed calls
    per in-process case; ``sustained_s``: seconds per closed-loop throughput run; ``n_inputs``:
    engine arrivals used as request inputs. ``policy_dir``: an exported folder to measure
    instead of an untrained default-architecture policy (its run folder must be readable
    for the torch comparison)."""
    from millinet.agents.export import export_policy

    started = time.perf_counter()
    import onnxruntime
    import torch

    machine = machine_info(onnxruntime=onnxruntime.__version__, torch=torch.__version__)
    inputs = engine_inputs(n_inputs)
    with tempfile.TemporaryDirectory(prefix="millinet-bench-serve-") as tmp:
        tmp_path = Path(tmp)
        if policy_dir is None:
            run_dir = make_untrained_run(tmp_path / "untrained-run", inputs)
            folder = tmp_path / "exported"
            export_policy(run_dir, folder, "best")
            policy_desc = "untrained MaskablePPO MlpPolicy (default net_arch), VecNormalize folded"
        else:
            folder = Path(policy_dir)
            manifest = json.loads((folder / "manifest.json").read_text())
            run_dir = Path(manifest["source"]["run_dir"])
            policy_desc = manifest["model_version"]
        _log(f"policy: {policy_desc}")
        in_process = bench_in_process(folder, run_dir, inputs, n_in_process)
        http = bench_http(folder, inputs, rate, duration_s, tmp_path / "serve.log", sustained_s)

    headline_in = in_process["onnx_decide"]["p99_us"]
    headline_http = http["open_loop_decide"]["latency_from_schedule"]["p99_ms"]
    result = {
        "benchmark": "serve",
        "command": "millinet bench serve",
        "argv": sys.argv,
        "machine": machine,
        "targets": TARGETS,
        "policy": policy_desc,
        "summary": {
            "in_process_p50_us": in_process["onnx_decide"]["p50_us"],
            "in_process_p99_us": headline_in,
            "in_process_p99_us_best_block": in_process["onnx_decide"]["p99_us_best_block"],
            "in_process_meets_target": headline_in <= TARGETS["in_process_p99_us_max"],
            "torch_sb3_p99_us": in_process["torch_sb3_predict"]["p99_us"],
            "torch_forward_p99_us": in_process["torch_forward"]["p99_us"],
            "http_p99_ms_at_rate": headline_http,
            "http_p99_ms_best_second": min(http["open_loop_decide"]["p99_ms_per_second"] or [None]),
            "http_server_side_p99_ms": http["open_loop_decide"]["server_side"].get("p99_ms"),
            "http_p99_ms_at_quarter_rate": http["open_loop_decide_quarter_rate"][
                "latency_from_schedule"
            ]["p99_ms"],
            "http_rate_rps": rate,
            "http_meets_target": headline_http <= TARGETS["http_p99_ms_max_at_1000_rps"],
            "http_sustained_rps": http["sustained"]["decide_8_connections"]["requests_per_s"],
        },
        "in_process": in_process,
        "http": http,
        "total_wall_s": round(time.perf_counter() - started, 1),
        "load_average_1min_at_end": load_average(),
        "note": "in process: one decision per call, batch 1, one thread; onnx_decide is the "
        "runtime's public API (validated featuriser + inference + score). HTTP latency is "
        "from the scheduled send time (open loop); the client shares the machine's cores with "
        "the server. The *_best_block / *_best_second figures are the quietest stretch of the "
        "same run: compare them with the overall p99 and the load averages to judge how much "
        "other processes interfered; meets_target uses the overall p99.",
    }
    _log(f"wrote {write_result(result, out_dir, 'serve')}")
    return result
