"""QoS benchmark: do compute shares hold, what does enforcing them cost, and
how fast does memory move to host RAM and back?

Starts its own GPU servers (sim backend, each in its own process with one
BLAS thread) and saturating guest processes, then prints, all from this run:

* for each mix (25/75, 10/20/30/40 in elastic and hard mode; one hard 30 %
  session alone; one elastic session alone): every session's measured share
  of device time against its target;
* one session at 100 %, with enforcement and without (the baseline): device
  time per wall-clock second, and what enforcement costs;
* eviction and restore: two sessions whose buffers each fill the physical
  memory touch them in turn, so every turn moves one session's buffers out
  and the other's back; bandwidth against numpy.copyto of the same bytes
  (the baseline: what host memory does at best).

Usage: python benchmarks/qos.py [--seconds 3] [--quick]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

# The guest side (this process) does little compute; one BLAS thread keeps it
# off the core the simulated GPU uses. Set before numpy loads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from guest_runtime.client import Connection  # noqa: E402
from orionx_agent.dev_tokens import development_token  # noqa: E402
from orionx_agent.server.control import ControlClient  # noqa: E402
from tests.qos.conftest import SECRET  # noqa: E402
from tests.qos.workload import ServerProcess, run_mix  # noqa: E402

MB = 1 << 20
MIXES = (
    ("elastic", (25, 75)),
    ("hard", (25, 75)),
    ("elastic", (10, 20, 30, 40)),
    ("hard", (10, 20, 30, 40)),
    ("hard", (30,)),
    ("elastic", (30,)),
)


def token(index, compute_pct, memory_mb=64):
    return development_token(SECRET, compute_pct, memory_mb, vgpu_id="vgpu-%d" % index,
                             allocation_id="alloc-%d" % index, ttl_s=3600)


class GpuProcess:
    """A GPU server process and a control client, for one measurement."""

    def __init__(self, compute_mode="elastic", enforce=True, memory_mb=256):
        self.dir = tempfile.mkdtemp(prefix="oxqosb-", dir="/tmp")
        self.server = ServerProcess(self.dir, compute_mode, enforce=enforce,
                                    memory_mb=memory_mb)
        self.control = ControlClient(self.server.control_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.control.close()
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def shares(seconds):
    print("Compute shares (device time measured on the simulated GPU's engine)")
    print("  %-8s %-14s %-26s %-26s %s" % ("mode", "targets %", "share of device time %",
                                          "of wall time %", "worst error"))
    for mode, targets in MIXES:
        with GpuProcess(mode) as gpu:
            of_device, of_wall = run_mix(gpu.server, gpu.control, token, list(targets),
                                         seconds)
        if len(targets) == 1:
            worst = "alone: %.1f %% busy" % (100 * of_wall[0])
        else:
            worst = "%.1f points" % max(abs(100 * got - want)
                                        for got, want in zip(of_device, targets, strict=True))
        print("  %-8s %-14s %-26s %-26s %s" % (
            mode, "/".join(map(str, targets)), "/".join("%.1f" % (100 * f) for f in of_device),
            "/".join("%.1f" % (100 * f) for f in of_wall), worst))


def enforcement_cost(seconds):
    print("\nOne session at 100 %: device time per wall-clock second")
    results = {}
    for label, mode, enforce in (("no enforcement (baseline)", "elastic", False),
                                 ("elastic, enforced", "elastic", True),
                                 ("hard, enforced", "hard", True)):
        with GpuProcess(mode, enforce=enforce) as gpu:
            _, (busy,) = run_mix(gpu.server, gpu.control, token, [100], seconds)
        results[label] = busy
        print("  %-28s %.1f %%" % (label, 100 * busy))
    baseline = results["no enforcement (baseline)"]
    for label in ("elastic, enforced", "hard, enforced"):
        print("  throughput lost, %-14s %+.1f %% of the baseline"
              % (label.split(",")[0] + ":", 100 * (baseline - results[label]) / baseline))


def eviction_bandwidth(turns, physical_mb=64, buffer_mb=16):
    print("\nEviction to host RAM and restore (%d MB physical, 2 sessions of %d MB each)"
          % (physical_mb, physical_mb))
    with GpuProcess(memory_mb=physical_mb) as gpu:
        gpu.control.set_memory_limits(oversub_ratio=2.0)
        guests = []
        for index in range(2):
            conn = Connection(gpu.server.endpoints[0], token(index, 50, physical_mb),
                              transport="unix")
            buffers = [conn.mem_alloc(buffer_mb * MB)[0] for _ in range(physical_mb // buffer_mb)]
            for dptr in buffers:
                conn.memset_d32(dptr, index + 1, buffer_mb * MB // 4, 0)
            guests.append((conn, buffers))
        before = gpu.control.usage()["gpu"]
        started = time.perf_counter()
        for turn in range(turns):
            conn, buffers = guests[turn % 2]
            conn.memcpy_dtoh(buffers[0], 4, 0)  # touching one brings all back
        elapsed_s = time.perf_counter() - started
        after = gpu.control.usage()["gpu"]
        for conn, _ in guests:
            conn.close()
    moved = (after["bytes_evicted"] - before["bytes_evicted"]
             + after["bytes_restored"] - before["bytes_restored"])
    print("  %d turns, %.0f MB moved (out and back) in %.2f s: %.0f MB/s, %.1f ms per turn"
          % (turns, moved / MB, elapsed_s, moved / MB / elapsed_s, 1000 * elapsed_s / turns))
    source = np.ones(physical_mb * MB, np.uint8)
    target = np.empty_like(source)
    copy_started = time.perf_counter()
    for _ in range(turns):
        np.copyto(target, source)
        np.copyto(source, target)
    copy_s = time.perf_counter() - copy_started
    print("  baseline numpy.copyto of the same bytes: %.0f MB/s (eviction reaches %.0f %% "
          "of it; it also allocates, scrubs and frees device memory)"
          % (2 * turns * physical_mb / copy_s, 100 * (moved / elapsed_s)
             / (2 * turns * physical_mb * MB / copy_s)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="measurement per mix, after a 0.5 s warm-up")
    parser.add_argument("--quick", action="store_true", help="1 s per mix, fewer turns")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    shares(seconds)
    enforcement_cost(seconds)
    eviction_bandwidth(10 if args.quick else 40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
