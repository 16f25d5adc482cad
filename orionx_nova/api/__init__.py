"""The REST API (``/v1``), operator console (``/ui``) and ``/metrics``."""
