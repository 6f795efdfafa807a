"""Staff pages of the bookings package (calendar, booking form, today, patient)."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    """Page routes; filled in below as the pages land."""
