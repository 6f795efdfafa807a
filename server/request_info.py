"""What a request says about its client: address, scheme, origin, and whether it wants JSON.

Small and importing nothing of Casa but the config key, so the request pipeline
(server.middleware), pages (server.pages), form outcomes (server.outcome) and the WebSocket
(signaling.ws) can all use it without importing each other.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from server.keys import CONFIG


def client_ip(request: web.Request) -> str:
    """The client's address; X-Forwarded-For is believed only from a configured proxy."""
    peer = request.remote or ""
    proxies = request.app[CONFIG].trusted_proxies
    if not proxies or not peer:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in net for net in proxies):
        return peer
    # Walk from the nearest hop back, skipping our own proxies; the first other is the client.
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(ip in net for net in proxies):
            return hop
    return peer


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    if from_trusted_proxy(request):
        return request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    return False


def from_trusted_proxy(request: web.Request) -> bool:
    proxies = request.app[CONFIG].trusted_proxies
    try:
        peer_ip = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer_ip in net for net in proxies)


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/") or request.path == "/healthz":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def route_name(request: web.Request) -> str:
    """The route's pattern (``/join/{token}``), never the raw path: paths may hold tokens."""
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def own_origin(request: web.Request) -> str:
    """The origin this server is reached at: the configured public one, else the one the
    request names (its Host, or a trusted proxy's X-Forwarded-Host and -Proto)."""
    config = request.app[CONFIG]
    if config.public_origin:
        return config.public_origin
    scheme = "https" if is_https(request) else "http"
    host = request.headers.get("X-Forwarded-Host") if from_trusted_proxy(request) else None
    return f"{scheme}://{host or request.host}"


def sent_by_another_site(request: web.Request) -> bool:
    """A navigation another site started (a link or a redirect elsewhere). Browsers say so in
    ``Sec-Fetch-Site``; the GETs that forget a patient (``/join/done``, ``/kiosk/wipe``) do
    nothing for such a request, so a link on another page cannot sign a patient out."""
    return request.headers.get("Sec-Fetch-Site") == "cross-site"
