"""Patient and clinician arriving in the same consultation at the same instant, hundreds of
consultations at once: every pair ends in the call, PostgreSQL sees no deadlock, and no socket
is closed without a catalogued reason. Also one after the other, and both coming back at once
after a drop (protocol: Consultation lifecycle, Resume)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import SECRET_KEY
from tests.signaling.conftest import Visit, staff_session
from tests.signaling.crowd import Closed, Consultations, Sock, address
from tests.signaling.servers import ServerProcess

# Their timings would be distorted by another test process on the same cores: alone, after the
# parallel run (Makefile).
pytestmark = pytest.mark.serial

PAIRS = 200
ROUNDS = 5
CLINICIANS = 10
# Generous on two busy cores: 400 sockets say hello within a few milliseconds of each other.
HELLO_S = 10.0
ADMIT_S = 5.0
# Pairs opening their sockets at once (see Door).
OPENING = 50
# PostgreSQL's backends publish their statistics (deadlocks among them) at most once a second
# (PGSTAT_MIN_INTERVAL), also when they go idle: wait that long before reading the counter.
STATS_FLUSH_S = 1.5

DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


@pytest.fixture
async def ws_url(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A ``casa serve`` process behind a trusted proxy at 127.0.0.1, so that each socket can
    come from its own address (X-Forwarded-For): the caps per address (64 sockets without
    hello, 256 in all) are for one host, and these are hundreds of homes arriving together.
    A process of its own, not an app in the test's event loop: 400 clients in that loop would
    delay the server's reading of a hello past its 2 s for reasons of the test's making."""
    server = ServerProcess(db_url, SECRET_KEY, tmp_path,
                           extra_env={"CASA_TRUSTED_PROXIES": "127.0.0.1/32"})
    await server.start()
    yield server.ws
    server.stop()


@dataclasses.dataclass
class Staff:
    ids: list[int]
    sessions: dict[int, str]


@pytest.fixture
async def staff(make_staff: Any, db_url: str) -> Staff:
    from server.staff import Role

    ids = [(await make_staff(Role.GP)).id for _ in range(CLINICIANS)]
    return Staff(ids, {i: await staff_session(db_url, i) for i in ids})



async def deadlocks(db_url: str, settle: bool = False) -> int:
    if settle:
        await asyncio.sleep(STATS_FLUSH_S)
    conn = await asyncpg.connect(db_url)
    try:
        n: int = await conn.fetchval(DEADLOCKS)
    finally:
        await conn.close()
    return n


@dataclasses.dataclass
class Pair:
    visit: Visit
    patient: Sock
    doctor: Sock
    admit_refused: str | None = None   # the code when admit answered an error
    admit_sent_at: float | None = None


class Door:
    """Opens the sockets of a pair, a bounded number at a time: a socket must say hello within
    2 s of its upgrade, and hundreds of upgrades at once on two busy cores would let the first
    ones wait longer than that for reasons of the test's own making."""

    def __init__(self, session: aiohttp.ClientSession, url: str, staff: Staff) -> None:
        self.session = session
        self.url = url
        self.staff = staff
        self.gate = asyncio.Semaphore(OPENING)

    async def open(self, visit: Visit, i: int, who: str) -> Sock:
        if who == "patient":
            return await Sock.open(self.session, self.url, f"patient {i}",
                                   forwarded=address(2 * i))
        return await Sock.open(self.session, self.url, f"clinician {i}",
                               forwarded=address(2 * i + 1),
                               staff_session=self.staff.sessions[visit.clinician_id])

    async def together(self, visit: Visit, i: int) -> Pair:
        """Both sockets open, then both hellos sent in the same instant."""
        async with self.gate:
            opened: dict[str, tuple[Sock, float]] = {}

            async def open_one(who: str) -> None:
                opened[who] = (await self.open(visit, i, who), time.monotonic())

            await asyncio.gather(open_one("patient"), open_one("clinician"))
            # An upgrade now and then takes seconds on a busy machine; the socket opened first
            # must not sit silent past the server's 2 s for hello meanwhile: it is opened
            # again, so that both hellos still leave together, each fresh.
            for _ in range(3):
                stale = [w for w, (_s, at) in opened.items() if time.monotonic() - at > 1.0]
                if not stale:
                    break
                for who in stale:
                    await opened[who][0].close()
                await asyncio.gather(*(open_one(who) for who in stale))
            pair = Pair(visit, opened["patient"][0], opened["clinician"][0])
            patient, doctor = pair.patient, pair.doctor
            await asyncio.gather(patient.ws.send_str(hello_of(pair, patient)),
                                 doctor.ws.send_str(hello_of(pair, doctor)))
        return pair

    async def one_by_one(self, visit: Visit, i: int, first: str, deadline: float) -> Pair:
        """One says hello and gets its welcome; then the other opens and says hello."""
        second = "patient" if first == "clinician" else "clinician"
        async with self.gate:
            a = await self.open(visit, i, first)
            await a.ws.send_str(hello_of(Pair(visit, a, a), a, first))
        try:
            await welcome_of(a, deadline)
        except AssertionError as exc:
            await a.close()
            raise AssertionError(f"{first} (first): {exc}") from None
        async with self.gate:
            b = await self.open(visit, i, second)
            await b.ws.send_str(hello_of(Pair(visit, b, b), b, second))
        return Pair(visit, a, b) if first == "patient" else Pair(visit, b, a)


