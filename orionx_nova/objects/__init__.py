"""The controller's domain objects: what the REST API, the RPC endpoints and
the background loops call. Every public function opens its own transaction
and returns plain, JSON-ready dicts; errors are
:class:`orionx_nova.exception.OrionXError` subclasses."""
