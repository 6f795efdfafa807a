""""I am with the patient" through signalling, on two instances: the nurse's console is served
by one, the GP's dashboard and call page by the other; the declaration reaches both at once,
a patient who arrives after it is listed with her nurse, and leaving clears it."""

from __future__ import annotations

from typing import Any

from server.config import Config
from signaling import nursing
from signaling.keys import ENGINE
from tests.factories import Factories
from tests.nurse.conftest import KioskDay
from tests.signaling.conftest import two_instances, waiting_until


def nurse_flags(entries: list[Any]) -> list[bool]:
    return [bool(e["nurse_present"]) for e in entries]


async def test_the_declaration_reaches_the_clinician_on_another_instance(
        config: Config, aiohttp_client: Any, db_url: str, day: KioskDay,
        factories: Factories) -> None:
    console, clinic = await two_instances(config, aiohttp_client, db_url)
    token = await factories.link(day.booking_id)
    cid = day.consultation.id
    try:
        kiosk = await console.raw()
        # The kiosk patient did not tick "a nurse is with me".
        assert (await kiosk.hello(credential=token, nurse_present=False))["type"] == "welcome"
        dashboard = await clinic.staff(day.gp.id)
        doctor = await clinic.staff(day.gp.id, day.consultation.room_id)
        await waiting_until(dashboard, lambda e: nurse_flags(e) == [False])
        await waiting_until(doctor, lambda e: nurse_flags(e) == [False])

        await nursing.declare(console.app[ENGINE], cid, day.nurse.id)
        await waiting_until(dashboard, lambda e: nurse_flags(e) == [True])
        [entry] = await waiting_until(doctor, lambda e: nurse_flags(e) == [True])
        assert entry["state"] == "waiting" and entry["from"] == "kiosk"

        # The kiosk page is reloaded: the patient's hello says no nurse, the declaration holds.
        await kiosk.close()
        again = await console.raw()
        assert (await again.hello(credential=token, nurse_present=False))["type"] == "welcome"
        await waiting_until(doctor, lambda e: nurse_flags(e) == [True]
                            and e[0]["state"] == "waiting")

        # The nurse leaves: the clinician is told.
        await nursing.declare(console.app[ENGINE], cid, None)
        await waiting_until(dashboard, lambda e: nurse_flags(e) == [False])
        await waiting_until(doctor, lambda e: nurse_flags(e) == [False])
    finally:
        await console.close()
        await clinic.close()


async def test_a_patient_arriving_after_the_declaration_is_listed_with_her_nurse(
        config: Config, aiohttp_client: Any, db_url: str, day: KioskDay,
        factories: Factories) -> None:
    console, clinic = await two_instances(config, aiohttp_client, db_url)
    token = await factories.link(day.booking_id)
    try:
        doctor = await clinic.staff(day.gp.id, day.consultation.room_id)
        await nursing.declare(console.app[ENGINE], day.consultation.id, day.nurse.id)
        kiosk = await clinic.raw()
        assert (await kiosk.hello(credential=token, nurse_present=False))["type"] == "welcome"
        [entry] = await waiting_until(doctor, lambda e: len(e) == 1)
        assert entry["nurse_present"] is True and entry["from"] == "kiosk"
    finally:
        await console.close()
        await clinic.close()
