"""AppKeys owned by ``signaling`` (declared here, not in server/keys.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.bus import Bus
from signaling.directory import BookingsDirectory, Directory
from signaling.hub import Hub
from signaling.lifecycle import Lifecycle

HUB = web.AppKey("signaling_hub", Hub)
# The bus: tests cut its listening connection to check the refresh after a reconnect.
BUS = web.AppKey("signaling_bus", Bus)
LIFECYCLE = web.AppKey("signaling_lifecycle", Lifecycle)
# Tests may put another Directory here before the app starts; the default is bookings'.
DIRECTORY: web.AppKey[Directory] = web.AppKey("signaling_directory")

__all__ = ["BUS", "DIRECTORY", "HUB", "LIFECYCLE", "BookingsDirectory"]
