"""Tele-monitoring's fixtures: the records keyring (readings are sealed by records), patients,
and a San Siro patient with a GP and a nurse who care for her (her home centre), a coordinator
and an admin of it, and a nurse and a GP of Gratosoglio who do not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from records.service import Records
from server.monitoring import plans, service
from server.monitoring.plans import Plan
from server.staff import Role, Staff
from tests.records.conftest import (  # noqa: F401 (fixtures)
    PatientFactory,
    make_patient,
    rec,
    ring,
)


@dataclass
class Ward:
    patient: int
    gp: Staff
    nurse: Staff
    coordinator: Staff
    admin: Staff
    psychologist: Staff
    other_nurse: Staff   # Gratosoglio: does not care for the patient
    other_gp: Staff


@pytest.fixture
async def ward(make_staff: Any, make_patient: PatientFactory) -> Ward:  # noqa: F811
    return Ward(
        patient=await make_patient("san-siro"),
        gp=await make_staff(Role.GP, ("san-siro",)),
        nurse=await make_staff(Role.NURSE, ("san-siro",)),
        coordinator=await make_staff(Role.COORDINATOR, ("san-siro",)),
        admin=await make_staff(Role.ADMIN, ("san-siro",)),
        psychologist=await make_staff(Role.PSYCHOLOGIST, ("san-siro",)),
        other_nurse=await make_staff(Role.NURSE, ("gratosoglio",)),
        other_gp=await make_staff(Role.GP, ("gratosoglio",)),
    )


def in_days(n: int) -> date:
    return (datetime.now(UTC) + timedelta(days=n)).date()


async def enrol(conn: Any, rec: Records, user: Staff, patient: int, *,  # noqa: F811
                conditions: tuple[str, ...] = ("hypertension",), now: datetime | None = None,
                **kw: Any) -> tuple[Plan, str]:
    """A plan made through the service, as the API and the pages make it."""
    async with conn.transaction():
        return await service.enrol(
            conn, rec, user, patient_id=patient, conditions=list(conditions),
            measurements=kw.pop("measurements", None), every_hours=kw.pop("every_hours", None),
            tolerance_hours=kw.pop("tolerance_hours", None),
            thresholds=kw.pop("thresholds", None), ends_on=kw.pop("ends_on", in_days(90)),
            now=now or datetime.now(UTC))


__all__ = ["Ward", "enrol", "in_days", "plans"]


from tests.browser.conftest import live, live_server  # noqa: E402,F401 (fixtures)
