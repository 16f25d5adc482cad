"""What a GPU offers and what a vGPU asks, and whether one fits the other.

Kept free of SQL so the planner, the preemption simulation and the property
tests share one definition of "fits".
"""

import dataclasses

COMPUTE_PCT_PER_GPU = 100


@dataclasses.dataclass
class GpuView:
    """A physical GPU as the scheduler sees it at one moment."""

    id: int
    uuid: str
    hostname: str
    pool: str
    memory_mb: int
    memory_oversub_ratio: float
    allocated_compute_pct: int
    allocated_memory_mb: int
    generation: int

    @property
    def capacity_memory_mb(self):
        # Oversubscribed memory is backed by host RAM on the GPU server.
        return int(self.memory_mb * self.memory_oversub_ratio)

    @property
    def free_compute_pct(self):
        return COMPUTE_PCT_PER_GPU - self.allocated_compute_pct

    @property
    def free_memory_mb(self):
        return self.capacity_memory_mb - self.allocated_memory_mb

    @property
    def is_empty(self):
        return self.allocated_compute_pct == 0 and self.allocated_memory_mb == 0


@dataclasses.dataclass
class Demand:
    """One vGPU of a request. ``whole`` asks for an entire native GPU; its
    memory_mb becomes the GPU's own memory once it is chosen."""

    vgpu_id: int | None
    index: int
    compute_pct: int
    memory_mb: int
    whole: bool = False

    def size_on(self, gpu):
        """(compute_pct, memory_mb) this demand takes from ``gpu``."""
        if self.whole:
            return COMPUTE_PCT_PER_GPU, gpu.memory_mb
        return self.compute_pct, self.memory_mb


def fits(demand, gpu):
    """True when ``demand`` fits in the free capacity of ``gpu``. Compute is
    never oversubscribed; memory up to the GPU's oversubscription ratio."""
    if demand.whole:
        return gpu.pool == "native" and gpu.is_empty
    return (
        gpu.pool == "orionx"
        and gpu.free_compute_pct >= demand.compute_pct
        and gpu.free_memory_mb >= demand.memory_mb
    )


def preference_key(gpu, host, policy):
    """Sort key: GPUs on the consumer's host first, then binpack (busiest
    first, keeping whole GPUs free for big requests) or spread (idlest
    first); the id makes the order total and repeatable. Without the
    locality term this is the order of the usage index the candidate query
    walks (see candidates._order_by)."""
    remote = 0 if host and gpu.hostname == host else 1
    if policy == "spread":
        return (remote, gpu.allocated_compute_pct, gpu.allocated_memory_mb, gpu.id)
    return (remote, -gpu.allocated_compute_pct, -gpu.allocated_memory_mb, -gpu.id)
