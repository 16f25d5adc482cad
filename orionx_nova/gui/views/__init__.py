"""One module per console page; importing them registers their routes."""


def load():
    from orionx_nova.gui.views import (  # noqa: F401
        allocations,
        events,
        gpu,
        login,
        overview,
        topology,
        users,
    )
