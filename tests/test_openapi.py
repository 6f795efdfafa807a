"""The OpenAPI document is made from the routes: it cannot name a route the app lacks, nor lack
one the app has."""

from __future__ import annotations

from typing import Any, get_args

from server.bookings import schemas
from server.bookings.api_bookings import STATUS_ACTIONS
from server.consultations import status


async def test_every_api_route_is_documented_and_nothing_else(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), "/api/v1" + path)
                  for path, ops in doc["paths"].items() for method in ops}
    routed = {(r.method, r.resource.canonical) for r in client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    routed.discard(("GET", "/api/v1/openapi.json"))
    assert documented == routed
    # Every operation id is unique, and every reference resolves.
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    text = str(doc)
    for name in doc["components"]["schemas"]:
        assert name.isidentifier()
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref


async def test_bodies_and_queries_are_the_handlers_structs(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    body = doc["paths"]["/bookings"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/NewBookingBody")
    new_booking = doc["components"]["schemas"]["NewBookingBody"]
    assert new_booking["properties"]["patient_id"]["minimum"] == 1
    assert "starts_at" in new_booking["required"]
    slots = {p["name"]: p for p in doc["paths"]["/slots"]["get"]["parameters"]}
    assert slots["date"]["required"] and not slots["days"]["required"]


def test_the_status_types_are_the_workflows() -> None:
    assert set(get_args(schemas.Status)) == set(status.STATUSES)
    assert STATUS_ACTIONS <= set(status.STATUSES)
