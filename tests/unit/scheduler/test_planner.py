"""The pure scheduler: fit rule, choice of distinct GPUs, victim choice."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from orionx_nova.scheduler import fit, planner, preemption


def gpu(id, hostname="h1", used_pct=0, used_mb=0, memory_mb=16384, ratio=1.0, pool="orionx"):
    return fit.GpuView(id, "gpu-%d" % id, hostname, pool, memory_mb, ratio, used_pct, used_mb, 0)


def demand(index, compute_pct, memory_mb, whole=False):
    return fit.Demand(None, index, compute_pct, memory_mb, whole)


def test_fits_needs_compute_and_memory_within_oversubscribed_capacity():
    g = gpu(1, used_pct=60, used_mb=10000, memory_mb=16000, ratio=1.5)
    assert fit.fits(demand(0, 40, 14000), g)  # 24000 capacity
    assert not fit.fits(demand(0, 41, 1), g)  # compute is never oversubscribed
    assert not fit.fits(demand(0, 1, 14001), g)


def test_whole_demand_needs_an_empty_native_gpu():
    assert fit.fits(demand(0, 100, 0, whole=True), gpu(1, pool="native"))
    assert not fit.fits(demand(0, 100, 0, whole=True), gpu(1, pool="native", used_pct=1))
    assert not fit.fits(demand(0, 100, 0, whole=True), gpu(1))
    assert not fit.fits(demand(0, 10, 10), gpu(1, pool="native"))


def test_local_gpus_come_first_then_binpack():
    gpus = [gpu(1, "h2", used_pct=90), gpu(2, "h1", used_pct=10), gpu(3, "h1", used_pct=50)]
    chosen = planner.plan([demand(0, 10, 10)], gpus, host="h1")
    assert chosen[0].id == 3


def test_spread_takes_the_idlest():
    gpus = [gpu(1, used_pct=90), gpu(2, used_pct=10), gpu(3, used_pct=50)]
    assert planner.plan([demand(0, 10, 10)], gpus, policy="spread")[0].id == 2
    assert planner.plan([demand(0, 10, 10)], gpus, policy="binpack")[0].id == 1


def test_remote_only_when_allowed():
    gpus = [gpu(1, "h2")]
    assert planner.plan([demand(0, 10, 10)], gpus, host="h1", allow_remote=False) is None
    assert planner.plan([demand(0, 10, 10)], gpus, host="h1", allow_remote=True)[0].id == 1


def test_vgpus_of_one_request_land_on_distinct_gpus_or_nowhere():
    gpus = [gpu(1), gpu(2)]
    chosen = planner.plan([demand(0, 30, 10), demand(1, 30, 10)], gpus)
    assert {g.id for g in chosen.values()} == {1, 2}
    assert planner.plan([demand(i, 10, 10) for i in range(3)], gpus) is None


def test_matching_finds_an_assignment_greedy_misses():
    # Greedy gives the biggest vGPU the busiest GPU that fits (gpu 1), after
    # which the second vGPU (memory-heavy) fits nowhere; the matching moves
    # them around.
    gpus = [gpu(1, used_pct=40, used_mb=15000), gpu(2, used_pct=0)]
    demands = [demand(0, 60, 10), demand(1, 10, 8000)]
    chosen = planner.plan(demands, gpus)
    assert chosen is not None and chosen[0].id == 1 and chosen[1].id == 2
    # Order of the demands in the request does not matter.
    chosen = planner.plan(list(reversed(demands)), gpus)
    assert chosen is not None


def _victim(id, priority, age_s, gpu_id, compute_pct, memory_mb=10):
    created = datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=1000 - age_s)
    v = preemption.Victim(id, "alloc-%d" % id, priority, created, False)
    v.vgpus.append(preemption.VictimVgpu(id * 10, "v", gpu_id, "h1", compute_pct, memory_mb))
    return v


def _request(priority, *demands, host=None):
    from orionx_nova.scheduler import vgpu_binding

    return vgpu_binding.Request(
        None, "req", priority, datetime.datetime(2026, 1, 2), host, True, list(demands)
    )


def test_victims_lowest_priority_then_youngest_fewest():
    gpus = [gpu(1, used_pct=100)]
    victims = [
        _victim(1, 10, age_s=100, gpu_id=1, compute_pct=50),
        _victim(2, 10, age_s=5, gpu_id=1, compute_pct=25),
        _victim(3, 5, age_s=50, gpu_id=1, compute_pct=25),
    ]
    chosen = preemption.choose_victims(_request(50, demand(0, 25, 1)), gpus, victims)
    assert [v.id for v in chosen] == [3]
    chosen = preemption.choose_victims(_request(50, demand(0, 50, 1)), gpus, victims)
    assert [v.id for v in chosen] == [3, 2]


def test_victims_only_below_the_requests_priority():
    gpus = [gpu(1, used_pct=100)]
    victims = [_victim(1, 50, age_s=1, gpu_id=1, compute_pct=100)]
    assert preemption.choose_victims(_request(50, demand(0, 10, 1)), gpus, victims) is None
    assert preemption.choose_victims(_request(51, demand(0, 10, 1)), gpus, victims)


def test_single_vgpu_prefers_the_gpu_needing_fewest_evictions():
    gpus = [gpu(1, used_pct=100), gpu(2, used_pct=100)]
    victims = [_victim(1, 1, 1, 1, 30), _victim(2, 1, 2, 1, 30), _victim(3, 20, 3, 2, 60)]
    chosen = preemption.choose_victims(_request(50, demand(0, 50, 1)), gpus, victims)
    assert [v.id for v in chosen] == [3]


def test_several_vgpus_prune_unneeded_victims():
    gpus = [gpu(1, used_pct=100), gpu(2, used_pct=100), gpu(3, used_pct=100)]
    victims = [_victim(1, 1, 1, 1, 100), _victim(2, 2, 1, 2, 10), _victim(3, 3, 1, 3, 100)]
    chosen = preemption.choose_victims(
        _request(50, demand(0, 50, 1), demand(1, 50, 1)), gpus, victims
    )
    assert sorted(v.id for v in chosen) == [1, 3]


gpu_strategy = st.builds(
    lambda used_pct, used_mb, memory_mb, host: (used_pct, used_mb, memory_mb, host),
    st.integers(0, 100),
    st.integers(0, 8000),
    st.integers(1000, 16000),
    st.sampled_from("ab"),
)
demand_strategy = st.tuples(st.integers(1, 100), st.integers(1, 16000))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(gpu_strategy, min_size=0, max_size=8),
    st.lists(demand_strategy, min_size=1, max_size=4),
    st.sampled_from(["binpack", "spread"]),
    st.booleans(),
)
def test_plan_is_sound_and_complete(gpu_specs, demand_specs, policy, allow_remote):
    gpus = [
        gpu(i, host, min(used_pct, 100), min(used_mb, memory_mb), memory_mb)
        for i, (used_pct, used_mb, memory_mb, host) in enumerate(gpu_specs)
    ]
    demands = [demand(i, c, m) for i, (c, m) in enumerate(demand_specs)]
    chosen = planner.plan(demands, gpus, "a", allow_remote, policy)
    usable = planner.eligible(gpus, "a", allow_remote)
    if chosen is None:
        # Complete: no assignment exists (brute force over permutations).
        import itertools

        for perm in itertools.permutations(usable, len(demands)):
            assert not all(fit.fits(d, g) for d, g in zip(demands, perm, strict=True))
        return
    # Sound: every vGPU fits its own distinct, eligible GPU.
    assert len({g.id for g in chosen.values()}) == len(demands)
    for d in demands:
        assert chosen[d.index] in usable and fit.fits(d, chosen[d.index])
