"""Patient join: the invitation link, or a 6-digit code with the date of birth.

``GET /join/{token}`` (the link in the invitation) checks the token where it lands and answers
with the page itself: the consultation page, with the ``casa_patient`` session cookie, or the
page saying why not ("too early", "over", "cancelled", "moved" and to when, "does not work").
There used to be two redirects on the way (``/join/{token}`` moved the token into a cookie,
``/join/status`` checked it and redirected to ``/consultation/{room}``): on a slow mobile
network each cost a 2 s round trip, 38 % of a patient's first wait and 64 % of a returning
one's (docs/benchmarks/web.md).

What the token must not do, and why answering at its address keeps it so:

- *Stay in the address bar, the tab's history entry, a bookmark, a shared or photographed
  screen.* The page names its clean address (``<meta name="casa-address">``:
  ``/consultation/{room}``, or ``/join/status`` for a refusal) and ``address.js``, the first
  module of its one script, replaces the entry's URL with it (``history.replaceState``: the
  same entry, no new one; CSP ``script-src 'self'``, no inline script). The token is in the bar
  from the answer until that module runs, about one round trip on a first visit and none once
  the script is cached. Back, Forward and a reload then use the clean address; the token is
  never again sent by this tab. A browser that runs no modules (none that can make the call)
  keeps the token's address: reloading it opens the same page, as the link itself does.
- *Be re-usable from what the browser keeps beyond what it is today.* The link is a credential
  for its whole join window by design (the patient rejoins with it; it is what the SMS holds).
  The browser's global history records the URL typed or opened either way: with the redirects
  it held ``/join/{token}`` as the first hop of a redirect chain, now as a visit whose entry was
  then renamed; neither is more usable than the message in the patient's phone, and both stop
  working when the window closes (``credentials.open_link``). The tab's session history, what
  Back and "reopen closed tab" use, holds the clean address, as it held the redirect's target.
- *Leave in a Referer.* The page's own requests (its script, stylesheet, icon, fetches) are
  made from the token's address until it is replaced. This response alone says
  ``Referrer-Policy: strict-origin``: they carry our origin only, never the path, so no log of
  ours or of a proxy sees the token there; forms keep a real ``Origin`` (``no-referrer`` would
  make it ``null`` and CSRF refuse the language switch). Other sites get our origin at most,
  and the call page links to none.
- *Be logged or cached.* Logs name the route's pattern (``/join/{token}``), never the path
  (server.middleware); the answer is ``Cache-Control: no-store`` like every page, so no cache
  keeps a page under the token's URL; the token itself is never in the page.

A refusal other than "too early" leaves nothing behind. "Too early" keeps the token in the
short-lived HttpOnly ``casa_join`` cookie (path ``/join``) so that reloading ``/join/status``,
the refused page's clean address, checks it again: the patient can read "too early" and come
back. A valid credential checked at ``/join/status`` or with the code form (a POST: its answer
must be a redirect, server.outcome) still redirects to ``/consultation/{room_id}``.

Rescheduling revokes the link (and the code and sessions) and sends a new one, so a link
forwarded or kept from the first invitation cannot open the moved consultation; it is not
merely "a link that does not work" either: the page says the appointment moved and to when
(``credentials.moved_link``: a revoked link whose window is no longer the consultation's), in
the page's language and Rome time, naming neither service nor clinician, and opens nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

from aiohttp import web

from server import centres, outcome
from server.auth.checker import CHECKER
from server.bookings import invitations
from server.consultations import credentials, store
from server.consultations.credentials import JoinResult
from server.consultations.store import Consultation
from server.keys import CLIENT_IP, CONFIG, KIOSK, LANG, POOL
from server.middleware import set_cookie
from server.pages import render
from server.request_info import is_https, sent_by_another_site
from server.timeutil import to_local
from web.i18n import LANGUAGE_COOKIE, LANGUAGES

log = logging.getLogger("casa.bookings.join")

# As long as the foundation keeps an explicit language choice.
LANGUAGE_AGE_S = 365 * 24 * 3600
CONSULTATION_PATH = "/consultation/{room_id}"
# The invitation link's token on its way from the address bar to /join/status. Long enough for
# a patient to read "too early" and reload; the link itself works all through the window.
LINK_COOKIE = "casa_join"
LINK_COOKIE_PATH = "/join"
LINK_COOKIE_AGE_S = 15 * 60
STATUS_PATH = "/join/status"
# The patient's consultation page for a consultation whose link was just checked: the call
# pages' (server.calls sets it; bookings cannot import them). Its keyword ``address`` is the
# page's clean address for address.js.
PatientPage = Callable[..., Awaitable[web.StreamResponse]]
PATIENT_PAGE: web.AppKey[PatientPage] = web.AppKey("patient_page")
# Only on the page answered at the token's address (see the module's docstring).
LINK_REFERRER_POLICY = "strict-origin"
# What our link tokens look like (secrets.token_urlsafe); anything else is not kept.
TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{store.MAX_CREDENTIAL_CHARS}}}")


def _now() -> datetime:
    return datetime.now(UTC)


async def enter(request: web.Request, result: JoinResult) -> web.StreamResponse:
    """Answer a checked credential: into the consultation, or a page that says why not."""
    c = result.consultation
    if result.outcome != "ok" or c is None:
        return await _refusal(request, result)
    response = web.HTTPSeeOther(CONSULTATION_PATH.format(room_id=c.room_id))
    await _admit(request, response, c)
    return response


async def _admit(request: web.Request, response: web.StreamResponse, c: Consultation) -> None:
    """Give ``response`` the patient's session for ``c`` (and the patient's language)."""
    async with request.app[POOL].acquire() as conn:
        session = await credentials.issue_session(conn, c.id, _now())
    # As long as the server may take it: a consultation under way outlives its join window
    # (Consultation.open_until), and the server decides anyway.
    until = c.join_closes_at + store.RETURN_AFTER_WINDOW
    max_age = max(60, int((until - _now()).total_seconds()))
    set_cookie(request, response, credentials.PATIENT_COOKIE, session, max_age=max_age)
    if LANGUAGE_COOKIE not in request.cookies:
        # The call pages speak the patient's language, as the invitation did, unless this
        # browser already chose one.
        set_cookie(request, response, LANGUAGE_COOKIE,
                   invitations.message_language(c.patient_language), max_age=LANGUAGE_AGE_S)
    log.info("patient joined", extra={"consultation_id": c.id})


async def _refusal(request: web.Request, result: JoinResult,
                   address: str | None = None) -> web.StreamResponse:
    c = result.consultation
    status = {"too_early": 200, "rate_limited": 429, "unknown": 404}.get(result.outcome, 410)
    # path="/join": base.html echoes the path into the language form, and ours holds a token.
    resp = render(request, "join/refused.html", status=status, path="/join",
                  outcome=result.outcome, address=address,
                  opens_at=to_local(c.join_opens_at) if c and result.outcome == "too_early"
                  else None, starts_at=to_local(c.starts_at) if c else None,
                  **await _contact(request, c.centre_id if c else None))
    if result.retry_after:
        resp.headers["Retry-After"] = str(result.retry_after)
    return resp


async def join_link(request: web.Request) -> web.StreamResponse:
    """GET /join/{token}: the link from the invitation, answered with the consultation page or
    the refusal itself (see the module's docstring for what becomes of the token)."""
    token = request.match_info["token"]
    if TOKEN_RE.fullmatch(token):
        async with request.app[POOL].acquire() as conn:
            result = await credentials.open_link(conn, token, _now())
            if result.outcome == "unknown":
                # The link of a booking moved since says so, and when it is now.
                result = await credentials.moved_link(conn, token, _now()) or result
    else:
        result = JoinResult("unknown")
    c = result.consultation
    if result.outcome == "ok" and c is not None:
        if (c.patient_language in LANGUAGES and "lang" not in request.query
                and LANGUAGE_COOKIE not in request.cookies):
            # Nobody chose a language on this device: speak the one the patient booked in.
            request[LANG] = c.patient_language
        address = CONSULTATION_PATH.format(room_id=c.room_id)
        response = await request.app[PATIENT_PAGE](request, c, address=address)
        await _admit(request, response, c)
        response.del_cookie(LINK_COOKIE, path=LINK_COOKIE_PATH)
    else:
        lang = request.query.get("lang")
        address = STATUS_PATH + (f"?lang={lang}" if lang in LANGUAGES else "")
        response = await _refusal(request, result, address=address)
        if result.outcome == "too_early":
            # Reloading /join/status checks it again: "too early" is worth a reload.
            response.set_cookie(LINK_COOKIE, token, max_age=LINK_COOKIE_AGE_S,
                                path=LINK_COOKIE_PATH, httponly=True, samesite="Lax",
                                secure=is_https(request))
        else:
            response.del_cookie(LINK_COOKIE, path=LINK_COOKIE_PATH)
    response.headers["Referrer-Policy"] = LINK_REFERRER_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


async def join_done(request: web.Request) -> web.StreamResponse:
    """GET /join/done: "Finished" on a shared kiosk. Nothing of this patient stays for the next
    one: the consultation's cookie, the link cookie and the chosen language go, and the kiosk
    is back at the code form, which offers the languages again."""
    response = web.HTTPSeeOther("/join")
    if sent_by_another_site(request):
        return response
    response.del_cookie(credentials.PATIENT_COOKIE, path="/")
    response.del_cookie(LINK_COOKIE, path=LINK_COOKIE_PATH)
    response.del_cookie(LANGUAGE_COOKIE, path="/")
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


async def join_status(request: web.Request) -> web.StreamResponse:
    """GET /join/status: check the link token from the cookie; into the consultation, or a page
    that says why not. A link that works keeps working for rejoining inside the window."""
    token = request.cookies.get(LINK_COOKIE, "")
    if TOKEN_RE.fullmatch(token):
        async with request.app[POOL].acquire() as conn:
            result = await credentials.open_link(conn, token, _now())
    else:
        result = JoinResult("unknown")
    response = await enter(request, result)
    if result.outcome != "too_early":
        # Used, or of no more use: only "too early" is worth a reload.
        response.del_cookie(LINK_COOKIE, path=LINK_COOKIE_PATH)
    return response


# A refused code (Post/Redirect/Get, see server.outcome): the POST never answers with a page,
# because the browser keeps a POST answer's request body - the code and the date of birth -
# with the tab. The outcome rides to GET /join with its detail: a Retry-After or when the
# window opens.
FORM_ERRORS = {"dob": 422, "unknown": 422, "rate_limited": 429}
REFUSALS = {"too_early": 200, "expired": 410, "cancelled": 410}


def _back(request: web.Request, result: str, detail: str = "",
          centre_id: str | None = None) -> web.StreamResponse:
    keep = {"detail": detail} | ({"centre": centre_id} if centre_id else {})
    return outcome.redirect(request, "/join", outcome.Outcome(kind=result, keep=keep))


async def _contact(request: web.Request, centre_id: str | None) -> dict[str, object]:
    """What a refusal page needs to give a number to call: the patient's centre once the code
    or link was recognised, otherwise every centre's."""
    pool = request.app[POOL]
    found = await centres.get(pool, centre_id) if centre_id else None
    return {"contact": found} if found else {"all_centres": await centres.list_all(pool)}


async def join_form(request: web.Request) -> web.StreamResponse:
    """GET /join: the code and date-of-birth form, saying why the last attempt was refused
    (carried by server.outcome) with that refusal's status."""
    if request.get(KIOSK) is not None:
        # A centre kiosk has its own way in, with no form field to remember (server.kiosks).
        raise web.HTTPSeeOther("/kiosk")
    last = outcome.take(request) or outcome.Outcome()
    kind, detail = last.kind, str(last.keep.get("detail", ""))
    if kind in REFUSALS:
        try:
            opens_at = to_local(datetime.fromisoformat(detail)) if detail else None
        except ValueError:
            opens_at = None
        response = render(request, "join/refused.html", status=REFUSALS[kind], path="/join",
                          outcome=kind if opens_at or kind != "too_early" else "unknown",
                          opens_at=opens_at, starts_at=None,
                          **await _contact(request, str(last.keep.get("centre") or "")))
    else:
        # Any other refusal (a stale CSRF token) says what the error pages would have said.
        error = kind if kind in FORM_ERRORS else None
        response = render(request, "join/form.html",
                          status=FORM_ERRORS.get(kind, last.status), error=error,
                          all_centres=await centres.list_all(request.app[POOL])
                          if error == "rate_limited" else [],
                          message=last.message, code="", day="", month="", year="",
                          choose_language=error is None and "lang" not in request.query
                          and LANGUAGE_COOKIE not in request.cookies)
        if kind == "rate_limited" and detail.isdigit():
            response.headers["Retry-After"] = detail
    return outcome.forget(request, response)


def parse_dob(day: str, month: str, year: str) -> date | None:
    try:
        d = date(int(year), int(month), int(day))
    except (ValueError, OverflowError):
        return None
    return d if 1900 <= d.year <= _now().year else None


async def _join_page(request: web.Request) -> str:
    return "/join"


@outcome.form(_join_page)
async def join_submit(request: web.Request) -> web.StreamResponse:
    """POST /join: check the code with the date of birth (rate-limited)."""
    form = await request.post()
    fields = {k: str(form.get(k, ""))[:20] for k in ("code", "day", "month", "year")}
    dob = parse_dob(fields["day"], fields["month"], fields["year"])
    if dob is None:
        return _back(request, "dob")
    async with request.app[POOL].acquire() as conn:
        result = await credentials.check_code(conn, request.app[CONFIG].secret_key,
                                              fields["code"], dob, request[CLIENT_IP], _now())
    if result.outcome != "rate_limited":
        request.app[CHECKER].count("join_code")
    if result.outcome in FORM_ERRORS:
        resp = _back(request, result.outcome, str(result.retry_after or ""))
        if result.retry_after:
            resp.headers["Retry-After"] = str(result.retry_after)
        return resp
    c = result.consultation
    if result.outcome in REFUSALS:
        opens = c.join_opens_at.isoformat() if c and result.outcome == "too_early" else ""
        return _back(request, result.outcome, opens, c.centre_id if c else None)
    return await enter(request, result)
