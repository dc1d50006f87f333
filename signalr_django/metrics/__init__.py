"""Prometheus metrics of a worker process (optional extra: `signalr-django[metrics]`).

`counters` holds plain Python counters that the hot paths update (only when
`SIGNALR["METRICS"]` is true) and imports nothing from prometheus_client; `collector`
turns them, and gauges read from the lifetime managers, into metric families at scrape
time; `views.metrics` serves them. See docs/metrics.md.
"""

from __future__ import annotations

from .counters import METRICS, Histogram, Metrics, hub_label

__all__ = ["METRICS", "Histogram", "Metrics", "hub_label"]
