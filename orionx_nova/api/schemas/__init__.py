"""JSON Schemas (Draft 2020-12) of request bodies, one module per resource.

Every object schema sets ``additionalProperties: false`` so a misspelt field
is refused with its name instead of being silently ignored.
"""
