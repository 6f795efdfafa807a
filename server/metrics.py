"""Prometheus metrics: one registry per app (tests run several apps in one process)."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from server import errors
from server.keys import CLIENT_IP, CONFIG, METRICS


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("casa_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("casa_http_request_seconds", "HTTP request duration",
                                 ["route"], registry=registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.db_up = Gauge("casa_database_up", "1 when the last health check reached the DB",
                           registry=registry)
        # Errors raised in browsers (server.client_errors), by page kind and error name: both
        # from fixed lists, so the label set stays small.
        self.client_errors = Counter("casa_client_errors", "Errors reported by browsers",
                                     ["page", "name"], registry=registry)


_HTTP = web.AppKey("http_metrics", HttpMetrics)


def setup(app: web.Application) -> None:
    registry = CollectorRegistry()
    app[METRICS] = registry
    app[_HTTP] = HttpMetrics(registry)
    app.router.add_get("/metrics", metrics_view, name="metrics")


def http(app: web.Application) -> HttpMetrics:
    return app[_HTTP]


def observe_request(app: web.Application, method: str, route: str, status: int,
                    seconds: float) -> None:
    m = app.get(_HTTP)
    if m is None:
        return
    m.requests.labels(method, route, str(status)).inc()
    m.latency.labels(route).observe(seconds)


def count_client_error(app: web.Application, page: str, name: str) -> None:
    m = app.get(_HTTP)
    if m is not None:
        m.client_errors.labels(page, name).inc()


async def metrics_view(request: web.Request) -> web.Response:
    # Counts of waiting consultations and errors are operational data, not for the public:
    # a scraper on this machine, or one presenting CASA_METRICS_TOKEN.
    token = request.app[CONFIG].metrics_token
    presented = request.headers.get("Authorization", "")
    allowed = _loopback(request[CLIENT_IP]) or (
        token is not None and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()))
    if not allowed:
        raise errors.ApiError(errors.FORBIDDEN)
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
