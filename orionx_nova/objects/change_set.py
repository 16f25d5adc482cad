"""What one change of the pool collects in its transaction, and its commit.

A change (placing an allocation, releasing one, moving a GPU, marking a
node down) runs in one transaction through :func:`commit`, which retries
it from the start when a claim lost a race. Two things happen with its
rows or not at all:

- casts to agents are collected on the :class:`ChangeSet` and sent only
  once the transaction committed, so an agent never hears of a change
  that was rolled back;
- capacity is given back with :meth:`ChangeSet.release`, which also
  switches every draining GPU that became empty, in the transaction that
  released its last vGPU.

Allocations, GPUs and nodes change through
:func:`orionx_nova.objects.change.run`, which adds serving the queue; the
queue server commits its own starts here.
"""

from orionx_nova.objects import notifier, pool_switch
from orionx_nova.scheduler import claims, vgpu_binding
from orionx_nova.scheduler import queue as scheduler_queue


class ChangeSet:
    """The casts and freed capacity of one attempt at a change."""

    def __init__(self):
        self.casts = []  # (method, host, kwargs), sent after commit
        # Capacity freed or added (a GPU came back, moved pools, a vGPU
        # shrank): the queue is worth serving once this commits.
        self.capacity_freed = False

    def cast(self, method, host, **kwargs):
        self.casts.append((method, host, kwargs))

    def release(self, session, bound, unbind=True):
        """Give back the capacity of ``bound`` vGPU rows (id,
        physical_gpu_id, compute_pct, memory_mb, draining) and finish the
        drains it ends. ``unbind`` False when the caller deletes the rows.
        Returns the ids of the GPUs that gained capacity."""
        if not bound:
            return []
        freed = vgpu_binding.release_vgpus(session, bound, unbind=unbind)
        if any(row.draining for row in bound):
            pool_switch.finish_drains(session, self, freed)
        self.capacity_freed = True
        return freed

    def unbind(self, session, bound):
        """Unbind ``bound`` vGPU rows whose capacity stays held
        (:mod:`.revocations`); nothing is freed yet."""
        vgpu_binding.unbind_vgpus(session, bound)


def commit(work, what):
    """Run ``work(session, change_set)`` in one transaction, again with a
    fresh ChangeSet each time it loses a race (``what`` names it in the
    error when every attempt lost); then send the casts of the attempt
    that committed. Returns (work's result, that ChangeSet)."""
    attempts = []

    def attempt(session):
        change_set = ChangeSet()
        attempts.append(change_set)
        result = work(session, change_set)
        # One index probe in the same transaction spares a queue read
        # after the commit when nothing waits.
        if change_set.capacity_freed and not scheduler_queue.anyone_waiting(session):
            change_set.capacity_freed = False
        return result

    result = claims.run_with_retries(attempt, what)
    committed = attempts[-1]
    notifier.send(committed.casts)
    return result, committed
