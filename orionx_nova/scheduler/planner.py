"""Choosing distinct GPUs for every vGPU of a request, all or nothing.

Pure functions over :class:`~.fit.GpuView` lists: no database, so the same
code plans real placements, simulates preemption and is property-tested.
"""

from orionx_nova.scheduler import fit


def eligible(gpus, host, allow_remote):
    """The GPUs a request may use: remote ones only when it allows them."""
    if allow_remote or not host:
        return list(gpus)
    return [gpu for gpu in gpus if gpu.hostname == host]


def plan(demands, gpus, host=None, allow_remote=True, policy="binpack"):
    """Map each demand's index to a distinct GPU it fits on, or return None
    when no such assignment exists.

    Greedy first (largest demand takes the most preferred GPU that fits),
    which is what the preference order asks for and almost always succeeds;
    when it fails, a bipartite matching decides whether any assignment
    exists, so "does not fit" is never a greedy artefact.
    """
    ordered = sorted(
        eligible(gpus, host, allow_remote),
        key=lambda gpu: fit.preference_key(gpu, host, policy),
    )
    biggest_first = sorted(demands, key=lambda d: (-d.whole, -d.compute_pct, -d.memory_mb, d.index))
    chosen = _greedy(biggest_first, ordered)
    if chosen is None:
        chosen = _matching(biggest_first, ordered)
    return chosen


def _greedy(demands, ordered_gpus):
    taken = set()
    chosen = {}
    for demand in demands:
        for gpu in ordered_gpus:
            if gpu.id not in taken and fit.fits(demand, gpu):
                taken.add(gpu.id)
                chosen[demand.index] = gpu
                break
        else:
            return None
    return chosen


def _matching(demands, ordered_gpus):
    """Kuhn's augmenting paths: requests have few vGPUs, so this is cheap."""
    options = {d.index: [gpu for gpu in ordered_gpus if fit.fits(d, gpu)] for d in demands}
    holder = {}  # gpu id -> demand index
    by_id = {gpu.id: gpu for gpu in ordered_gpus}

    def augment(index, seen):
        for gpu in options[index]:
            if gpu.id in seen:
                continue
            seen.add(gpu.id)
            if gpu.id not in holder or augment(holder[gpu.id], seen):
                holder[gpu.id] = index
                return True
        return False

    for demand in demands:
        if not augment(demand.index, set()):
            return None
    return {index: by_id[gpu_id] for gpu_id, index in holder.items()}
