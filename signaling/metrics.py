"""Signalling metrics in the app's Prometheus registry (served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

_SETUP_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)


class SignalMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.peers = Gauge("casa_signaling_peers", "WebSockets connected to this instance",
                           registry=registry)
        self.consultations = Gauge("casa_signaling_consultations",
                                   "Consultations with a socket on this instance, by state",
                                   ["state"], registry=registry)
        # Counted in a plain int on the hot path (a prometheus Counter takes a lock per
        # increment) and read when scraped.
        self.relayed = 0
        registry.register(_RelayedCollector(self))
        self.errors = Counter("casa_signaling_errors", "Protocol errors sent, by code",
                              ["code"], registry=registry)
        self.bus_rejected = Counter("casa_signaling_bus_rejected",
                                    "Bus payloads refused (malformed, forged, replayed, stale)",
                                    ["reason"], registry=registry)
        self.unauthenticated = Gauge("casa_signaling_unauthenticated",
                                     "WebSockets upgraded that have not said hello yet",
                                     registry=registry)
        self.unauthenticated_refused = Counter(
            "casa_signaling_unauthenticated_refused",
            "WebSocket upgrades refused (429): too many sockets without hello from one address",
            registry=registry)
        self.hello_seconds = Histogram("casa_signaling_hello_seconds",
                                       "hello received to welcome sent", registry=registry,
                                       buckets=_SETUP_BUCKETS)
        self.setup_seconds = Histogram("casa_signaling_call_setup_seconds",
                                       "admit (or join) to the first answer relayed",
                                       registry=registry, buckets=_SETUP_BUCKETS)

    def bind(self, peers: Callable[[], int], waiting: Callable[[], int],
             in_call: Callable[[], int], unauthenticated: Callable[[], int]) -> None:
        """Gauges read live state when scraped, so they cannot drift."""
        self.peers.set_function(peers)
        self.unauthenticated.set_function(unauthenticated)
        self.consultations.labels("waiting").set_function(waiting)
        self.consultations.labels("in_call").set_function(in_call)


class _RelayedCollector(Collector):
    def __init__(self, metrics: SignalMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily("casa_signaling_messages_relayed",
                                    "Messages relayed to another peer",
                                    value=self.metrics.relayed)]
