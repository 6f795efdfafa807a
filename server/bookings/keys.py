"""AppKeys owned by the bookings package."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from server.bookings.model import Booking, BookingError
from server.bookings.singleflight import Flights
from server.centres import Centre
from server.staff import Staff

# (clinician id, start, end or None for the service's length, service code), in UTC.
SlotKey = tuple[int, datetime, datetime | None, str]

# channel ('sms', 'email') -> sender; tests and deployments may plug in their own.
SENDERS = web.AppKey("bookings_senders", dict)
# Set when a message is queued, so the sender does not wait for its next poll.
OUTBOX_WAKE = web.AppKey("bookings_outbox_wake", asyncio.Event)
# Centre ids, read once: centres change only when server/data/centres.json does.
CENTRE_IDS = web.AppKey("bookings_centre_ids", set)
# The one read that refills CENTRE_IDS, shared by the requests that miss together.
CENTRE_FLIGHTS = web.AppKey("bookings_centre_flights", Flights[str, list[Centre]])
# Workflow contexts by request origin (api_bookings._ctx), at most a few entries.
CONTEXTS = web.AppKey("bookings_contexts", dict)
# Identical work in flight (server.bookings.singleflight): bearer-token lookups by token, and
# booking attempts by (clinician, start, end, service), so a storm at one slot asks PostgreSQL
# once instead of once per request.
TOKEN_FLIGHTS = web.AppKey("bookings_token_flights", Flights[bytes, Staff | None])
SLOT_FLIGHTS = web.AppKey("bookings_slot_flights",
                           Flights[SlotKey, Booking | BookingError])
