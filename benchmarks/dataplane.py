"""Data-plane benchmark: the C client library (libcuda.so.1) per transport
and route, beside raw baselines measured in the same run.

Builds the library and a small C driver-API program
(benchmarks/dataplane_client.c) in a temporary directory, starts a GPU
server (sim backend), a raw echo server, a plain two-hop forwarder and, for
the routed paths, host agents' gateways (each its own process), then prints
for each route:

* small synchronous call (cuCtxSynchronize) round trip beside its raw
  baseline: a raw echo of 20 bytes from C over a unix socket (shm, unix,
  handed), over TCP (tcp), or through a plain two-hop forwarder in C (unix
  in, TCP out: relayed, tls-relayed);
* pipelined launches per second end to end (cuLaunchKernel of the built-in
  fill_f32 over one element, then cuCtxSynchronize), how fast the client
  alone queues them, and what each launch costs the GPU server in CPU time
  (its busiest thread and all of it, from /proc schedstat): the server's
  per-op dispatch is what bounds the end-to-end rate;
* 64 MB host-to-device and device-to-host copies beside numpy.copyto of
  64 MB in this process;
* for relayed routes, the CPU time each small call costs the relaying
  gateway.

Routes: ``shm``, ``unix``, ``tcp`` (straight to the GPU server);
``handed`` (through the GPU host's gateway, which hands the connection's
descriptor to the GPU server: shared memory still works); ``relayed`` (a
guest on a host without GPUs: its gateway relays over TCP to the GPU host's
gateway, which hands over); ``tls-relayed`` (the same between TLS gateways:
the GPU host's gateway ends TLS and relays to its GPU server).

Targets (issue 14): over shm a small call <= 1.5x the raw unix echo,
>= 100,000 launches/s, 64 MB copies >= 70 % of copyto; relayed, a small
call <= 2x the raw two-hop relay.

Usage: python benchmarks/dataplane.py [--quick]
                                      [--routes shm,unix,tcp,handed,relayed,tls-relayed]
"""

import argparse
import functools
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orionx_agent.dev_tokens import development_token  # noqa: E402

SECRET = "benchmark-secret"
MB = 1 << 20
COPY_BYTES = 64 * MB
ROUTES = ("shm", "unix", "tcp", "handed", "relayed", "tls-relayed")
RELAYED = ("relayed", "tls-relayed")
GPU_UUID = "GPU-sim-%08d" % 0

ECHO_SERVER = textwrap.dedent("""
    import socket, sys, threading
    def serve(conn):
        view = memoryview(bytearray(65536))
        while True:
            n = conn.recv_into(view)
            if not n:
                return
            conn.sendall(view[:n])
    def accept(listener, tcp):
        while True:
            conn, _ = listener.accept()
            if tcp:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    unix = socket.socket(socket.AF_UNIX); unix.bind(sys.argv[1]); unix.listen()
    tcp = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=accept, args=(unix, False), daemon=True).start()
    print(tcp.getsockname()[1], flush=True)
    accept(tcp, True)
""")

