"""A real coturn for the signalling tests that need TURN (tests/coturn.py starts it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import coturn as turn

TURN_SECRET = "turn-test-secret-" + "y" * 20
REALM = turn.REALM


@pytest.fixture(scope="module")
def coturn() -> Iterator[int]:
    """A coturn sharing TURN_SECRET with the app; its UDP port."""
    with turn.coturn(TURN_SECRET, (49160, 49200)) as port:
        yield port
