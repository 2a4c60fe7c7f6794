"""Schemathesis hooks of tests/api/conformance.sh."""

import json

import schemathesis

# Rules that openapi.yaml states in prose because no JSON Schema can: comparisons between fields,
# uniqueness of a sub-field, the stored flight, cursors the API issued, a time's year in UTC. A schema-valid request
# refused with a 400 for these alone is refused rightly; any other 400 is a mismatch.
PROSE_RULES = (
    "destination must differ from origin",
    "scheduledArrival must be after scheduledDeparture",
    "appears more than once in this request",
    "must be later than the scheduled departure",
    "is not a cursor this API returned",
    # The pattern bounds the year as written; the instant in UTC can still cross 1000 or 9999.
    "must fall in the years 1000 to 9999",
)


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if failure.code != "ST202" or response.status_code != 400:
        return True
    try:
        details = [e["detail"] for e in json.loads(response.content)["errors"]]
    except (ValueError, KeyError, TypeError):
        return True
    return not details or not all(any(rule in d for rule in PROSE_RULES) for d in details)


_bodies_by_key = {}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # A key reused with another body is a documented 422 that would hide how the body itself is
    # judged, and generated keys repeat: a key already sent with another body is made unique.
    headers = case.headers or {}
    name = next((h for h in headers if h.lower() == "idempotency-key"), None)
    if name is None or not isinstance(headers[name], str):
        return
    key, body = headers[name], repr((case.media_type, case.body))
    seen = _bodies_by_key.setdefault(key, body)
    if seen != body:
        unique = f"{len(_bodies_by_key)}-{key}"[:255]
        _bodies_by_key[unique] = body
        headers[name] = unique
