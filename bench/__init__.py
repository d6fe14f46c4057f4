"""Benchmarks (pytest-benchmark): run with ``make bench``; ``bench/RESULTS.md`` records the figures."""
