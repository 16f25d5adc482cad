"""The controller's domain objects: what the REST API, the RPC endpoints and
the background loops call. Every public function opens its own transaction
and returns plain, JSON-ready dicts; errors are
:class:`orionx_nova.exception.OrionXError` subclasses.

Everything that changes allocations, GPUs or nodes runs through
:func:`.change.run` (claim retries, casts after commit, drains finished,
the queue served and guarded); :mod:`.change_set` is what one change
collects in its transaction."""