def hello_of(pair: Pair, sock: Sock, who: str | None = None) -> str:
    if (who or ("patient" if sock is pair.patient else "clinician")) == "patient":
        return sock.hello_text(credential=pair.visit.token)
    return sock.hello_text(room=pair.visit.room_id)


async def welcome_of(sock: Sock, deadline: float) -> dict[str, Any]:
    """The answer to hello: the welcome, else an AssertionError saying what came instead."""
    try:
        frame = await sock.recv(deadline - time.monotonic())
    except Closed as closed:
        raise AssertionError(f"hello answered by a close ({closed.code}) with no error"
                             ) from None
    except TimeoutError:
        raise AssertionError("no answer to hello") from None
    if frame.get("type") != "welcome":
        raise AssertionError(f"hello answered by {frame.get('type')} {frame.get('code')}")
    return frame


async def patient_side(pair: Pair, deadline: float) -> None:
    """Waits until the patient is in the call: a welcome in the call, or ``admitted``."""
    if pair.patient.welcome:
        welcome = pair.patient.welcome
    else:
        try:
            welcome = await welcome_of(pair.patient, deadline)
        except AssertionError as exc:
            raise AssertionError(f"patient: {exc}") from None
    if welcome["state"] == "in_call":
        return
    # Until ADMIT_S after the clinician's admit (or after the hello deadline, if no admit was
    # sent by then): a lost admit fails the pair then, not at the end of a long wait.
    while True:
        until = (pair.admit_sent_at or deadline) + ADMIT_S
        if time.monotonic() >= until:
            raise AssertionError("patient waiting, never admitted" if pair.admit_sent_at
                                 else "patient waiting, no admit sent")
        try:
            await pair.patient.until({"admitted"}, min(until, time.monotonic() + 0.5))
            return
        except TimeoutError:
            continue
        except Closed as closed:
            raise AssertionError(f"patient closed ({closed.code}) while waiting") from None


async def clinician_side(pair: Pair, deadline: float) -> None:
    """Admits the patient once, as soon as a waiting list shows them waiting; then keeps
    reading (the caller cancels it). Returns only on a failure (raised)."""
    doctor = pair.doctor
    if not doctor.welcome:
        try:
            await welcome_of(doctor, deadline)
        except AssertionError as exc:
            raise AssertionError(f"clinician: {exc}") from None
    admitted = False
    while True:
        try:
            # Once the admit is sent, the patient side decides when to stop.
            frame = await doctor.recv(3600 if admitted
                                      else deadline + ADMIT_S - time.monotonic())
        except Closed as closed:
            raise AssertionError(f"clinician: closed ({closed.code})") from None
        except TimeoutError:
            raise AssertionError("clinician never saw the patient waiting") from None
        kind = frame.get("type")
        if kind == "waiting_list" and not admitted and any(
                e.get("state") == "waiting" for e in frame["entries"]):
            admitted = True
            waiting = next(e for e in frame["entries"] if e.get("state") == "waiting")
            await doctor.send("admit", peer=waiting["peer_id"], id="admit")
            pair.admit_sent_at = time.monotonic()
        elif kind == "error" and frame.get("id") == "admit":
            # The patient already in the call (not_waiting) is fine; the patient side decides.
            pair.admit_refused = frame.get("code")


