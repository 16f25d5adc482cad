"""The sliding window's arithmetic, without a device: what ComputeScheduler
counts as a session's device time, and when a hard session must wait."""

import threading
import types

import pytest

from orionx_agent.server.scheduler import ComputeScheduler, _Meter


def test_window_counts_only_the_part_inside_it():
    meter = _Meter()
    meter.add(1.00, 0.03)   # ran 0.97 .. 1.00
    meter.add(1.05, 0.02)   # ran 1.03 .. 1.05
    assert meter.used_s(1.05, 0.1) == pytest.approx(0.05)
    # At 1.08 the window starts at 0.98: 0.02 of the first kernel is left.
    assert meter.used_s(1.08, 0.1) == pytest.approx(0.04)
    assert meter.used_s(1.101, 0.1) == pytest.approx(0.02)  # only the second is left
    assert meter.used_s(2.0, 0.1) == 0.0
    assert meter.total_s == 0.0  # forgotten kernels leave no drift behind


def test_many_tiny_kernels_cost_the_same_to_count():
    meter = _Meter()
    for index in range(10000):
        meter.add(index * 1e-5, 1e-5)
    assert meter.used_s(0.1, 0.05) == pytest.approx(0.05, rel=1e-3)
    assert len(meter.kernels) <= 5001


class _Session:
    def __init__(self, compute_pct):
        self.compute_pct = compute_pct
        self.ended_by_server = None
        self.work_lock = threading.RLock()
        self.usage = types.SimpleNamespace(device_s=0.0)


def _session(compute_pct):
    return _Session(compute_pct)


def test_hard_session_waits_for_the_window_to_forget_its_excess(monkeypatch):
    clock = types.SimpleNamespace(now=100.0)
    monkeypatch.setattr("orionx_agent.server.scheduler.time.monotonic", lambda: clock.now)
    scheduler = ComputeScheduler("hard", share_window_ms=100)
    session = _session(30)
    scheduler.admit(session)           # an empty window always lets one kernel run
    scheduler.charge(session, 0.020)   # it took 20 ms
    meter = scheduler._meters[session]
    # 20 ms used and the next expected to take 4 ms (the running average
    # starts at 0): within the 30 ms share.
    assert scheduler._wait_s(session, meter, clock.now) == 0
    scheduler.admit(session)
    scheduler.charge(session, 0.020)
    wait_s = scheduler._wait_s(session, meter, clock.now)
    assert wait_s == pytest.approx(0.040 + meter.expected_s - 0.030)
    clock.now += 0.1  # the window has forgotten both
    assert scheduler._wait_s(session, meter, clock.now) == 0


def test_elastic_session_alone_is_never_held(monkeypatch):
    clock = types.SimpleNamespace(now=100.0)
    monkeypatch.setattr("orionx_agent.server.scheduler.time.monotonic", lambda: clock.now)
    scheduler = ComputeScheduler("elastic", share_window_ms=100)
    session = _session(10)
    for _ in range(9):
        scheduler.admit(session)
        clock.now += 0.01
        scheduler.charge(session, 0.01)
    meter = scheduler._meters[session]
    assert meter.used_s(clock.now, 0.1) == pytest.approx(0.09)  # 90 %, share 10 %
    assert scheduler._wait_s(session, meter, clock.now) == 0


def test_session_preempted_while_waiting_does_not_break_the_next_admit():
    """A preemption frees a session (its meter forgotten) while its thread
    still waits in admit(): another session's admit must go on, and the
    preempted thread must leave with SessionPreempted, not a KeyError."""
    from orionx_agent.server.session import SessionPreempted
    scheduler = ComputeScheduler("hard", share_window_ms=1000)
    victim, urgent = _session(10), _session(90)
    scheduler.admit(victim)
    scheduler.charge(victim, 0.2)  # twice its 100 ms share: its next launch waits
    outcome = {}

    def victim_launch():
        with victim.work_lock:
            try:
                scheduler.admit(victim)
                outcome["victim"] = "admitted"
            except SessionPreempted:
                outcome["victim"] = "preempted"

    thread = threading.Thread(target=victim_launch)
    thread.start()
    for _ in range(200):
        with scheduler._cond:
            if victim in scheduler._waiting:
                break
        threading.Event().wait(0.005)
    else:
        pytest.fail("the victim never waited in admit()")
    # What Session.preempt does, with the victim still in the waiting list.
    victim.ended_by_server = RuntimeError("preempted")
    with victim.work_lock:
        scheduler.forget(victim)
    scheduler.admit(urgent)
    thread.join(5)
    assert outcome == {"victim": "preempted"}
    assert victim not in scheduler._meters and not scheduler._waiting
    with pytest.raises(SessionPreempted):
        scheduler.admit(victim)  # and an ended session gets no meter back
    assert victim not in scheduler._meters
