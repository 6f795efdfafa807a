"""Kiosk pages: the list of a centre's kiosks and their enrolment codes (admins, coordinators),
enrolling a browser, and the kiosk's own way in for patients.

A browser is a kiosk by one HttpOnly cookie, ``casa_kiosk``, holding a credential that is
stored only hashed (``server.kiosks.store``). The ``device`` middleware resolves it on every
request, so a revoked kiosk stops at its next request. Everything a patient leaves on the
kiosk (the consultation's cookie, the language, a form's outcome, storage) goes at
``/kiosk/wipe``; the kiosk's own cookie is the one thing that stays.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from server import centres, errors, outcome
from server.auth import csrf, throttle
from server.auth.throttle import Rule
from server.bookings import join
from server.consultations import credentials
from server.consultations.credentials import JoinResult
from server.errors import N_
from server.home import add_home_link
from server.keys import CLIENT_IP, CONFIG, KIOSK, LANG, POOL
from server.kiosks import store, strings
from server.middleware import Handler
from server.pages import current_staff, render, render_error, require_staff, translator
from server.request_info import is_https, sent_by_another_site
from server.staff import Role, Staff
from server.timeutil import local_day_text, local_time_text, to_local
from web.i18n import LANGUAGE_COOKIE

log = logging.getLogger("casa.kiosks")

COOKIE = "casa_kiosk"
# Chromium keeps no cookie longer than 400 days; every kiosk page sets it again, so a kiosk in
# use never runs out.
COOKIE_AGE_S = 400 * 24 * 3600
MANAGERS = (Role.ADMIN, Role.COORDINATOR)
# Enrolment codes guessed per client address.
ENROL_IP = Rule("kiosk-enrol", window=timedelta(minutes=15), limit=10)
HOME = "/kiosk"
WIPE = "/kiosk/wipe"
ENROL = "/kiosk/enrol"
# An invitation link's path, as the QR code of an invitation carries it.
LINK_PATH = "/join/"


def _now() -> datetime:
    return datetime.now(UTC)


@web.middleware
async def device(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Which kiosk this browser is, if any (``request[KIOSK]``). A credential that no longer
    works (revoked, or the kiosk enrolled again elsewhere) is taken off the browser."""
    request[KIOSK] = None
    token = request.cookies.get(COOKIE)
    if token is None or request.path.startswith("/static/"):
        return await handler(request)
    request[KIOSK] = await store.resolve(request.app[POOL], token, _now())
    response = await handler(request)
    if request[KIOSK] is None and not response.prepared:
        response.del_cookie(COOKIE, path="/")
    return response


def _set_kiosk_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=COOKIE_AGE_S, path="/", httponly=True,
                        samesite="Strict", secure=is_https(request))


# --- The staff's list --------------------------------------------------------------------

def _managed(user: Staff) -> list[str] | None:
    """The centres whose kiosks ``user`` manages (None: every centre)."""
    return None if user.role is Role.ADMIN else list(user.centres)