async def into_call(pair: Pair, deadline: float) -> None:
    """Both sides until the patient is in the call (raises what went wrong)."""
    patient = asyncio.ensure_future(patient_side(pair, deadline))
    doctor = asyncio.ensure_future(clinician_side(pair, deadline))
    try:
        done, _ = await asyncio.wait({patient, doctor}, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        first.result()   # the clinician side ends only by failing
    finally:
        for task in (patient, doctor):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def arrive(door: Door, visit: Visit, i: int, order: str) -> Pair:
    """Both say hello (``together``: in the same instant; else ``patient`` or ``clinician``
    first, the other once the first has its welcome), then the call is made. Returns the
    pair, in the call; raises AssertionError (with the pair in ``pair``) otherwise."""
    deadline = time.monotonic() + HELLO_S
    if order == "together":
        pair = await door.together(visit, i)
    else:
        pair = await door.one_by_one(visit, i, order, deadline)
    try:
        await into_call(pair, deadline)
    except AssertionError as exc:
        exc.pair = pair  # type: ignore[attr-defined]
        raise
    return pair


@dataclasses.dataclass
class Round:
    problems: Counter[str]
    bare_closes: list[str]
    admit_refused: Counter[str]
    seconds: float

    def line(self) -> str:
        return (f"{sum(self.problems.values())} pairs failed {dict(self.problems)}, "
                f"{len(self.bare_closes)} bare closes, admit refused "
                f"{dict(self.admit_refused)}, {self.seconds:.1f} s")


async def run_round(session: aiohttp.ClientSession, url: str, visits: list[Visit],
                    staff: Staff, order: str) -> Round:
    started = time.monotonic()
    pairs: list[Pair] = []
    problems: Counter[str] = Counter()

    door = Door(session, url, staff)

    async def one(i: int, visit: Visit) -> None:
        pair: Pair | None = None
        try:
            pair = await arrive(door, visit, i, order)
        except AssertionError as exc:
            problems[str(exc)] += 1
            pair = getattr(exc, "pair", None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            problems[f"could not open a socket: {type(exc).__name__}"] += 1
        if pair is not None:
            pairs.append(pair)
            pair.patient.keep_reading()
            pair.doctor.keep_reading()

    await asyncio.gather(*(one(i, v) for i, v in enumerate(visits)))
    socks = [s for p in pairs for s in (p.patient, p.doctor)]
    await asyncio.gather(*(s.stop_reading() for s in socks))
    await asyncio.gather(*(s.settle() for s in socks))
    bare = [s.name for s in socks if s.bare_close]
    refused = Counter(p.admit_refused for p in pairs if p.admit_refused)
    await asyncio.gather(*(s.close() for s in socks))
    return Round(problems, bare, refused, time.monotonic() - started)


async def test_two_hundred_simultaneous_arrivals_five_times(ws_url, session, staff, db_url):
    """Patient and clinician say hello at the same instant in 200 consultations, five times
    over (fresh consultations each round: the first arrival is what races). The clinician
    admits as soon as the waiting list shows the patient."""
    made = Consultations(db_url)
    before = await deadlocks(db_url)
    rounds = []
    for _ in range(ROUNDS):
        visits = await made.make(staff.ids, PAIRS)
        rounds.append(await run_round(session, ws_url, visits, staff, "together"))
        print(rounds[-1].line(), flush=True)
    found = await deadlocks(db_url, settle=True) - before
    report = "\n".join(f"round {i + 1}: {r.line()}" for i, r in enumerate(rounds))
    failed = sum(sum(r.problems.values()) for r in rounds)
    bare = sum(len(r.bare_closes) for r in rounds)
    assert (failed, bare, found) == (0, 0, 0), (
        f"{failed} of {PAIRS * ROUNDS} pairs not in the call, {bare} bare closes, "
        f"{found} deadlocks in PostgreSQL\n{report}")


async def test_two_hundred_arrivals_one_after_the_other(ws_url, session, staff, db_url):
    """Clinician first in 200 consultations, then patient first in 200 others (one server for
    both: starting a process is most of the cost)."""
    made = Consultations(db_url)
    before = await deadlocks(db_url)
    results = {first: await run_round(session, ws_url, await made.make(staff.ids, PAIRS),
                                      staff, first)
               for first in ("clinician", "patient")}
    found = await deadlocks(db_url, settle=True) - before
    failed = sum(sum(r.problems.values()) + len(r.bare_closes) for r in results.values())
    assert (failed, found) == (0, 0), "; ".join(
        f"{first} first: {r.line()}" for first, r in results.items()) + f"; {found} deadlocks"


async def back_together(door: Door, pair: Pair, i: int) -> Pair:
    """Both drop their sockets at once and come back at once; returns the new pair."""
    await asyncio.gather(pair.patient.close(), pair.doctor.close())
    return await door.together(pair.visit, i)


def knows_back(sock: Sock, other: str) -> bool:
    """Whether ``sock`` has been told that ``other`` is connected: its welcome lists it as
    connected, or a ``peer_resumed`` / ``peer_joined`` for it came after; and no later
    ``peer_away`` / ``peer_left`` took that back."""
    known = any(p["peer_id"] == other and p.get("connected")
                for p in sock.welcome.get("peers", []))
    for frame in sock.frames:
        kind = frame.get("type")
        about = frame.get("peer_id") or (frame.get("peer") or {}).get("peer_id")
        if about != other:
            continue
        if kind in ("peer_resumed", "peer_joined"):
            known = True
        elif kind in ("peer_away", "peer_left"):
            known = False
    return known


async def resumed_in_call(pair: Pair, deadline: float) -> None:
    """Both resumed, the patient in the call with no new admit, each told of the other, and
    a relay crosses each way."""
    patient, doctor = pair.patient, pair.doctor
    for who, sock in (("patient", patient), ("clinician", doctor)):
        try:
            welcome = await welcome_of(sock, deadline)
        except AssertionError as exc:
            raise AssertionError(f"{who}: {exc}") from None
        if welcome.get("resumed") is not True:
            raise AssertionError(f"{who}: not resumed")
        if welcome.get("state") != "in_call":
            raise AssertionError(f"{who}: back {welcome.get('state')}, not in_call")
    pid, did = patient.welcome["peer_id"], doctor.welcome["peer_id"]
    for who, sock, other in (("patient", patient, did), ("clinician", doctor, pid)):
        while not knows_back(sock, other):
            try:
                await sock.recv(deadline - time.monotonic())
            except (TimeoutError, Closed) as exc:
                raise AssertionError(f"{who}: never told the other is back "
                                     f"({type(exc).__name__})") from None
    for who, sender, receiver, to, from_ in (("patient", patient, doctor, did, pid),
                                             ("clinician", doctor, patient, pid, did)):
        await sender.send("candidate", to=to, candidate=None, id=f"back-{who}")
        try:
            got = await receiver.until({"candidate"}, deadline)
        except (TimeoutError, Closed) as exc:
            raise AssertionError(f"relay from the {who} lost ({type(exc).__name__})"
                                 ) from None
        if got.get("from") != from_:
            raise AssertionError(f"relay from the {who} came from {got.get('from')}")


async def test_two_hundred_calls_both_come_back_at_once(ws_url, session, staff, db_url):
    """Both in the call, then both sockets drop and both come back in the same instant: both
    resume, the patient in the call without a new admit, each told the other is back."""
    made = Consultations(db_url)
    before = await deadlocks(db_url)
    visits = await made.make(staff.ids, PAIRS)
    problems: Counter[str] = Counter()
    socks: list[Sock] = []

    door = Door(session, ws_url, staff)

    async def one(i: int, visit: Visit) -> None:
        try:
            pair = await arrive(door, visit, i, "patient")
        except AssertionError as exc:
            problems[f"before the drop: {exc}"] += 1
            return
        again = await back_together(door, pair, i)
        socks.extend((again.patient, again.doctor))
        try:
            await resumed_in_call(again, time.monotonic() + HELLO_S)
        except AssertionError as exc:
            problems[str(exc)] += 1
        again.patient.keep_reading()
        again.doctor.keep_reading()

    started = time.monotonic()
    await asyncio.gather(*(one(i, v) for i, v in enumerate(visits)))
    await asyncio.gather(*(s.stop_reading() for s in socks))
    await asyncio.gather(*(s.settle() for s in socks))
    bare = [s.name for s in socks if s.bare_close]
    await asyncio.gather(*(s.close() for s in socks))
    found = await deadlocks(db_url, settle=True) - before
    assert (sum(problems.values()), len(bare), found) == (0, 0, 0), (
        f"{sum(problems.values())} of {PAIRS} pairs not back in the call {dict(problems)}, "
        f"{len(bare)} bare closes, {found} deadlocks, {time.monotonic() - started:.1f} s")
