"""The code word of a sensitive booking: a word agreed with the patient at booking which, typed
in the consultation's chat, tells the clinician discreetly that the patient is not safe.

Only a keyed hash of its normalised form is stored (HMAC-SHA256 with the server's secret key),
so a copy of the database or of the disk does not reveal it, and the chat text it is compared
with is never stored either (docs/protocol.md, "Safety")."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import asyncpg

# "Banana", "banana!", " BANANA " and "ｂａｎａｎａ" are the same word; so are "blue  sky" and
# "Blue sky.": letters and digits only, case-folded, single spaces.
_WORD = re.compile(r"\w+")
# A code word is a word or a short phrase; a chat line is compared run by run up to this.
MAX_WORDS = 4
MAX_CHARS = 60


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalise(word: str) -> str:
    return " ".join(words(word))


def digest(secret_key: str, word: str) -> bytes:
    """The keyed hash of an already normalised word or phrase."""
    return hmac.new(secret_key.encode(), b"casa-code-word:" + word.encode(), hashlib.sha256)\
        .digest()


def valid(word: str) -> bool:
    """A code word: one to four words, at most 60 characters."""
    w = words(word)
    return 0 < len(w) <= MAX_WORDS and len(word) <= MAX_CHARS


def said_in(secret_key: str, wanted: bytes, text: str) -> bool:
    """Whether ``text`` contains the code word whose hash is ``wanted``: every run of one to
    four consecutive words is hashed and compared (a chat line is at most 2000 characters,
    so a few thousand HMACs at worst)."""
    w = words(text)
    for size in range(1, MAX_WORDS + 1):
        for start in range(len(w) - size + 1):
            if hmac.compare_digest(digest(secret_key, " ".join(w[start:start + size])), wanted):
                return True
    return False


async def set_for_booking(conn: asyncpg.Connection | asyncpg.Pool, booking_id: int,
                          secret_key: str, word: str | None) -> None:
    """Agree (or, with None, forget) a booking's code word."""
    value = digest(secret_key, normalise(word)) if word and valid(word) else None
    if word and value is None:
        raise ValueError("not a code word")
    await conn.execute("UPDATE bookings SET code_word_hash = $2 WHERE id = $1", booking_id, value)


async def for_consultation(conn: asyncpg.Connection | asyncpg.Pool,
                           consultation_id: int) -> bytes | None:
    value: bytes | None = await conn.fetchval(
        "SELECT b.code_word_hash FROM consultations c JOIN bookings b ON b.id = c.booking_id"
        " WHERE c.id = $1", consultation_id)
    return value
