"""The all-in-one pool's demo: a minute that shows what the pool does.

Each act runs real jobs through ``orionx-run`` (examples/throughput.py, a
compute-bound gemm loop written for NVIDIA's cuda-python, on OrionX's
libcuda.so.1) against the pool's REST API and data plane:

1. two jobs share one GPU at 30 % and 70 %; their throughputs side by side;
2. a third job that does not fit waits in the queue, position shown, and
   starts when the 30 % job ends;
3. a low-priority preemptible job is evicted by an urgent one;
4. a job reaches its vGPU over TCP, as a guest on another host would;
5. a summary table.
"""

import json
import os
import subprocess
import sys
import threading
import time

WORKLOAD = os.path.join("examples", "throughput.py")


class Job:
    """One ``orionx-run`` of the throughput workload, its output echoed
    with a label and its RESULT line kept."""

    def __init__(self, label, compute_pct, seconds, controller_url, memory_mb=512,
                 priority=50, flags=(), transport=None, out=sys.stdout):
        self.label = label
        self.compute_pct = compute_pct
        self.priority = priority
        self.transport = transport or "fastest"
        self.result = None
        self.queue_positions = []
        self.told_preempted = False  # the library's line with the GPU server's reason
        self.out = out
        argv = [sys.executable, "-m", "guest_runtime.run", "--controller", controller_url,
                "--compute-pct", str(compute_pct), "--memory-mb", str(memory_mb),
                "--priority", str(priority), *flags]
        if transport:
            argv += ["--transport", transport]
        argv += ["--", sys.executable, WORKLOAD, "--seconds", str(seconds), "--label", label]
        self.started_at = time.monotonic()
        self.ended_at = None
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            line = line.rstrip()
            if line.startswith("RESULT "):
                self.result = json.loads(line[len("RESULT "):])
                continue
            if "position" in line and "queue" in line:
                self.queue_positions.append(line)
            if "was preempted by" in line:
                self.told_preempted = True
            print("    [%s] %s" % (self.label, line), file=self.out, flush=True)

    def wait(self, timeout_s=120):
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(10)
        self._reader.join(5)
        self.ended_at = time.monotonic()
        return self

    @property
    def outcome(self):
        failed = self.result is None or "error" in self.result
        if failed and self.told_preempted:
            return "preempted"
        if self.result is None:
            return "failed (exit %s)" % self.process.returncode
        if "error" in self.result:
            return self.result["error"]
        return "ok" if self.result.get("ok") else "wrong result"

    @property
    def gflops(self):
        return (self.result or {}).get("gflops")


def _say(out, text):
    print(text, file=out, flush=True)


def act_shares(url, out, seconds):
    _say(out, "\n1. Two jobs on slices of one GPU: 30 % and 70 % of its compute")
    low = Job("A 30%", 30, seconds, url, priority=20, out=out)
    high = Job("B 70%", 70, seconds + 4, url, out=out)
    time.sleep(1.5)
    _say(out, "\n2. A third job (30 %) does not fit while A and B run: it waits")
    queued = Job("C 30%", 30, 3, url, out=out)
    jobs = [low.wait(), high.wait(), queued.wait()]
    if low.gflops and high.gflops:
        _say(out, "    A %.3g GFLOP/s : B %.3g GFLOP/s = %.0f %% : %.0f %% of their sum"
             % (low.gflops, high.gflops, 100 * low.gflops / (low.gflops + high.gflops),
                100 * high.gflops / (low.gflops + high.gflops)))
    return jobs


def act_preemption(url, out):
    _say(out, "\n3. Preemption: a low-priority preemptible job holds the GPU; "
              "an urgent job evicts it")
    victim = Job("P 80% low", 80, 30, url, priority=10, flags=["--preemptible"], out=out)
    time.sleep(2.5)
    urgent = Job("U 60% urgent", 60, 3, url, priority=90, flags=["--can-preempt"], out=out)
    return [urgent.wait(), victim.wait()]


def act_tcp(url, out):
    _say(out, "\n4. A job over TCP, as a guest on a host without GPUs would reach it")
    return [Job("T 50% tcp", 50, 3, url, transport="tcp", out=out).wait()]


def summary(jobs, out):
    _say(out, "\n5. Summary")
    header = ("job", "compute", "priority", "transport", "waited in queue", "GFLOP/s",
              "outcome")
    rows = [(j.label, "%d %%" % j.compute_pct, str(j.priority), j.transport,
             "yes" if j.queue_positions else "no",
             "%.3g" % j.gflops if j.gflops else "-", j.outcome) for j in jobs]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        _say(out, "    " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def run(url, out=sys.stdout, share_seconds=6):
    """Run every act against the pool at ``url``; returns the jobs."""
    if not os.path.exists(WORKLOAD):
        raise FileNotFoundError("the demo runs %s from the source tree; start it from the "
                                "repository's top directory" % WORKLOAD)
    _say(out, "OrionX demo: every job below is a real process using the pool through "
              "orionx-run.")
    jobs = act_shares(url, out, share_seconds)
    jobs += act_preemption(url, out)
    jobs += act_tcp(url, out)
    summary(jobs, out)
    return jobs
