"""Errors of the records layer, and their entries in the HTTP error catalogue.

The messages name ids and key ids only, never note content or key material, so they are safe
in logs and on the command line.
"""

from __future__ import annotations

from server.errors import N_, ApiError, define, invalid, maps, maps_to


class RecordsError(Exception):
    """Base of every records failure."""


class KeyringError(RecordsError):
    """The keyring file is missing, unreadable or malformed."""


class UnknownKeyError(RecordsError):
    """A row names a key-encryption key that the keyring does not hold."""


class IntegrityError(RecordsError):
    """A ciphertext or wrapped key failed authentication: tampered, or moved to another row."""


class ErasedError(RecordsError):
    """The note's data keys were destroyed: its content is gone for good."""


class InvalidContent(RecordsError):
    """Note fields out of range or malformed; ``problems`` maps field -> reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("invalid note content: " + ", ".join(sorted(problems)))
        self.problems = problems


class Denied(RecordsError):
    """The access rules refuse this operation to this person."""


class NoteStateError(RecordsError):
    """The operation does not fit the note's state (signing a signed note, amending a draft)."""


NOTE_NOT_FOUND = define("note_not_found", 404, N_("This note does not exist."))
NOTE_FORBIDDEN = define("note_forbidden", 403, N_("You may not see or change this note."))
NOTE_LOCKED = define("note_locked", 409,
                     N_("This note is signed and locked. Write an amendment instead."))
NOTE_ERASED = define("note_erased", 410, N_("This note was erased."))
NOTE_INTEGRITY = define("note_integrity", 500,
                        N_("This note failed its integrity check. It has been reported."))
RECORDS_UNAVAILABLE = define("records_unavailable", 503,
                             N_("Clinical records are not available: the keyring is missing."))
SUMMARY_GONE = define("summary_link_invalid", 404,
                      N_("This link is not valid or has expired."))

# Records failures as catalogued errors. Integrity failures are 5xx, so the error pages log
# them (with the exception's text: ids and key ids, never content) for the operators.
maps_to(Denied, NOTE_FORBIDDEN)
maps_to(ErasedError, NOTE_ERASED)
maps_to(NoteStateError, NOTE_LOCKED)
maps_to(IntegrityError, NOTE_INTEGRITY)
maps_to(UnknownKeyError, NOTE_INTEGRITY)


@maps(InvalidContent)
def _invalid_content(exc: InvalidContent) -> ApiError:
    return invalid(exc.problems)
