"""The one error registry: unique codes, one mapping per exception, one field-error shape."""

from __future__ import annotations

import pytest

from server import errors
from server.app import create_app
from server.config import Config


def test_a_code_defined_twice_fails_at_import() -> None:
    with pytest.raises(errors.DuplicateCode):
        errors.define("not_found", 404, "Another not found.")
    assert errors.REGISTRY["not_found"] is errors.NOT_FOUND


def test_an_exception_mapped_twice_fails_at_import() -> None:
    class Refused(Exception):
        pass

    errors.maps_to(Refused, errors.FORBIDDEN)
    with pytest.raises(errors.DuplicateCode):
        errors.maps_to(Refused, errors.CONFLICT)
    mapped = errors.api_error(Refused())
    assert mapped is not None and mapped.kind is errors.FORBIDDEN


def test_every_package_shares_the_registry(config: Config) -> None:
    """HTTP, bookings, records and the WebSocket define their errors in one registry: a code
    defined in two catalogues would have failed the imports the app makes."""
    create_app(config)
    from records import errors as records_errors
    from server.bookings import errors as bookings_errors
    from signaling import errors as signal_errors

    for kind in (records_errors.NOTE_NOT_FOUND, bookings_errors.CLINICIAN_BUSY,
                 signal_errors.ROOM_NOT_FOUND, signal_errors.CONSULTATION_ENDED):
        assert errors.REGISTRY[kind.code] is kind
    # Codes the WebSocket and HTTP share are one entry, with the socket's close code.
    assert signal_errors.UNAUTHENTICATED is errors.UNAUTHENTICATED
    assert errors.UNAUTHENTICATED.fatal and errors.UNAUTHENTICATED.close_code == 4001
    assert not signal_errors.INTERNAL.fatal


def test_domain_exceptions_map_to_one_detail_shape() -> None:
    from records.errors import InvalidContent
    from server.bookings.errors import CLINICIAN_BUSY
    from server.bookings.model import Clash, Invalid

    for exc in (Invalid({"starts_at": "in the past"}), InvalidContent({"starts_at": "x"})):
        mapped = errors.api_error(exc)
        assert mapped is not None and mapped.kind is errors.VALIDATION
        assert list(mapped.details) == ["fields"] and list(errors.field_errors(mapped)) == [
            "starts_at"]
    clash = errors.api_error(Clash("clinician", 7))
    assert clash is not None and clash.kind is CLINICIAN_BUSY
    assert clash.details == {"clash": "clinician", "other_booking_id": 7}


def test_lookup_errors_are_not_mapped() -> None:
    """Only an explicit NotFound is a 404: a KeyError is a bug."""
    assert errors.api_error(KeyError("x")) is None
    assert errors.api_error(LookupError("x")) is None
    found = errors.api_error(errors.NotFound())
    assert found is not None and found.kind.status == 404
