"""Shared fixtures: ``ray_env`` (real Ray processes on loopback, ``_ray_cluster.py``)."""

pytest_plugins = ("_ray_cluster",)