# One host agent's gateway, without a controller: a fixed route table says
# which GPU is local (its GPU server's control socket) and which host's
# gateway holds the others. argv: unix socket, GPU uuid, control socket or
# "-", remote gateway "tcp:HOST:PORT" (or tls:) or "-", session secret, and
# TLS certificate, key and CA files or "-". Prints its TCP port.
GATEWAY_SERVER = textwrap.dedent("""
    import ssl, sys, threading
    from orionx_agent.agent.gateway import Gateway, TlsContexts
    from orionx_agent.server.control import ControlClient
    unix_path, gpu_uuid, control_path, remote = sys.argv[1:5]
    cert, key, ca = sys.argv[6:9]
    server_tls = None
    if cert != "-":
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert, key)
    tls = TlsContexts(server_tls, ssl.create_default_context(cafile=None if ca == "-" else ca))
    class LocalServer:
        gpu = {"uuid": gpu_uuid}
        def __init__(self):
            self.client = ControlClient(control_path)
        def wait_ready(self, timeout_s):
            return True
        def control(self):
            return self.client
    class Routes:
        hostname = "bench-host"
        server = LocalServer() if control_path != "-" else None
        def local_server(self, uuid):
            return self.server if uuid == gpu_uuid else None
        def only_local_server(self):
            return self.server
        def remote_node(self, uuid):
            return {"hostname": "gpu-host", "state": "up",
                    "endpoints": {"gateway": [remote]}}
        def forget(self, uuid):
            pass
    gateway = Gateway(sys.argv[5], Routes(), unix_socket_path=unix_path,
                      tcp_address=("127.0.0.1", 0), tls=tls).start()
    print(gateway.tcp_port, flush=True)
    threading.Event().wait()
""")


# -- processes --------------------------------------------------------------------

def build(state_dir):
    """(library directory, client binary), both built in ``state_dir``."""
    sys.path.insert(0, str(REPO / "guest_runtime" / "libcuda"))
    import build as libcuda_build  # the library's own build step

    library_dir = pathlib.Path(state_dir, "lib")
    libcuda_build.build(library_dir)
    binary = pathlib.Path(state_dir, "dataplane_client")
    subprocess.run([libcuda_build.compiler(), "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall",
                    "-Wextra", "-Werror", "-I", str(REPO / "guest_runtime" / "libcuda" / "include"),
                    "-o", str(binary), str(REPO / "benchmarks" / "dataplane_client.c"),
                    "-L", str(library_dir), "-lcuda"], check=True)
    return library_dir, binary


def start_gpu_server(state_dir):
    conf = os.path.join(state_dir, "orionx.conf")
    with open(conf, "w") as handle:
        handle.write("[DEFAULT]\nsession_secret = %s\nstate_dir = %s\n[gpu_server]\n"
                     "backend = sim\nsim_memory_mb = 1024\nshm_ring_mb = 16\n"
                     % (SECRET, state_dir))
    # The server takes its TCP port from the command line: find a free one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "orionx_agent.cmd.gpu_server", "--config-file", conf,
         "--gpu_server-tcp-listen", "127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO))
    unix_path = os.path.join(state_dir, "gpu-server-0.sock")
    _wait_for(lambda: os.path.exists(unix_path), child, "orionx-gpu-server")
    return child, "unix:" + unix_path, "tcp:127.0.0.1:%d" % port


def start_echo_server(state_dir):
    """(child, unix endpoint, tcp endpoint) of the raw echo."""
    path = os.path.join(state_dir, "echo.sock")
    child = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, path],
                             stdout=subprocess.PIPE, text=True)
    port = int(child.stdout.readline())
    return child, "unix:" + path, "tcp:127.0.0.1:%d" % port


def start_forwarder(state_dir, binary, library_dir, target):
    """The raw two-hop relay: unix in, TCP out to ``target``."""
    path = os.path.join(state_dir, "forward.sock")
    child = subprocess.Popen([str(binary), "forward", path, target], stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, LD_LIBRARY_PATH=str(library_dir)))
    if child.stdout.readline().strip() != "ready":
        sys.exit("the benchmark's forwarder did not start")
    return child, "unix:" + path


def start_gateways(state_dir, control_path):
    """{name: (child, unix endpoint, tcp endpoint)}: the GPU host's gateways
    (plain, TLS) and a GPU-less host's relaying to each."""
    cert, key = make_certificate(state_dir)
    gpu_hosts = {"gpu-host": _gateway(state_dir, "gpu-host", control_path=control_path),
                 "gpu-host-tls": _gateway(state_dir, "gpu-host-tls", control_path=control_path,
                                          tls=(cert, key, cert))}
    found = {name: _gateway_ready(*value) for name, value in gpu_hosts.items()}
    guest_hosts = {"guest-host": _gateway(state_dir, "guest-host",
                                          remote=found["gpu-host"][2]),
                   "guest-host-tls": _gateway(state_dir, "guest-host-tls",
                                              remote=found["gpu-host-tls"][2],
                                              tls=("-", "-", cert))}
    found.update({name: _gateway_ready(*value) for name, value in guest_hosts.items()})
    return found


