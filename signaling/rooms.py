"""A consultation as one instance sees it: its members (as every instance sees them), its
sockets here, the names it may show, and the patient's state for waiting lists and
dashboards.

Members carry their database row's version: ``merge`` keeps the newest view of each, so a
change heard late (an arrival announced after the admit that followed it, a reload from the
database crossing an event) never overwrites a newer one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from server.consultations.store import Consultation
from signaling.conn import Conn
from signaling.frames import PeerObject, WaitingEntry
from signaling.presence import Member
from signaling.states import EntryState, Kind, Place, Role

# A socket in a room (the type every part of signalling passes around).
Socket: TypeAlias = "Conn[Room]"


@dataclass
class Room:
    key: str                                   # str(consultation id), or "probe-..."
    consultation: Consultation | None          # None for probe rooms
    local: dict[str, Socket] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    # The newest version seen of every member, gone ones included (a late event about a
    # member who has since left must not bring them back).
    versions: dict[str, int] = field(default_factory=dict)
    # Display names by peer id, resolved on this instance from the database (never carried
    # by the bus) and cached for the consultation's life here.
    names: dict[str, str] = field(default_factory=dict)
    # Held by each change of this consultation made from this instance (arrivals, admits,
    # ends): one at a time, in order. Events from other instances need no lock: they apply
    # in one synchronous step, newest version first (``merge``).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Read from the database once (``Views.fill``): every instance's later changes reach it
    # by the bus.
    filled: bool = False
    # Arrivals under way here: the room is not forgotten while one is (its socket is not
    # registered yet, so the room looks empty).
    arriving: int = 0
    setup_started: float | None = None         # admit time, for the set-up histogram
    # Each participant's media path as recorded from here (relay, sound only): a
    # ``media_report`` adding nothing to it is not recorded again (``signaling.media``).
    media: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    # The patient as last seen, kept once they no longer hold a place, and why they do not
    # (LEFT or ENDED; None while they hold one or never came): what a dashboard shows.
    last_patient: Member | None = None
    gone: EntryState | None = None

    def newer(self, m: Member) -> bool:
        """Whether ``m`` is newer than what this room knows of that member."""
        return m.version > self.versions.get(m.peer_id, -1)

    def merge(self, m: Member) -> Member:
        """Take ``m`` if it is newer; the newest known view of that member either way (``m``
        itself for a member this room holds no place for)."""
        if self.newer(m):
            self.versions[m.peer_id] = m.version
            if m.status == Place.LEFT:
                self.members.pop(m.peer_id, None)
            else:
                self.members[m.peer_id] = m
            return m
        return self.members.get(m.peer_id, m)

    def reload(self, rows: list[tuple[Member, bool]]) -> None:
        """The database's rows of this consultation, each with whether its place is kept (a
        reload): a row wins unless a newer view of it was heard meanwhile."""
        for m, kept in rows:
            if m.version < self.versions.get(m.peer_id, -1):
                continue
            self.versions[m.peer_id] = m.version
            if kept:
                self.members[m.peer_id] = m
            else:
                self.members.pop(m.peer_id, None)

    def in_call(self, exclude: str = "") -> list[Member]:
        return [m for m in self.members.values()
                if m.status == Place.IN_CALL and m.peer_id != exclude]

    def peer_object(self, m: Member, viewer: Socket) -> PeerObject:
        name: str | None = self.names.get(m.peer_id, "")
        if viewer.kind in (Kind.PATIENT, Kind.GUEST):
            if m.role == Role.PATIENT:
                name = ""  # a patient's name goes to staff only
            elif m.role == Role.CLINICIAN and self.consultation is not None \
                    and self.consultation.sensitive:
                # Psychological, psychiatric, violence-support: someone may see the patient's
                # screen, and a clinician's name can tell what the consultation is about.
                name = None
        return PeerObject(peer_id=m.peer_id, role=m.role, name=name,
                          connected=m.instance_id is not None)

    def patient(self) -> Member | None:
        for m in self.members.values():
            if m.role == Role.PATIENT:
                return m
        return None

    def note_patient(self, member: Member, left: bool) -> None:
        """Remember the patient's last state for dashboards (after ``members`` changed)."""
        self.last_patient = member
        if left:
            self.gone = EntryState.LEFT
        elif self.gone != EntryState.ENDED:
            self.gone = None

    def waiting_entries(self) -> list[WaitingEntry]:
        """For clinicians in the consultation: patients (and, in a sensitive consultation,
        guests) holding a place in the waiting room."""
        if self.consultation is None:
            return []
        return [self._entry(m, EntryState.WAITING if m.instance_id is not None
                            else EntryState.AWAY)
                for m in self.members.values()
                if m.role in (Role.PATIENT, Role.GUEST) and m.status == Place.WAITING]

    def dashboard_entries(self) -> list[WaitingEntry]:
        """For dashboards: the patient's state, whatever it is; none before they first came
        (unless the consultation ended)."""
        if self.consultation is None:
            return []
        m = self.patient()
        if self.gone == EntryState.ENDED:
            return [self._entry(m or self.last_patient, EntryState.ENDED)]
        if m is not None:
            return [self._entry(m, EntryState(m.status) if m.instance_id is not None
                                else EntryState.AWAY)]
        if self.gone is not None and self.last_patient is not None:
            return [self._entry(self.last_patient, self.gone)]
        return []

    def _entry(self, m: Member | None, state: EntryState) -> WaitingEntry:
        c = self.consultation
        assert c is not None
        detail = m.detail if m is not None else {}
        entry = WaitingEntry(
            room=c.room_id, consultation_id=c.id,
            peer_id=m.peer_id if m is not None else None, state=state,
            since=_iso(m.arrived_at) if m is not None else None,
            from_=detail.get("from", "home") if m is not None else None,
            kiosk_id=detail.get("kiosk_id"), nurse_present=bool(detail.get("nurse_present")),
            language=c.patient_language,
            name=self.names.get(m.peer_id, "") if m is not None else "",
            service=c.service_code, starts_at=_iso(c.starts_at),
            connected=m is not None and m.instance_id is not None
            and state in (EntryState.WAITING, EntryState.IN_CALL))
        if state == EntryState.AWAY and m is not None:
            entry.place = m.status
        if m is not None:
            entry.role = str(m.role)
            safe = detail.get("safe")
            entry.safe = str(safe) if safe else None
        return entry


def _iso(value: datetime) -> str:
    return value.isoformat()
