"""Benchmark harness for signalr_django: load generator, reference servers and runner."""
