"""Placeholder: the benchmark suite is not written yet (see docs/benchmarks.md when it lands)."""

print("bench: no benchmarks yet (bench/run_all.py is a placeholder)")
