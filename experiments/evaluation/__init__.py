"""Evaluation over many seeds: the harness, its plots and its markdown reports."""
