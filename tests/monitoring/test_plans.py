"""Plans: defaults per condition, limits per patient, one plan in force, readings judged
against the patient's own limits, the access rule as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from records import access
from records.errors import Denied, InvalidContent
from server.monitoring import alerts, plans, service
from server.staff import Role
from tests.monitoring.conftest import enrol, in_days


def test_defaults_narrow_when_conditions_meet() -> None:
    hyp = plans.default_thresholds(["hypertension"], ["blood_pressure"])
    assert hyp["systolic"] == {"low": 90, "high": 160}
    both = plans.default_thresholds(["hypertension", "copd"], ["heart_rate", "spo2"])
    assert both["heart_rate"] == {"low": 50, "high": 110} and both["spo2"] == {"low": 90}
    assert plans.default_measurements(["diabetes"]) == ["glucose"]
    assert plans.default_measurements(["heart_failure"]) == [
        "blood_pressure", "heart_rate", "spo2", "weight", "symptoms"]


def test_a_limit_given_replaces_the_default_and_implausible_ones_are_refused() -> None:
    t = plans.thresholds_for(["hypertension"], ["blood_pressure"],
                             {"systolic": {"low": 100, "high": 150}, "diastolic": {"low": None}})
    assert t["systolic"] == {"low": 100, "high": 150} and t["diastolic"] == {}
    for bad in ({"glucose": {"high": 200}}, {"systolic": {"low": 150, "high": 140}},
                {"systolic": {"high": 900}}):
        with pytest.raises(ValueError):
            plans.thresholds_for(["hypertension"], ["blood_pressure"], bad)


def test_the_rule_is_gps_and_nurses_who_care() -> None:
    for role in Role:
        assert access.monitoring_allowed(role, True) is (role in (Role.GP, Role.NURSE))
        assert not access.monitoring_allowed(role, False)


async def test_enrol_makes_one_plan_in_force_and_the_new_one_ends_the_old(conn, rec, ward):
    first, _ = await enrol(conn, rec, ward.nurse, ward.patient)
    assert first.measurements == ["blood_pressure", "heart_rate"]
    assert first.thresholds["systolic"] == {"low": 90, "high": 160}
    second, _ = await enrol(conn, rec, ward.gp, ward.patient, conditions=("diabetes",),
                            thresholds={"glucose": {"low": 80, "high": 200}})
    now_in_force, old = await plans.current(conn, ward.patient), await plans.get(conn, first.id)
    assert now_in_force is not None and now_in_force.id == second.id
    assert old is not None and old.ended_at is not None
    assert second.thresholds == {"glucose": {"low": 80, "high": 200}}
    actions = [r["action"] for r in await conn.fetch(
        "SELECT action FROM audit_log WHERE patient_id = $1 ORDER BY id", ward.patient)]
    assert actions == ["monitoring_plan", "monitoring_plan"]


async def test_enrol_refuses_strangers_roles_without_care_and_bad_plans(conn, rec, ward):
    for user in (ward.other_nurse, ward.other_gp, ward.coordinator, ward.admin,
                 ward.psychologist):
        with pytest.raises(Denied):
            await enrol(conn, rec, user, ward.patient)
    with pytest.raises(Denied):  # a patient that does not exist: the same refusal
        await enrol(conn, rec, ward.nurse, 10**12)
    with pytest.raises(InvalidContent) as exc:
        await enrol(conn, rec, ward.nurse, ward.patient, ends_on=in_days(-1))
    assert "ends_on" in exc.value.problems
    with pytest.raises(InvalidContent) as exc:
        await enrol(conn, rec, ward.nurse, ward.patient, conditions=("hypertension",),
                    thresholds={"glucose": {"high": 200}})
    assert "thresholds.glucose" in exc.value.problems


async def test_thresholds_are_the_patients_own(conn, rec, ward, make_patient):
    """The same blood pressure is an alert for one patient and not for the other."""
    other = await make_patient("san-siro")
    strict, _ = await enrol(conn, rec, ward.nurse, ward.patient,
                            thresholds={"systolic": {"high": 135}})
    loose, _ = await enrol(conn, rec, ward.nurse, other)
    now = datetime.now(UTC)
    results = []
    for plan in (strict, loose):
        async with conn.transaction():
            results.append(await service.submit_by_staff(
                conn, rec, ward.nurse, plan.id, measurement="blood_pressure",
                values={"systolic": 142, "diastolic": 85}, text=None, measured_at=None,
                source="nurse", now=now))
    assert len(results[0][1]) == 1 and results[1][1] == []
    rows = await alerts.worklist(conn, ward.nurse.id)
    assert [(r.alert.patient_id, r.alert.kind, r.alert.measurement) for r in rows] == [
        (ward.patient, "out_of_range", "blood_pressure")]


async def test_implausible_values_are_refused_naming_the_field(conn, rec, ward):
    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient)
    with pytest.raises(InvalidContent) as exc:
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="blood_pressure",
            values={"systolic": 400}, text=None, measured_at=None, source="nurse",
            now=datetime.now(UTC))
    assert exc.value.problems == {"values.systolic": "between 50 and 260 mm[Hg]",
                                  "values.diastolic": "required"}
    with pytest.raises(InvalidContent) as exc:
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="glucose", values={"glucose": 100},
            text=None, measured_at=None, source="nurse", now=datetime.now(UTC))
    assert exc.value.problems == {"measurement": "not measured in this plan"}
    with pytest.raises(InvalidContent) as exc:
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="heart_rate", values={"heart_rate": 70},
            text=None, measured_at=datetime.now(UTC) + timedelta(hours=1), source="nurse",
            now=datetime.now(UTC))
    assert exc.value.problems == {"measured_at": "not a time of this plan"}
