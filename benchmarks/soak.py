"""Soak benchmark: 8 API clients and 8 guests churn one all-in-one pool on
loopback for a bounded time, and the pool's accounting must hold.

    python benchmarks/soak.py            # 180 s
    python benchmarks/soak.py --short    # 30 s

It starts ``orionx-allinone`` on a free loopback port with two simulated
GPUs and a throwaway state directory. API clients create, bind, unbind,
preempt, resize and delete allocations at random; guests run a short
CUDA program under ``orionx-run`` (create, bind, run, delete), some of
them killed mid-run. A monitor reads ``GET /v1/gpus`` all the while. At the
end every allocation is deleted and, once held capacity is handed on
(``[controller] revocation_timeout_s`` at most), it prints:

    operations done, 5xx answers, GPUs ever above capacity (or below 0),
    capacity leaked at the end (allocated % and MB left on the GPUs)

all of which must be 0 except the first; the exit status is 1 otherwise.
Nothing leaves the loopback interface.
"""

import argparse
import json
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
API_CLIENTS = 8
GUESTS = 8
SIM_GPUS = "2x4096"
SETTLE_S = 45  # > [controller] revocation_timeout_s (30 s) plus a report


class Figures:
    def __init__(self):
        self.lock = threading.Lock()
        self.operations = 0
        self.server_errors = []
        self.over_capacity = set()

    def count(self, status, what):
        with self.lock:
            self.operations += 1
            if status >= 500:
                self.server_errors.append("%s: %d" % (what, status))


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, None


def _api_client(url, figures, seed, stop):
    rng = random.Random(seed)
    mine = []
    while not stop.is_set():
        op = rng.choice(("create", "create", "bind", "unbind", "preempt", "resize", "delete"))
        if op == "create" or not mine:
            mode = rng.choice(("reserve", "acquire"))
            body = {"mode": mode, "queue": rng.random() < 0.5,
                    "priority": rng.randint(1, 99), "preemptible": rng.random() < 0.5,
                    "can_preempt": rng.random() < 0.3,
                    "vgpus": [{"compute_pct": rng.choice((10, 25, 50)),
                               "memory_mb": rng.choice((256, 512, 1024))}]}
            status, answer = _call(url, "POST", "/v1/allocations", body)
            figures.count(status, "create")
            if answer and "uuid" in answer:
                mine.append(answer["uuid"])
            continue
        uuid = rng.choice(mine)
        if op == "delete":
            status, _ = _call(url, "DELETE", "/v1/allocations/" + uuid)
            mine.remove(uuid)
        elif op == "resize":
            status, _ = _call(url, "PATCH", "/v1/allocations/" + uuid,
                              {"memory_mb": rng.choice((128, 256, 768))})
        else:
            status, _ = _call(url, "POST", "/v1/allocations/%s/%s" % (uuid, op), {})
        figures.count(status, op)
    for uuid in mine:
        status, _ = _call(url, "DELETE", "/v1/allocations/" + uuid)
        figures.count(status, "delete")


def _guest(url, figures, seed, stop):
    rng = random.Random(seed)
    while not stop.is_set():
        program = subprocess.Popen(
            [str(BIN / "orionx-run"), "--controller", url, "--compute-pct",
             str(rng.choice((10, 20, 30))), "--memory-mb", str(rng.choice((128, 256))), "--",
             sys.executable, "examples/saxpy.py"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.5, 3))
            program.send_signal(signal.SIGKILL)  # a guest killed mid-run
        try:
            program.wait(120)
        except subprocess.TimeoutExpired:
            program.kill()
            program.wait()
        with figures.lock:
            figures.operations += 1


def _gpus(url):
    status, answer = _call(url, "GET", "/v1/gpus")
    return answer["gpus"] if status == 200 else []


def _monitor(url, figures, stop):
    while not stop.is_set():
        for gpu in _gpus(url):
            if not (0 <= gpu["allocated_compute_pct"] <= 100
                    and 0 <= gpu["allocated_memory_mb"] <= gpu["capacity_memory_mb"]):
                with figures.lock:
                    figures.over_capacity.add(gpu["uuid"])
        time.sleep(0.2)


def _start_pool(state_dir, port):
    process = subprocess.Popen(
        [str(BIN / "orionx-allinone"), "--state-dir", str(state_dir), "--sim-gpus", SIM_GPUS,
         "--port", str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if _gpus(url):
                return process, url
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("orionx-allinone did not serve GPUs within 90 s")


def _leaked(url):
    """(allocated %, allocated MB) left on the GPUs once nothing is
    allocated any more and held capacity was handed on."""
    status, answer = _call(url, "GET", "/v1/allocations")
    for allocation in (answer or {}).get("allocations", ()):
        _call(url, "DELETE", "/v1/allocations/" + allocation["uuid"])
    deadline = time.monotonic() + SETTLE_S
    while True:
        gpus = _gpus(url)
        leaked = (sum(g["allocated_compute_pct"] for g in gpus),
                  sum(g["allocated_memory_mb"] for g in gpus))
        if leaked == (0, 0) or time.monotonic() > deadline:
            return leaked
        time.sleep(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=180, help="how long to churn")
    parser.add_argument("--short", action="store_true", help="churn for 30 s")
    args = parser.parse_args(argv)
    seconds = 30 if args.short else args.seconds
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="orionx-soak-") as state_dir:
        process, url = _start_pool(pathlib.Path(state_dir), _free_port())
        try:
            stop, watching = threading.Event(), threading.Event()
            monitor = threading.Thread(target=_monitor, args=(url, figures, watching))
            monitor.start()
            workers = [threading.Thread(target=_api_client, args=(url, figures, i, stop))
                       for i in range(API_CLIENTS)]
            workers += [threading.Thread(target=_guest, args=(url, figures, 100 + i, stop))
                        for i in range(GUESTS)]
            for worker in workers:
                worker.start()
            time.sleep(seconds)
            stop.set()
            for worker in workers:
                worker.join()
            leaked = _leaked(url)
            watching.set()
            monitor.join()
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    print("soak: %d s, %d API clients, %d guests, GPUs %s" % (seconds, API_CLIENTS, GUESTS,
                                                             SIM_GPUS))
    print("operations done          %d" % figures.operations)
    print("5xx answers              %d" % len(figures.server_errors))
    print("GPUs ever above capacity %d" % len(figures.over_capacity))
    print("capacity leaked at end   %d %% compute, %d MB" % leaked)
    for line in figures.server_errors[:10]:
        print("  5xx: " + line)
    ok = not figures.server_errors and not figures.over_capacity and leaked == (0, 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
