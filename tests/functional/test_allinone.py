"""``orionx-allinone`` as a user runs it: a subprocess on free ports; two
examples through ``orionx-run``; a job that waits in the queue; a clean stop
that leaves no process or socket behind; a start after a crash; and
``make run``'s demo in its non-interactive mode."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.fixtures.services import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def _processes_mentioning(text):
    """PIDs of live processes whose command line contains ``text``."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _wait_healthy(url, process, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(url + "/v1/gpus", timeout=2) as response:
                gpus = json.load(response)["gpus"]
            if gpus:
                return gpus
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("orionx-allinone did not serve GPUs within %d s" % timeout_s)


class AllInOne:
    def __init__(self, state_dir, sim_gpus="1x4096"):
        self.state_dir = state_dir
        self.port = free_port(3)  # the API, the agent's gateway, its /metrics
        self.url = "http://127.0.0.1:%d" % self.port
        self.process = subprocess.Popen(
            [str(BIN / "orionx-allinone"), "--state-dir", str(state_dir),
             "--sim-gpus", sim_gpus, "--port", str(self.port)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.gpus = _wait_healthy(self.url, self.process)

    def run(self, *argv, compute_pct=30, memory_mb=256, count=1, timeout_s=120):
        return subprocess.run(
            [str(BIN / "orionx-run"), "--controller", self.url, "--compute-pct",
             str(compute_pct), "--memory-mb", str(memory_mb), "--count", str(count), "--",
             sys.executable, *argv],
            cwd=REPO, capture_output=True, text=True, timeout=timeout_s)

    def stop(self, signum=signal.SIGTERM, timeout_s=60):
        self.process.send_signal(signum)
        return self.process.wait(timeout_s)


@pytest.fixture
def pool(tmp_path):
    started = AllInOne(tmp_path / "state")
    yield started
    if started.process.poll() is None:
        started.stop(signal.SIGKILL)
    for pid in _processes_mentioning(str(tmp_path)):
        os.kill(pid, signal.SIGKILL)


def test_examples_queue_and_clean_stop(pool):
    saxpy = pool.run("examples/saxpy.py")
    assert saxpy.returncode == 0, saxpy.stdout + saxpy.stderr
    assert "OK" in saxpy.stdout
    gemm = pool.run("examples/gemm.py")
    assert gemm.returncode == 0, gemm.stdout + gemm.stderr
    assert "OK" in gemm.stdout

    # A job holding the whole GPU makes the next one wait in the queue.
    holder = subprocess.Popen(
        [str(BIN / "orionx-run"), "--controller", pool.url, "--compute-pct", "100",
         "--memory-mb", "256", "--", sys.executable, "examples/throughput.py", "--seconds", "4"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    waiter = pool.run("examples/saxpy.py", compute_pct=50)
    holder_out, _ = holder.communicate(timeout=120)
    assert holder.returncode == 0, holder_out
    assert waiter.returncode == 0, waiter.stdout + waiter.stderr
    assert "position 1 in the queue" in waiter.stdout + waiter.stderr
    assert "OK" in waiter.stdout

    # orionx-run deleted its allocations: nothing is held any more once the
    # agent's next session report (one heartbeat, 10 s) shows their sessions
    # gone (docs/scheduler.md, "Revocation").
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(pool.url + "/v1/gpus", timeout=5) as response:
            allocated = [g["allocated_compute_pct"] for g in json.load(response)["gpus"]]
        if allocated == [0] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert allocated == [0]

    assert pool.stop() == 0
    output = pool.process.stdout.read()
    assert "Stopping the pool" in output
    assert _processes_mentioning(str(pool.state_dir)) == []
    assert not list(pool.state_dir.glob("*.sock"))


def test_start_after_a_crash(tmp_path):
    crashed = AllInOne(tmp_path / "state")
    crashed.stop(signal.SIGKILL)
    # GPU servers die with their parent; give the kernel a moment.
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(tmp_path)) == []
    assert list((tmp_path / "state").glob("*.sock")), "a crash leaves its sockets behind"

    # The restarted pool has two GPUs now (the agent wins for hardware), and
    # the multi-GPU example spreads over both.
    again = AllInOne(tmp_path / "state", sim_gpus="2x2048")
    try:
        assert len(again.gpus) == 2
        result = again.run("examples/multi_gpu.py", count=2)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "over 2 device(s)" in result.stdout and "OK" in result.stdout
    finally:
        assert again.stop() == 0


def _allocations(url):
    with urllib.request.urlopen(url + "/v1/allocations", timeout=5) as response:
        return json.load(response)["allocations"]


def _bound(allocation):
    return all(vgpu["gpu_uuid"] for vgpu in allocation["vgpus"])


def test_a_program_that_died_with_the_pool_is_unbound_after_the_restart(tmp_path):
    crashed = AllInOne(tmp_path / "state")
    program = subprocess.Popen(
        [str(BIN / "orionx-run"), "--controller", crashed.url, "--compute-pct", "40",
         "--memory-mb", "256", "--", sys.executable, "examples/throughput.py", "--seconds",
         "120"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(_bound(a) for a in _allocations(crashed.url)):
            assert time.monotonic() < deadline, "orionx-run never bound its allocation"
            time.sleep(0.3)
        time.sleep(1)  # its session is open on the GPU server
    finally:
        crashed.stop(signal.SIGKILL)
        program.kill()
        program.wait(30)
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)

    again = AllInOne(tmp_path / "state")
    try:
        (orphan,) = _allocations(again.url)
        # Bound to nothing live: unbound at the restarted agent's first
        # session report, one heartbeat interval (10 s) after it registered.
        deadline = time.monotonic() + 30
        while _bound(_allocations(again.url)[0]):
            assert time.monotonic() < deadline, "the dead program's allocation stayed bound"
            time.sleep(0.5)
        with urllib.request.urlopen(again.url + "/v1/gpus", timeout=5) as response:
            assert [g["allocated_compute_pct"] for g in json.load(response)["gpus"]] == [0]
    finally:
        assert again.stop() == 0


def _call(url, method, path, body=None):
    request = urllib.request.Request(
        url + path, data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def test_capacity_is_handed_on_only_once_the_deleted_allocations_session_ended(tmp_path):
    pool = AllInOne(tmp_path / "state", sim_gpus="1x1024")
    program = subprocess.Popen(
        [str(BIN / "orionx-run"), "--controller", pool.url, "--compute-pct", "20",
         "--memory-mb", "900", "--", sys.executable, "examples/throughput.py", "--seconds",
         "120"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(_bound(a) for a in _allocations(pool.url)):
            assert time.monotonic() < deadline, "orionx-run never bound its allocation"
            time.sleep(0.3)
        time.sleep(2)  # its session is open and working
        (x,) = _allocations(pool.url)
        _call(pool.url, "DELETE", "/v1/allocations/" + x["uuid"])
        y = _call(pool.url, "POST", "/v1/allocations",
                  {"queue": True, "vgpus": [{"compute_pct": 20, "memory_mb": 900}]})
        # X's session may still hold the memory: Y waits for it to end.
        assert y["state"] == "queued"
        # The revocation ends it within 1 s; the next session report (one
        # heartbeat, 10 s) hands the capacity on.
        deadline = time.monotonic() + 25
        while _call(pool.url, "GET", "/v1/allocations/" + y["uuid"])["state"] != "active":
            assert time.monotonic() < deadline, "Y never got the capacity X's session held"
            time.sleep(0.5)
        output, _ = program.communicate(timeout=60)
        assert program.returncode != 0, output
    finally:
        if program.poll() is None:
            program.kill()
        pool.stop(signal.SIGKILL)
        for pid in _processes_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


def test_make_run_demo_non_interactive(tmp_path):
    port = free_port(3)
    result = subprocess.run(
        ["make", "--no-print-directory", "run", "STATE_DIR=%s" % (tmp_path / "state"),
         "DEMO_ARGS=--exit-after-demo --port %d" % port],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    for expected in ("1. Two jobs on slices of one GPU", "position 1 in the queue",
                     "CUDA_ERROR_MPS_CLIENT_TERMINATED", "5. Summary", "Stopping the pool"):
        assert expected in out, out[-4000:]
    summary = out[out.index("5. Summary"):]
    assert "preempted" in summary and "tcp" in summary
    assert _processes_mentioning(str(tmp_path)) == []
