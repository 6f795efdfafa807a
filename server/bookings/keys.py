"""AppKeys owned by the bookings package."""

from __future__ import annotations

import asyncio

from aiohttp import web

# channel ('sms', 'email') -> sender; tests and deployments may plug in their own.
SENDERS = web.AppKey("bookings_senders", dict)
# Set when a message is queued, so the sender does not wait for its next poll.
OUTBOX_WAKE = web.AppKey("bookings_outbox_wake", asyncio.Event)
