"""The records API's bodies, queries and answers as msgspec Structs (``server.validation``
decodes with them, ``server.openapi`` documents them). A note's content is an object whose
fields and measurements ``records.content`` checks (plausible values, lengths), naming each
field it refuses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from records.access import Category
from server.validation import Id

Content = Annotated[dict[str, Any], Meta(description=(
    "reason, assessment, plan, text, summary (plain language, for the patient), amend_reason: "
    "text; measurements: {kind: {value}}"))]
# Why: for an amendment or an emergency read (records.sharing bounds its length).
Reason = Annotated[str, Meta(max_length=1000)]


class NewNoteBody(msgspec.Struct, kw_only=True):
    category: Category
    content: Content | None = None
    # The booking's patient, if the client names it: must be the booking's.
    patient_id: Id | None = None


class DraftBody(msgspec.Struct, kw_only=True):
    content: Content | None = None


class ReasonBody(msgspec.Struct, kw_only=True):
    reason: Reason = ""


class StaffBody(msgspec.Struct, kw_only=True):
    staff_id: Id


class EraseBody(msgspec.Struct, kw_only=True):
    reason: Literal["patient_request", "retention"]


class ConsultationNotesQuery(msgspec.Struct, kw_only=True):
    patient_id: Id | None = None


class NoteVersion(msgspec.Struct):
    version: int
    status: Literal["draft", "signed"]
    amends_version: int | None
    author_id: int
    saved_at: str
    signed_at: str | None
    erased: bool
    content: dict[str, Any] | None


class Note(msgspec.Struct):
    """A note as its reader may see it: content only where ``readable``."""

    id: int
    booking_id: int
    patient_id: int
    category: Category | None
    author_id: int | None
    created_at: str
    erased: bool
    readable: bool
    can_edit: bool
    can_break_glass: bool
    versions: list[NoteVersion]


class NoteList(msgspec.Struct):
    notes: list[Note]


class NoteCreated(msgspec.Struct):
    id: int
    version: int
    status: Literal["draft"]


class VersionSaved(msgspec.Struct):
    version: int
    status: Literal["draft", "signed"]


class Shared(msgspec.Struct):
    shared_with: int


class Referred(msgspec.Struct):
    referred_to: int


class SummaryLink(msgspec.Struct):
    url: str


class Erased(msgspec.Struct):
    erased: list[int]
