"""Transitional: split into ``streams``, ``shm_ring`` and ``endpoints``.

Only ``orionx_nova/client/vgpu.py`` still imports ``connect_unix`` from
here; delete this module when it imports ``guest_runtime.endpoints``.
"""

from guest_runtime.endpoints import connect_unix

__all__ = ["connect_unix"]
