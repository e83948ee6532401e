"""``millinet bench serve`` machinery on a tiny load (timings are recorded, never asserted)."""

import json

from millinet.experiments.bench.serve import TARGETS, bench_serve


def test_bench_serve_writes_its_json(tmp_path):
    result = bench_serve(
        str(tmp_path), rate=200.0, duration_s=0.5, n_in_process=1000, sustained_s=0.3, n_inputs=300
    )
    saved = json.loads((tmp_path / "serve.json").read_text())
    assert saved["command"] == "millinet bench serve" and saved["targets"] == TARGETS
    assert saved["summary"] == result["summary"]
    for case in ("onnx_decide", "torch_sb3_predict", "torch_forward", "featurize_only"):
        assert saved["in_process"][case]["p50_us"] > 0
    loop = saved["http"]["open_loop_decide"]
    assert loop["requests"] == 100 and loop["status_200"] == 100
    assert saved["http"]["open_loop_decide_quarter_rate"]["requests"] == 12  # 50 req/s, 0.25 s
    assert loop["server_side"]["n"] >= 100
    assert saved["http"]["sustained"]["decide_8_connections"]["requests_per_s"] > 0
    assert saved["http"]["requests_logged"] >= 100