def _gateway(state_dir, name, control_path="-", remote="-", tls=("-",) * 3):
    path = os.path.join(state_dir, "gateway-%s.sock" % name)
    child = subprocess.Popen([sys.executable, "-c", GATEWAY_SERVER, path, GPU_UUID,
                              control_path, remote, SECRET, *tls], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
    return child, path, "tls" if tls[0] != "-" else "tcp"


def _gateway_ready(child, path, kind):
    line = child.stdout.readline()
    if not line:
        sys.exit("a benchmark gateway did not start")
    return child, "unix:" + path, "%s:127.0.0.1:%d" % (kind, int(line))


def make_certificate(state_dir):
    """(cert, key) of a self-signed certificate for 127.0.0.1 (its own CA)."""
    cert, key = os.path.join(state_dir, "cert.pem"), os.path.join(state_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def _wait_for(predicate, child, name):
    deadline = time.monotonic() + 60
    while not predicate():
        if child.poll() is not None or time.monotonic() > deadline:
            sys.exit("%s did not start" % name)
        time.sleep(0.05)


# -- measuring --------------------------------------------------------------------

def run_client(binary, env, *args, readings=None):
    """The numbers a client mode prints; ``readings()``, when given, runs
    after it printed and before it ends (its session still open)."""
    child = subprocess.Popen([str(binary), *map(str, args)], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        taken = readings() if readings is not None and line else None
        _out, err = child.communicate(timeout=600)  # closes its stdin: it ends
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode or not line:
        sys.exit("benchmark client %s failed: %s" % (" ".join(map(str, args)), err.strip()))
    numbers = [float(v) for v in line.split()]
    return numbers if readings is None else (numbers, taken)


class CpuClock:
    """CPU time a process spends from now on: in all its threads (from
    /proc/PID/stat, threads that ended included, to the clock tick) and in
    its busiest thread still alive (schedstat, to the nanosecond)."""

    TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")

    def __init__(self, pid):
        self.pid = pid
        self.process_s = self._process_s()
        self.threads_ns = self._threads_ns()

    def _process_s(self):
        with open("/proc/%d/stat" % self.pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * self.TICK_S  # utime, stime

    def _threads_ns(self):
        found = {}
        task_dir = "/proc/%d/task" % self.pid
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "schedstat")) as handle:
                    found[int(tid)] = int(handle.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # the thread ended meanwhile
        return found

    def per_op_us(self, ops):
        """(whole process, busiest thread) CPU us per op since created."""
        process_us, threads_us = self.threads_per_op_us(ops)
        return process_us, threads_us[0]

    def threads_per_op_us(self, ops):
        """(whole process, [each live thread, busiest first]) CPU us per op."""
        process_s = self._process_s() - self.process_s
        now = self._threads_ns()
        spent = sorted((ns - self.threads_ns.get(tid, 0) for tid, ns in now.items()),
                       reverse=True) or [0]
        return process_s / ops * 1e6, [ns / ops / 1e3 for ns in spent]


def copyto_gbps(nbytes):
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    best = float("inf")
    for _ in range(10):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return nbytes / best / 1e9


def measure_route(name, env, baseline, setup, args):
    """One route's figures; each beside its baseline, alternating rounds and
    keeping the best of each (other work on the machine disturbs both)."""
    binary, server_pid = setup["binary"], setup["server_pid"]
    r = {"baseline_us": float("inf"), "call_us": float("inf"), "htod": 0.0, "dtoh": 0.0,
         "copyto": 0.0, "relay_cpu_us": None}
    relay_pid = setup["relay_pids"].get(name)
    for _ in range(args.rounds):
        r["baseline_us"] = min(r["baseline_us"],
                               run_client(binary, env, "echo", baseline, args.calls)[0])
        if relay_pid is None:
            r["call_us"] = min(r["call_us"], run_client(binary, env, "call", args.calls)[0])
            continue
        # The client makes 6 batches of calls (one to warm up).
        (call_us,), (_process, thread) = run_client(
            binary, env, "call", args.calls,
            readings=functools.partial(CpuClock(relay_pid).per_op_us, 6 * args.calls))
        r["call_us"] = min(r["call_us"], call_us)
        r["relay_cpu_us"] = min(r["relay_cpu_us"] or thread, thread)
    clock = CpuClock(server_pid)
    # A tenth to warm up, then three timed runs.
    (r["launches_per_s"], r["queued_per_s"]), (r["server_us"], threads_us) = (
        run_client(binary, env, "launch", args.launches, readings=lambda: clock.threads_per_op_us(
            args.launches // 10 + 3 * args.launches)))
    r["server_thread_us"] = threads_us[0]
    r["server_next_thread_us"] = threads_us[1] if len(threads_us) > 1 else 0.0
    for _ in range(args.rounds):
        r["copyto"] = max(r["copyto"], copyto_gbps(COPY_BYTES))
        up, down = run_client(binary, env, "copy", args.copies, COPY_BYTES)
        r["htod"], r["dtoh"] = max(r["htod"], up), max(r["dtoh"], down)
    return r


# -- report -----------------------------------------------------------------------

BASELINE_NAMES = {"unix": "raw unix echo", "tcp": "raw TCP echo", "relay": "raw 2-hop relay"}


def report(results, baseline_kinds):
    print("C client library (libcuda.so.1), sim GPU server; every baseline from this run")
    print("%-12s %9s %9s %-16s %6s %11s %11s %10s %10s %9s %9s"
          % ("route", "call us", "base us", "baseline", "x", "launches/s", "queued/s",
             "srv us/op", "srv thr us", "H2D 64MB", "D2H 64MB"))
    for name, r in results.items():
        print("%-12s %9.1f %9.1f %-16s %6.2f %11.0f %11.0f %10.1f %10.1f %6.2f %2.0f%% "
              "%5.2f %2.0f%%"
              % (name, r["call_us"], r["baseline_us"], BASELINE_NAMES[baseline_kinds[name]],
                 r["call_us"] / r["baseline_us"], r["launches_per_s"], r["queued_per_s"],
                 r["server_us"], r["server_thread_us"], r["htod"],
                 100 * r["htod"] / r["copyto"], r["dtoh"], 100 * r["dtoh"] / r["copyto"]))
    copyto = max(r["copyto"] for r in results.values())
    print("(bandwidths in GB/s and %% of numpy.copyto of 64 MB, best %.2f GB/s; srv us/op: "
          "GPU server CPU per launch, all threads; srv thr us: its busiest thread)" % copyto)
    for name, r in results.items():
        if r["relay_cpu_us"] is not None:
            print("  %s: the relaying gateway's relay thread spends %.1f us of CPU per small call"
                  % (name, r["relay_cpu_us"]))
    for name, r in results.items():
        # The server serves a session's frames in one thread at a time: its
        # CPU per launch bounds the rate whatever the client does.
        print("  %s launches: %.1f us each end to end; the client queues one in %.2f us; the "
              "GPU server's busiest thread spends %.1f us of CPU on each (%.0f %% of the wall "
              "time; the next %.1f us), so its dispatch alone allows at most %.0f/s" % (
                  name, 1e6 / r["launches_per_s"], 1e6 / r["queued_per_s"],
                  r["server_thread_us"], r["server_thread_us"] * r["launches_per_s"] / 1e4,
                  r["server_next_thread_us"], 1e6 / max(r["server_thread_us"], 1e-3)))
    print()
    print("Targets")
    if "shm" in results:
        r = results["shm"]
        _target("shm small call %.2fx <= 1.5x raw unix echo" % (r["call_us"] / r["baseline_us"]),
                r["call_us"] <= 1.5 * r["baseline_us"])
        _target("shm %.0f pipelined launches/s >= 100,000" % r["launches_per_s"],
                r["launches_per_s"] >= 100000)
        worst = min(r["htod"], r["dtoh"]) / r["copyto"] * 100
        _target("shm 64 MB copies %.0f %% of copyto >= 70 %%" % worst, worst >= 70)
    if "relayed" in results:
        r = results["relayed"]
        _target("relayed small call %.2fx <= 2x raw two-hop relay"
                % (r["call_us"] / r["baseline_us"]), r["call_us"] <= 2 * r["baseline_us"])


def _target(text, met):
    print("  [%s] %s" % ("met" if met else "MISSED", text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help="comma-separated, of %s" % ", ".join(ROUTES))
    parser.add_argument("--rounds", type=int, help="rounds of each figure beside its baseline "
                        "(default 3, 1 with --quick)")
    args = parser.parse_args(argv)
    routes = [name for name in args.routes.split(",") if name]
    unknown = sorted(set(routes) - set(ROUTES))
    if unknown:
        parser.error("unknown routes %s: choose from %s" % (", ".join(unknown), ", ".join(ROUTES)))
    args.calls, args.launches, args.copies, rounds = (
        (300, 10000, 1, 1) if args.quick else (3000, 100000, 4, 3))
    args.rounds = args.rounds or rounds

    state_dir = tempfile.mkdtemp(prefix="oxbench-")
    children = []
    try:
        library_dir, binary = build(state_dir)
        gpu_server, server_unix, server_tcp = start_gpu_server(state_dir)
        children.append(gpu_server)
        echo, echo_unix, echo_tcp = start_echo_server(state_dir)
        children.append(echo)
        baselines = {"unix": echo_unix, "tcp": echo_tcp}
        endpoints = {"shm": (server_unix, "shm"), "unix": (server_unix, "unix"),
                     "tcp": (server_tcp, "tcp")}
        relay_pids = {}
        if set(routes) & {"handed", *RELAYED}:
            gateways = start_gateways(state_dir, os.path.join(state_dir,
                                                              "gpu-server-0.control.sock"))
            children.extend(child for child, _u, _t in gateways.values())
            endpoints.update(handed=(gateways["gpu-host"][1], "auto"),
                             relayed=(gateways["guest-host"][1], "auto"))
            endpoints["tls-relayed"] = (gateways["guest-host-tls"][1], "auto")
            relay_pids = {"relayed": gateways["guest-host"][0].pid,
                          "tls-relayed": gateways["guest-host-tls"][0].pid}
        if set(routes) & set(RELAYED):
            forwarder, baselines["relay"] = start_forwarder(state_dir, binary, library_dir,
                                                             echo_tcp)
            children.append(forwarder)
        baseline_kinds = {name: "relay" if name in RELAYED else "tcp" if name == "tcp"
                          else "unix" for name in routes}
        setup = {"binary": binary, "server_pid": gpu_server.pid, "relay_pids": relay_pids}
        results = {}
        for name in routes:
            endpoint, transport = endpoints[name]
            token = development_token(SECRET, 100, 512, gpu_uuid=GPU_UUID,
                                      allocation_id="bench-%s" % name)
            env = dict(os.environ, LD_LIBRARY_PATH=str(library_dir), ORIONX_ENDPOINT=endpoint,
                       ORIONX_TOKEN=token, ORIONX_TRANSPORT=transport)
            results[name] = measure_route(name, env, baselines[baseline_kinds[name]], setup,
                                          args)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
    report(results, baseline_kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
