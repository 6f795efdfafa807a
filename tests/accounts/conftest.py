"""Fixtures of the staff accounts and patient corrections tests: the records keyring (the app
needs one), patients and bookings made through the real workflow."""

from __future__ import annotations

from tests.browser.conftest import live, live_server  # noqa: F401 (fixtures)
from tests.records.conftest import make_booking, make_patient, ring  # noqa: F401 (fixtures)
