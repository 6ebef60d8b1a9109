"""Reproducible measurements of robo against baselines measured in the same run.

``python -m benchmarks [--quick]`` runs them all; each module also runs alone,
e.g. ``python -m benchmarks.cli_latency``. See docs/benchmarks.md.
"""
