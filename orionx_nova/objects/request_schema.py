"""Checking a request body against its JSON Schema (Draft 2020-12), with
one style of message for every caller.

A refused body gets one message: the field, what is wrong with it (the
limit it passed), and what to do, e.g. ``vgpus[0].compute_pct: 120 is
greater than the maximum of 100; one vGPU has at most one whole GPU's
compute: ask for less or use several vGPUs``. The "what to do" comes from
an ``x-hint`` annotation on the schema that failed (JSON Schema ignores
keywords it does not know; OpenAPI's extensions are spelt the same way).
"""

import jsonschema

from orionx_nova import exception

# Values of these fields never appear in an error message or a log line.
_SECRET_FIELDS = ("password",)


def field_path(path):
    """``['vgpus', 0, 'compute_pct']`` -> ``vgpus[0].compute_pct``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += "[%d]" % part
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def _secret_problem(error):
    # The value stays out of the message; its limits need not.
    if error.validator == "minLength":
        return "fewer than the minimum of %d characters" % error.validator_value
    if error.validator == "maxLength":
        return "more than the maximum of %d characters" % error.validator_value
    return "does not match the schema (%s)" % error.validator


def _problem(error):
    """What is wrong, naming the limit."""
    validator, limit, value = error.validator, error.validator_value, error.instance
    if validator == "maxLength":
        return "%d characters is more than the maximum of %d" % (len(value), limit)
    if validator == "minLength":
        return "%d characters is fewer than the minimum of %d" % (len(value), limit)
    if validator == "maxItems":
        return "%d items is more than the maximum of %d" % (len(value), limit)
    if validator == "minItems":
        return "%d items is fewer than the minimum of %d" % (len(value), limit)
    if validator == "additionalProperties":
        return "unknown field; the allowed fields are %s" % (
            ", ".join(sorted(error.schema.get("properties", {}))))
    if validator == "enum":
        return "%r is not one of %s" % (value, ", ".join(map(str, limit)))
    if validator == "const":
        return "must be %s" % ("true" if limit is True else "false" if limit is False
                               else repr(limit))
    if validator == "required":
        return "required"
    if validator == "not":
        return "not allowed"
    if validator == "minProperties":
        return "gives no field"
    if validator == "uniqueItems":
        return "lists the same value twice"
    return error.message


def _path(error):
    """Where the error is; a missing or unknown field is named itself, not
    the object that lacks or has it."""
    path = list(error.absolute_path)
    fields = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        path += [name for name in error.validator_value if name not in fields][:1]
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        path += sorted(name for name in fields if name not in known)[:1]
    return field_path(path)


def message(error):
    """The one-line message of a jsonschema ``ValidationError``."""
    path = _path(error)
    # A missing field has no value to leak.
    if error.validator != "required" and any(secret in path for secret in _SECRET_FIELDS):
        return "%s: %s" % (path, _secret_problem(error))
    text = "%s: %s" % (path, _problem(error))
    hint = error.schema.get("x-hint") if isinstance(error.schema, dict) else None
    return "%s; %s" % (text, hint) if hint else text


def check(schema, body):
    """Return ``body`` when it matches ``schema``, else raise
    InvalidRequest naming the first wrong field."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        raise exception.InvalidRequest(message(error))
    return body
