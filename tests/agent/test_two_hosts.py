"""Two agents on one machine as two hosts, over a real RabbitMQ: guests on
one host run on the other's GPUs (relayed, or directly), aggregate vGPUs of
both, queue and get preempted, and survive kill -9 of a GPU server or an
agent without leaking capacity."""

import os
import signal

from orionx_agent.agent.vm_sessions import VmSessions
from orionx_nova.objects import allocations, gpus
from tests.agent.conftest import node_state, orionx_run, wait_for


def _used(gpu_uuid):
    gpu = gpus.get(gpu_uuid)
    return gpu["allocated_compute_pct"], gpu["allocated_memory_mb"]


def _no_capacity_held():
    return all(_used(g["uuid"]) == (0, 0) for g in gpus.list()) and not allocations.list()


def _capacity_handed_back(condition=_no_capacity_held):
    # The controller hands capacity on only once the host's next report
    # shows no live session of the allocation (a heartbeat, 1 s here).
    wait_for(condition, 10, "capacity handed back after the host's report")


def test_guest_on_gpu_less_host_runs_on_remote_gpu(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    guest_host = pool.agent("guest")
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    result = orionx_run(pool, guest_host.hostname, "once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
    # Logged when the relay closes, which may be a moment after the guest ends.
    wait_for(lambda: "Relay unix:" in guest_host.log(), 10, "relay through the guest's agent")
    _capacity_handed_back()


def test_direct_remote_guest_connects_to_the_gpu_host(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    guest_host = pool.agent("guest", direct_remote=True)
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    result = orionx_run(pool, guest_host.hostname, "once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
    assert "Relay " not in guest_host.log()
    _capacity_handed_back()


def test_allocation_over_two_hosts_is_two_devices(pool):
    host_a = pool.agent("a", sim_gpus="1x1024")
    host_b = pool.agent("b", sim_gpus="1x1024")
    pool.wait_up(host_a)
    pool.wait_up(host_b)
    result = orionx_run(pool, host_a.hostname, "peer", extra=("--count", "2"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("\n")[:2] == ["peer copy ok", "gemm on device 1 ok"]
    # One vGPU was handed over on host a, the other relayed to host b.
    wait_for(lambda: "Relay unix:" in host_a.log(), 10, "relay through host a's agent")
    _capacity_handed_back()


def _wait_running(process, timeout_s=30):
    line = process.stdout.readline()
    assert line.strip() == "running", line + process.stderr.read()


def test_queued_guest_waits_saying_where_it_stands(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(gpu_host)
    holder = orionx_run(pool, gpu_host.hostname, "loop", "8", compute=100, wait=False)
    _wait_running(holder)
    # orionx-run's broker binds for the library, waits in the queue and
    # prints the position on orionx-run's stderr; the program just blocks.
    queued = orionx_run(pool, gpu_host.hostname, "once", compute=100)
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert queued.stdout.strip() == "ok"
    assert "waits for GPUs: position 1 in the queue" in queued.stderr, queued.stderr
    assert "is bound; starting" in queued.stderr
    holder_out, holder_err = holder.communicate(timeout=30)
    assert holder.returncode == 0 and "finished" in holder_out, holder_out + holder_err
    # Both orionx-runs deleted their allocations when their programs ended.
    wait_for(_no_capacity_held, 10, "capacity released")


def test_queue_then_preemption_seen_from_the_guest(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(gpu_host)
    low = orionx_run(pool, gpu_host.hostname, "loop", "60", compute=100, wait=False,
                     extra=("--priority", "10", "--preemptible"))
    _wait_running(low)
    # Same priority, may not preempt: it waits and says where it stands...
    queued = orionx_run(pool, gpu_host.hostname, "once", compute=100, wait=False)
    wait_for(lambda: any(a["state"] == "queued" for a in allocations.list()), 20, "queued")
    # ...until a higher priority that may preempt evicts the low one.
    high = orionx_run(pool, gpu_host.hostname, "once", compute=100,
                      extra=("--priority", "90", "--can-preempt"))
    assert high.returncode == 0, high.stdout + high.stderr
    low_out, low_err = low.communicate(timeout=30)
    # A CUDA error the program could read (exit 3), and the GPU server's
    # reason in the library's line on stderr.
    assert low.returncode == 3, low_out + low_err
    assert "was preempted by allocation" in low_err, low_out + low_err
    queued_out, queued_err = queued.communicate(timeout=30)
    assert queued.returncode == 0, queued_out + queued_err
    assert "position 1 in the queue" in queued_err
    wait_for(_no_capacity_held, 10, "capacity released")


def test_kill_gpu_server_during_a_workload(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(gpu_host)
    (server_pid,) = wait_for(gpu_host.gpu_server_pids, 20, "GPU server")
    guest = orionx_run(pool, gpu_host.hostname, "loop", "60", wait=False)
    _wait_running(guest)
    os.kill(server_pid, signal.SIGKILL)
    out, err = guest.communicate(timeout=30)
    assert guest.returncode == 3, out + err
    # The program names CUDA's code; the library says why on stderr.
    assert "error CUDA_ERROR_DEVICE_UNAVAILABLE" in out, out + err
    assert "connection to the GPU server lost" in err, err
    wait_for(lambda: gpu_host.gpu_server_pids() not in ([], [server_pid]), 20, "restarted")
    wait_for(_no_capacity_held, 10, "capacity released")
    # The restarted server serves the next guest.
    again = orionx_run(pool, gpu_host.hostname, "once")
    assert again.returncode == 0 and again.stdout.strip() == "ok", again.stdout + again.stderr


def test_killed_guest_is_unbound_by_its_agent(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(gpu_host)
    guest = orionx_run(pool, gpu_host.hostname, "loop", "60", wait=False)
    _wait_running(guest)
    (allocation,) = allocations.list()
    # kill -9 of orionx-run, then of its program: nobody unbinds but the
    # agent (orionx-run first, or it would see its program end and clean up).
    for pid in [guest.pid] + _children(guest.pid):
        os.kill(pid, signal.SIGKILL)
    guest.wait(10)
    wait_for(lambda: not allocations.get(allocation["uuid"])["vgpus"][0]["gpu_uuid"], 20,
             "allocation unbound after its session ended")
    _capacity_handed_back(lambda: all(_used(g["uuid"]) == (0, 0) for g in gpus.list()))


def test_killed_guest_of_a_keep_bound_allocation_stays_bound(pool):
    """An acquire-mode allocation created with unbind_on_session_end false
    (a libvirt domain in reserve mode) belongs to its creator: its ended
    session is reported like any other, and the controller leaves it bound."""
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    pool.wait_up(gpu_host)
    # Created as the agent creates a reserve-mode domain's allocation.
    vm_sessions = VmSessions(pool.api_url, gpu_host.hostname)
    kept = vm_sessions.create("libvirt:test-domain", [(50, 128)], "reserve")
    assert (kept["mode"], kept["unbind_on_session_end"]) == ("acquire", False)
    vm_sessions.bind(kept["uuid"])  # the domain started
    guest = orionx_run(pool, gpu_host.hostname, "loop", "60", wait=False,
                       extra=("--allocation", kept["uuid"]))
    _wait_running(guest)
    for pid in [guest.pid] + _children(guest.pid):
        os.kill(pid, signal.SIGKILL)
    guest.wait(10)
    wait_for(lambda: "Sessions of allocation(s) %s ended; the controller unbound none"
             % kept["uuid"] in gpu_host.log(), 20, "the ended session reported")
    assert allocations.get(kept["uuid"])["vgpus"][0]["gpu_uuid"]
    assert _used(gpus.list()[0]["uuid"]) == (50, 128)
    vm_sessions.unbind(kept["uuid"])  # the domain stopped
    _capacity_handed_back(lambda: _used(gpus.list()[0]["uuid"]) == (0, 0))


def test_kill_agent_during_a_workload(pool):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024")
    guest_host = pool.agent("guest")
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    guest = orionx_run(pool, guest_host.hostname, "loop", "60", wait=False)
    _wait_running(guest)
    gpu_host.kill()
    out, err = guest.communicate(timeout=30)
    assert guest.returncode == 3 and "error CUDA_ERROR" in out, out + err
    wait_for(lambda: node_state(gpu_host.hostname) == "down", 30, "node marked down")
    wait_for(_no_capacity_held, 10, "capacity released")
    assert node_state(guest_host.hostname) == "up"


def _children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]
