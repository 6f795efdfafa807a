"""AppKeys owned by ``signaling`` (declared here, not in server/keys.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.directory import CoreDirectory, Directory
from signaling.engine import Engine

ENGINE = web.AppKey("signaling_engine", Engine)
# The directory the engine and the pre-call endpoints read consultations through.
DIRECTORY: web.AppKey[Directory] = web.AppKey("signaling_directory")
# Tests may shorten the grace period and the write deadline (seconds) before the app starts.
GRACE_S: web.AppKey[float] = web.AppKey("signaling_grace_s")
WRITE_DEADLINE_S: web.AppKey[float] = web.AppKey("signaling_write_deadline_s")

__all__ = ["DIRECTORY", "ENGINE", "GRACE_S", "WRITE_DEADLINE_S", "CoreDirectory"]
