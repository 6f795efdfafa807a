"""The nurse console's fixtures: the records keyring (measurements are notes), the live server
and Chromium of the browser tests, and a kiosk day at San Siro with the people around it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from server.consultations import store
from server.staff import Role, Staff
from tests.browser.conftest import DOB, live, live_server  # noqa: F401 (fixtures)
from tests.factories import Factories
from tests.records.conftest import ring  # noqa: F401 (fixture: the keyring of the app)


@dataclass
class KioskDay:
    """A kiosk visit at San Siro starting about now, its nurse, a colleague, a coordinator, the
    GP; a nurse of another centre; and bookings the console must not list."""

    nurse: Staff
    colleague: Staff
    coordinator: Staff
    gp: Staff
    stranger: Staff          # a nurse of Gratosoglio
    booking_id: int
    patient_id: int
    consultation: store.Consultation
    kiosk_id: int
    code: str
    home_booking_id: int     # a home video visit of San Siro today
    elsewhere_booking_id: int  # a kiosk visit of Gratosoglio today


def soon() -> datetime:
    """A start in five minutes (its join window open), on today's Rome date."""
    from tests.browser.conftest import soon as in_

    return datetime.now(UTC) + in_()


@pytest.fixture
async def day(factories: Factories) -> KioskDay:
    f = factories
    nurse = await f.staff(Role.NURSE, ("san-siro",), language="en", full_name="Nora Nurse")
    colleague = await f.staff(Role.NURSE, ("san-siro",), language="en",
                              full_name="Carla Colleague")
    coordinator = await f.staff(Role.COORDINATOR, ("san-siro",), language="en")
    gp = await f.staff(Role.GP, ("san-siro",), language="en", full_name="Gino Doctor")
    stranger = await f.staff(Role.NURSE, ("gratosoglio",), language="en")
    other_gp = await f.staff(Role.GP, ("gratosoglio",))
    # Her home centre is elsewhere: at San Siro only this visit makes anyone care for her.
    patient = await f.patient("mazzini", given="Maria", family="Kioskova", born=DOB)
    kiosk = await f.kiosk("san-siro")
    b = await f.booking(patient.id, gp.id, soon(), mode="kiosk_video", kiosk_id=kiosk,
                        nurse_id=nurse.id)
    home_patient = await f.patient("san-siro", given="Hugo", family="Homebody")
    home = await f.booking(home_patient.id, gp.id, soon() + timedelta(minutes=30))
    far_patient = await f.patient("gratosoglio", given="Fabio", family="Faraway")
    far = await f.booking(far_patient.id, other_gp.id, soon(), mode="kiosk_video",
                          centre="gratosoglio", kiosk_id=await f.kiosk("gratosoglio"),
                          nurse_id=stranger.id)
    return KioskDay(nurse, colleague, coordinator, gp, stranger, b.id, patient.id,
                    await f.consultation(b.id), kiosk, await f.code(b.id), home.id, far.id)
