"""A consultation as one instance sees it: its members (as every instance sees them), its
sockets here, the names it may show, and the patient's state for waiting lists and
dashboards. Also the member's form on the bus, which carries ids only, never a name."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signaling.conn import Conn
from signaling.directory import Consultation
from signaling.presence import Member

# The patient's state in a waiting entry (docs/protocol.md, "waiting entry").
WAITING, IN_CALL, AWAY, LEFT, ENDED = "waiting", "in_call", "away", "left", "ended"


@dataclass
class Room:
    key: str                                   # str(consultation id), or "probe-..."
    consultation: Consultation | None          # None for probe rooms
    local: dict[str, Conn] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    # Display names by peer id, resolved on this instance from the database (never carried
    # by the bus) and cached for the consultation's life here.
    names: dict[str, str] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    setup_started: float | None = None         # admit time, for the set-up histogram
    # The patient as last seen, kept once they no longer hold a place, and why they do not
    # ("left" or "ended"; "" while they hold one or never came): what a dashboard shows.
    last_patient: Member | None = None
    gone: str = ""

    def in_call(self, exclude: str = "") -> list[Member]:
        return [m for m in self.members.values() if m.status == "in_call" and m.peer_id != exclude]

    def peer_object(self, m: Member, viewer: Conn) -> dict[str, Any]:
        name: str | None = self.names.get(m.peer_id, "")
        if viewer.kind in ("patient", "guest"):
            if m.role == "patient":
                name = ""  # a patient's name goes to staff only
            elif m.role == "clinician" and self.consultation is not None \
                    and self.consultation.sensitive:
                # Psychological, psychiatric, violence-support: someone may see the patient's
                # screen, and a clinician's name can tell what the consultation is about.
                name = None
        return {"peer_id": m.peer_id, "role": m.role, "name": name,
                "connected": m.instance_id is not None}

    def patient(self) -> Member | None:
        for m in self.members.values():
            if m.role == "patient":
                return m
        return None

    def note_patient(self, member: Member, change: str) -> None:
        """Remember the patient's last state for dashboards (after ``members`` changed)."""
        self.last_patient = member
        if change == "left":
            self.gone = LEFT
        elif self.gone != ENDED:
            self.gone = ""

    def waiting_entries(self) -> list[dict[str, Any]]:
        """For clinicians in the consultation: patients holding a place in the waiting room."""
        if self.consultation is None:
            return []
        return [self._entry(m, WAITING if m.instance_id is not None else AWAY)
                for m in self.members.values() if m.role == "patient" and m.status == "waiting"]

    def dashboard_entries(self) -> list[dict[str, Any]]:
        """For dashboards: the patient's state, whatever it is; none before they first came
        (unless the consultation ended)."""
        if self.consultation is None:
            return []
        m = self.patient()
        if self.gone == ENDED:
            return [self._entry(m or self.last_patient, ENDED)]
        if m is not None:
            return [self._entry(m, m.status if m.instance_id is not None else AWAY)]
        if self.gone and self.last_patient is not None:
            return [self._entry(self.last_patient, self.gone)]
        return []

    def _entry(self, m: Member | None, state: str) -> dict[str, Any]:
        c = self.consultation
        assert c is not None
        detail = m.detail if m is not None else {}
        entry = {"room": c.room_id, "consultation_id": c.id,
                 "peer_id": m.peer_id if m is not None else None, "state": state,
                 "since": _iso(m.arrived_at) if m is not None else None,
                 "from": detail.get("from", "home") if m is not None else None,
                 "kiosk_id": detail.get("kiosk_id"),
                 "nurse_present": bool(detail.get("nurse_present")),
                 "language": c.patient_language,
                 "name": self.names.get(m.peer_id, "") if m is not None else "",
                 "service": c.service_code, "starts_at": _iso(c.starts_at),
                 "connected": m is not None and m.instance_id is not None
                 and state in (WAITING, IN_CALL)}
        if state == AWAY and m is not None:
            entry["place"] = m.status
        return entry


def _iso(value: datetime) -> str:
    return value.isoformat()


# A guest's label is free text a clinician typed (it may be a name): it stays in the database.
_PRIVATE_DETAIL = ("label",)


def member_to_wire(m: Member) -> dict[str, Any]:
    """A member as the bus carries it: ids and state, no name or label."""
    return {"peer_id": m.peer_id, "participant": m.participant, "role": m.role,
            "status": m.status, "instance_id": m.instance_id, "arrived_at": _iso(m.arrived_at),
            "detail": {k: v for k, v in m.detail.items() if k not in _PRIVATE_DETAIL}}


def member_from_wire(d: dict[str, Any]) -> Member:
    return Member(d["peer_id"], d["participant"], d["role"], d["status"], d["instance_id"],
                  datetime.fromisoformat(d["arrived_at"]), d["detail"])
