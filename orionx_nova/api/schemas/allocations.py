"""Request bodies of ``/v1/allocations``.

Every caller creates and resizes allocations through the objects layer,
which checks the bodies itself (:mod:`orionx_nova.objects.allocation_body`);
the schemas are named here so this package lists every body of the API.
"""

from orionx_nova.objects import allocation_body

CREATE = allocation_body.CREATE
RESIZE = allocation_body.RESIZE
