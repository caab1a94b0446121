"""Prometheus series of replica pools (an ``openai`` model's upstreams), read at each scrape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.engine import ReplicaPool

STATES = ("up", "down", "ejected")


class ReplicaPoolCollector(Collector):
    def __init__(self, pools: Sequence[ReplicaPool]) -> None:
        self._pools = tuple(pools)

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "upstream"]
        state = GaugeMetricFamily(
            "aihub_upstream_state", "1 for the state each upstream is in", labels=[*labels, "state"]
        )
        outstanding = GaugeMetricFamily(
            "aihub_upstream_outstanding_requests", "Requests in flight to each upstream", labels=labels
        )
        requests = CounterMetricFamily(
            "aihub_upstream_requests", "Requests sent to each upstream", labels=labels
        )
        errors = CounterMetricFamily(
            "aihub_upstream_errors", "Requests an upstream failed (connection, timeout, 5xx)", labels=labels
        )
        ejections = CounterMetricFamily(
            "aihub_upstream_ejections", "Times an upstream was ejected after failures", labels=labels
        )
        for pool in self._pools:
            for replica in pool.states():
                key = [pool.name, replica.url]
                for name in STATES:
                    state.add_metric([*key, name], 1.0 if replica.state == name else 0.0)
                outstanding.add_metric(key, replica.outstanding)
                requests.add_metric(key, replica.requests)
                errors.add_metric(key, replica.errors)
                ejections.add_metric(key, replica.ejections)
        yield from (state, outstanding, requests, errors, ejections)
