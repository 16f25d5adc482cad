"""Shared rendering of values in the dicts the objects return."""

import json


def iso8601(value):
    """A naive UTC datetime as 'YYYY-MM-DDTHH:MM:SSZ', or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def json_object(text):
    """A JSON column's text as a dict (empty when unset)."""
    if not text:
        return {}
    return json.loads(text)
