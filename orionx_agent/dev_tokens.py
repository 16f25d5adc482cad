"""Development session tokens: the one place, besides the controller, that
mints them. ``orionx-gpu-server --print-token`` prints one for people; tests
and benchmarks call :func:`development_token` directly.

A development token is signed with the pool's secret like the controller's,
but names an allocation the controller does not know ("dev" by default),
so it reaches a GPU server or gateway directly and is never revoked.
"""

from orionx_common.session_token import VGpuClaim, mint_token

DEVELOPMENT_ALLOCATION_ID = "dev"
DEVELOPMENT_VGPU_ID = "dev-vgpu"
DEVELOPMENT_TTL_S = 86400


def development_token(secret, compute_pct=100, memory_mb=1024, *, gpu_uuid=None,
                      vgpu_id=DEVELOPMENT_VGPU_ID, allocation_id=DEVELOPMENT_ALLOCATION_ID,
                      vgpus=None, ttl_s=DEVELOPMENT_TTL_S, now=None, generation=0):
    """A token signed with ``secret`` for one vGPU of ``compute_pct`` % and
    ``memory_mb`` MB (on the GPU ``gpu_uuid``, or whichever serves it), or
    for ``vgpus``, a list of VGpuClaim, when a test needs several;
    ``generation`` is the binding generation a revocation compares."""
    if vgpus is None:
        vgpus = [VGpuClaim(vgpu_id, compute_pct, memory_mb, gpu_uuid)]
    return mint_token(secret, allocation_id, vgpus, ttl_s=ttl_s, now=now,
                      generation=generation)