@require_staff(*MANAGERS)
async def kiosk_list(request: web.Request) -> web.StreamResponse:
    """GET /kiosks: the kiosks of my centres, enrolled or not, last seen; a new code shown
    once, right after it was made."""
    user = current_staff(request)
    pool = request.app[POOL]
    now = _now()
    names = {c.id: c.name for c in await centres.list_all(pool)}
    kiosks = await store.list_kiosks(pool, _managed(user), now)
    last = outcome.take(request) or outcome.Outcome()
    new_code = last.keep.get("code") if last.kind == "code" else None
    rows = [{"k": k, "centre": names.get(k.centre_id, k.centre_id),
             "seen": f"{local_day_text(to_local(k.last_seen_at), user.language)} "
                     f"{local_time_text(k.last_seen_at, user.language)}"
             if k.last_seen_at and k.enrolled else ""} for k in kiosks]
    # A refused action (another centre's kiosk) comes back here with its status and words.
    response = render(request, "kiosks/list.html", status=last.status, message=last.message,
                      rows=rows, new_code=new_code,
                      code_kiosk=last.keep.get("kiosk"), revoked=last.kind == "revoked",
                      code_hours=int(store.CODE_AGE.total_seconds() // 3600))
    return outcome.forget(request, response)


async def _my_kiosk(request: web.Request) -> int:
    """The kiosk of the path, if it is one of the signed-in manager's centres (else 404: a
    coordinator learns nothing of other centres' kiosks)."""
    user = current_staff(request)
    try:
        kiosk_id = int(request.match_info["kiosk_id"])
    except ValueError:
        raise errors.ApiError(errors.NOT_FOUND) from None
    centre = await store.kiosk_centre(request.app[POOL], kiosk_id)
    managed = _managed(user)
    if centre is None or (managed is not None and centre not in managed):
        raise errors.ApiError(errors.NOT_FOUND)
    return kiosk_id


async def _list_page(request: web.Request) -> str:
    return "/kiosks"


@require_staff(*MANAGERS)
@outcome.form(_list_page)
async def make_code(request: web.Request) -> web.StreamResponse:
    """POST /kiosks/{kiosk_id}/code: a new one-time enrolment code, shown once on the list
    (carried by the signed outcome cookie, a minute, this staff member only)."""
    kiosk_id = await _my_kiosk(request)
    async with request.app[POOL].acquire() as conn:
        code = await store.issue_code(conn, request.app[CONFIG].secret_key, kiosk_id,
                                      current_staff(request).id, _now())
    log.info("kiosk enrolment code made", extra={"kiosk_id": kiosk_id})
    return outcome.redirect(request, "/kiosks", outcome.Outcome(
        kind="code", keep={"code": code, "kiosk": kiosk_id}))


@require_staff(*MANAGERS)
@outcome.form(_list_page)
async def revoke(request: web.Request) -> web.StreamResponse:
    """POST /kiosks/{kiosk_id}/revoke: the kiosk's browser stops being a kiosk."""
    kiosk_id = await _my_kiosk(request)
    await store.revoke(request.app[POOL], kiosk_id, _now())
    log.info("kiosk revoked", extra={"kiosk_id": kiosk_id})
    return outcome.redirect(request, "/kiosks", outcome.Outcome(kind="revoked"))


# --- Enrolment on the kiosk ----------------------------------------------------------------

async def enrol_form(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/enrol: the enrolment code form (typed by the staff setting the kiosk up)."""
    last = outcome.take(request) or outcome.Outcome()
    status = {"unknown": 422, "rate_limited": 429}.get(last.kind, 200)
    response = render(request, "kiosks/enrol.html", status=status, error=last.kind or None,
                      kiosk=request[KIOSK])
    return outcome.forget(request, response)


async def _enrol_page(request: web.Request) -> str:
    return ENROL


@outcome.form(_enrol_page)
async def enrol_submit(request: web.Request) -> web.StreamResponse:
    """POST /kiosk/enrol: a right code makes this browser the kiosk; nothing else is set."""
    form = await request.post()
    code = str(form.get("code", ""))[:40]
    async with request.app[POOL].acquire() as conn:
        refused = await throttle.reserve(conn, [(ENROL_IP, request[CLIENT_IP])], _now())
        if refused is not None:
            return outcome.redirect(request, ENROL, outcome.Outcome(kind="rate_limited"))
        token = await store.enrol(conn, request.app[CONFIG].secret_key, code, _now())
        if token is not None:
            await throttle.refund(conn, ENROL_IP, request[CLIENT_IP])
    if token is None:
        log.info("kiosk enrolment code refused")
        return outcome.redirect(request, ENROL, outcome.Outcome(kind="unknown"))
    response = web.HTTPSeeOther(HOME)
    _set_kiosk_cookie(request, response, token)
    # The browser may have been someone's before: nothing of theirs goes on.
    _forget_patient(response)
    log.info("kiosk enrolled")
    return response


# --- The kiosk's pages ------------------------------------------------------------------

def _not_a_kiosk(request: web.Request) -> web.Response:
    """The answer to a browser that is no kiosk (any more): returned, not raised, so the
    ``device`` middleware can take a dead credential off it."""
    return render_error(request, errors.FORBIDDEN, translator(request)(strings.NOT_A_KIOSK),
                        {}, {})


async def kiosk_home(request: web.Request) -> web.StreamResponse:
    """GET /kiosk: the languages (when none is chosen), then the code or the invitation's QR
    code, then the date of birth; all on one page, so no step is a history entry."""
    kiosk = request[KIOSK]
    if kiosk is None:
        return _not_a_kiosk(request)
    response = render(request, "kiosks/kiosk.html", kiosk=kiosk,
                      choose_language=LANGUAGE_COOKIE not in request.cookies,
                      strings=_kiosk_strings(request))
    _set_kiosk_cookie(request, response, request.cookies[COOKIE])
    return response


def _kiosk_strings(request: web.Request) -> dict[str, str]:
    _ = translator(request)
    return {key: _(text) for key, text in strings.CLIENT.items()}


def _token_from_link(link: str) -> str | None:
    """The token of an invitation link (what an invitation's QR code holds), on any host:
    a link for another Casa server will simply not be known."""
    path = urlsplit(link.strip()).path
    if not path.startswith(LINK_PATH):
        return None
    token = path[len(LINK_PATH):]
    return token if join.TOKEN_RE.fullmatch(token) else None


DOB_OF = """
SELECT p.date_of_birth FROM consultations c JOIN bookings b ON b.id = c.booking_id
JOIN patients p ON p.id = b.patient_id WHERE c.id = $1
"""


async def _by_link(request: web.Request, token: str, dob: date) -> JoinResult:
    """An invitation link read from its QR code, with the date of birth: on a shared kiosk
    a photographed QR code alone must not open someone's consultation."""
    ip = request[CLIENT_IP]
    async with request.app[POOL].acquire() as conn:
        refused = await throttle.reserve(conn, [(credentials.JOIN_IP, ip)], _now())
        if refused is not None:
            return JoinResult("rate_limited", retry_after=refused.retry_after)
        result = await credentials.open_link(conn, token, _now())
        if result.consultation is None or await conn.fetchval(
                DOB_OF, result.consultation.id) != dob:
            return JoinResult("unknown")
        await throttle.refund(conn, credentials.JOIN_IP, ip)
    return result


async def kiosk_join(request: web.Request) -> web.StreamResponse:
    """POST /kiosk/join (JSON, from the kiosk page's script): ``{code | link, dob}``. Into the
    consultation (the patient's cookie and ``{"next": ...}``, which the page opens with
    ``location.replace``), or ``{"message": ...}`` saying why not. Only a kiosk booking of
    this kiosk's centre is let in: a patient sent to the kiosk beside theirs still gets in,
    one from another centre, or booked from home, is sent to the front desk."""
    kiosk = request[KIOSK]
    if kiosk is None:
        return _not_a_kiosk(request)
    _ = translator(request)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise errors.ApiError(errors.BAD_REQUEST)
    dob = join.parse_dob(*(str(body.get(k, ""))[:4] for k in ("day", "month", "year")))
    if dob is None:
        return _refuse(_("Please enter your date of birth as day, month and year."), 422)
    link = body.get("link")
    if isinstance(link, str):
        token = _token_from_link(link[:2000])
        result = await _by_link(request, token, dob) if token else JoinResult("unknown")
    else:
        async with request.app[POOL].acquire() as conn:
            result = await credentials.check_code(
                conn, request.app[CONFIG].secret_key, str(body.get("code", ""))[:20], dob,
                request[CLIENT_IP], _now())
    c = result.consultation
    if result.outcome == "rate_limited":
        return _refuse(await _with_phone(request, _(
            "Too many attempts. Please wait a few minutes, or call your centre."),
            kiosk.centre_id), 429)
    if c is None or result.outcome == "unknown":
        return _refuse(_("The code or the date of birth is not right. Please check them and "
                         "try again."), 422)
    if c.mode != "kiosk_video" or c.centre_id != kiosk.centre_id:
        log.info("kiosk join for another place", extra={"consultation_id": c.id})
        return _refuse(_(strings.ELSEWHERE), 409)
    if result.outcome == "too_early":
        opens = to_local(c.join_opens_at)
        lang = request.get(LANG, "it")
        return _refuse(_("It is too early to join. You can come in from %(time)s on %(day)s.",
                         time=local_time_text(opens, lang), day=local_day_text(opens, lang)),
                       409)
    if result.outcome == "cancelled":
        return _refuse(await _with_phone(request, _(
            "This appointment has been cancelled. Please call your centre."), c.centre_id), 409)
    if result.outcome != "ok":
        return _refuse(await _with_phone(request, _(
            "This appointment is over, so the link no longer works. Please call your centre "
            "if you need help."), c.centre_id), 410)
    entered = await join.enter(request, result)
    response = web.json_response({"next": entered.headers["Location"]})
    for morsel in entered.cookies.values():
        response.cookies[morsel.key] = morsel
    return response


async def _with_phone(request: web.Request, message: str, centre_id: str) -> str:
    """A message that says to call the centre, with the number (the kiosk's own centre, or
    the booking's: a kiosk shows text only, read on the spot)."""
    centre = await centres.get(request.app[POOL], centre_id)
    if centre is None or not centre.phone_text:
        return message
    return message + " " + translator(request)("Phone of %(centre)s: %(phone)s",
                                               centre=centre.name, phone=centre.phone_text)


def _refuse(message: str, status: int) -> web.Response:
    return web.json_response({"message": message}, status=status)


# Everything a patient can leave in the browser's cookies: the consultation's, the invitation
# link's, the chosen language, a form's outcome and the CSRF pair (not identifying, but the
# next patient gets a fresh one).
PATIENT_COOKIES = ((credentials.PATIENT_COOKIE, "/"), (join.LINK_COOKIE, join.LINK_COOKIE_PATH),
                   (LANGUAGE_COOKIE, "/"), (outcome.COOKIE, "/"), (csrf.COOKIE, "/"))


def _forget_patient(response: web.StreamResponse) -> None:
    for name, path in PATIENT_COOKIES:
        response.del_cookie(name, path=path)
    # Storage (local, session, IndexedDB, service workers) and the HTTP cache. Not
    # "cookies": that would take the kiosk's own credential too.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'


async def wipe(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/wipe: the end of a patient's visit (the visit ended, "Finished", or a
    minute with nobody touching the screen). Back to the languages."""
    response = web.HTTPSeeOther(HOME if request[KIOSK] is not None else "/join")
    if not sent_by_another_site(request):
        _forget_patient(response)
    return response


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/kiosks", kiosk_list, name="kiosks")
    r.add_post("/kiosks/{kiosk_id}/code", make_code, name="kiosk_code")
    r.add_post("/kiosks/{kiosk_id}/revoke", revoke, name="kiosk_revoke")
    r.add_get(ENROL, enrol_form, name="kiosk_enrol")
    r.add_post(ENROL, enrol_submit, name="kiosk_enrol_submit")
    r.add_get(HOME, kiosk_home, name="kiosk_home")
    r.add_post("/kiosk/join", kiosk_join, name="kiosk_join")
    r.add_get(WIPE, wipe, name="kiosk_wipe")
    add_home_link(app, MANAGERS, N_("Kiosks"), "/kiosks")
