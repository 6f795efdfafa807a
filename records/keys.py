"""The records layer's shared objects, each under one typed ``web.AppKey``."""

from __future__ import annotations

from aiohttp import web

from records.service import Records

# Absent when the keyring file is missing outside demo mode: records pages then answer 503.
RECORDS = web.AppKey("records", Records)
