"""Benchmarks: latency measurement, sweeps over engines, precisions, input sizes and batches,
the runners that measure their cells, hardware statistics, model summaries, the environment
record and the ``dk.bench/1`` result documents. Behind ``dk bench``, ``dk run bench`` and the ray
plugin; internal (not part of the plugin API, see docs/api.md)."""
