"""lockgate benchmarks: `python -m bench.run` (see ../../shared/BENCHMARKS.md)."""
