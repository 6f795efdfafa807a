"""AppKeys owned by ``signaling`` (declared here, not in server/keys.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.directory import BookingsDirectory, Directory
from signaling.lifecycle import Lifecycle
from signaling.rooms import Hub

HUB = web.AppKey("signaling_hub", Hub)
LIFECYCLE = web.AppKey("signaling_lifecycle", Lifecycle)
# Tests may put another Directory here before the app starts; the default is bookings'.
DIRECTORY: web.AppKey[Directory] = web.AppKey("signaling_directory")

__all__ = ["DIRECTORY", "HUB", "LIFECYCLE", "BookingsDirectory"]
