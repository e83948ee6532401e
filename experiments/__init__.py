"""millinet's command line, evaluation harness, sweeps, benchmarks and analysis."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The shipped training and sweep configs (``experiments/configs/*.yaml``)."""
