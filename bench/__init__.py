"""Benchmarks: `make bench` (python -m bench). Each starts what it measures."""
