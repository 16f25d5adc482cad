"""Python client of the OrionX REST API, used by the ``orionx`` CLI."""
