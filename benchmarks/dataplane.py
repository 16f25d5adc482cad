"""Data-plane benchmark: what the protocol costs over each transport.

Starts its own GPU server (sim backend) and a raw echo server as separate
processes, then prints, all from this one run:

* baselines: round trip of a raw socket echo (unix, TCP) and numpy.copyto
  bandwidth;
* per transport (shm, unix, tcp): round trip of a small synchronous call,
  host-to-device and device-to-host bandwidth for 1 MB and 64 MB, pipelined
  launches per second, and the overhead of repeated gemm_f32 (n=1024)
  against the same numpy work in this process;
* the targets: overhead <= 2 % (shm, unix) and <= 5 % (tcp), small call
  <= 2x the raw echo, shm bulk >= 50 % of copyto;
* the routed paths through host agents' gateways, each gateway its own
  process: ``handed`` (a guest connects to its host's gateway, which hands
  the connection's descriptor to the GPU server: shared memory still
  works), ``relayed`` (a guest on a host without the GPU connects to its
  own gateway, which relays over TCP to the GPU host's gateway) and
  ``tls-relayed`` (the same between TLS gateways: encrypted by the relaying
  gateway, decrypted by the GPU host's, which relays to its GPU server),
  with their targets: a hand-over costs nothing measurable (gemm overhead
  <= 2 %), a relay <= 5 %, TLS included.

Usage: python benchmarks/dataplane.py [--quick] [--transports shm,unix,tcp]
                                      [--routes handed,relayed,tls-relayed]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

# Both sides must run the same BLAS with the same threads, and two OpenBLAS
# pools spinning on the same few cores disturb each other: one thread each
# (unless the caller chose otherwise) keeps the gemm comparison fair. This
# has to be set before numpy loads, here and in the server's environment.
BLAS_THREADS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _name in BLAS_THREADS_VARIABLES:
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from guest_runtime import cuda as driver  # noqa: E402
from guest_runtime import kernels, runtime  # noqa: E402
from guest_runtime.client import Connection  # noqa: E402
from orionx_agent.dev_tokens import development_token  # noqa: E402

SECRET = "benchmark-secret"
MB = 1 << 20
SMALL_MESSAGE_BYTES = 20  # a PING reply: header and status

ECHO_SERVER = textwrap.dedent("""
    import os, socket, sys, threading
    def serve(conn):
        buf = bytearray(65536)
        view = memoryview(buf)
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

BATCHES = 40


def best_of(repeats, function):
    """Best wall time of ``repeats`` runs: the least disturbed by the machine
    (other processes share its cores)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


# -- servers ------------------------------------------------------------------

def start_gpu_server(state_dir, memory_mb):
    conf = os.path.join(state_dir, "orionx.conf")
    with open(conf, "w") as handle:
        handle.write("[DEFAULT]\nsession_secret = %s\nstate_dir = %s\n[gpu_server]\n"
                     "backend = sim\nsim_memory_mb = %d\n"
                     "shm_ring_mb = 16\n" % (SECRET, state_dir, memory_mb))
    # The TCP port is chosen by the server: find it from a free port instead.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "orionx_agent.cmd.gpu_server", "--config-file", conf,
         "--gpu_server-tcp-listen", "127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    unix_path = os.path.join(state_dir, "gpu-server-0.sock")
    _wait_for(lambda: os.path.exists(unix_path), child, "orionx-gpu-server")
    return child, {"shm": ("unix:" + unix_path, "shm"), "unix": ("unix:" + unix_path, "unix"),
                   "tcp": ("tcp:127.0.0.1:%d" % port, "tcp")}


def start_echo_server(state_dir):
    path = os.path.join(state_dir, "echo.sock")
    child = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, path],
                             stdout=subprocess.PIPE, text=True)
    port = int(child.stdout.readline())
    return child, path, port


def start_gateway(state_dir, name, gpu_uuid, control_path="-", remote="-", tls=("-",) * 3):
    """A gateway process; returns (child, its unix endpoint, its TCP endpoint)."""
    path = os.path.join(state_dir, "gateway-%s.sock" % name)
    child = subprocess.Popen([sys.executable, "-c", GATEWAY_SERVER, path, gpu_uuid,
                              control_path, remote, SECRET, *tls], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    port = int(child.stdout.readline())
    kind = "tls" if tls[0] != "-" else "tcp"
    return child, "unix:" + path, "%s:127.0.0.1:%d" % (kind, port)


def make_certificate(state_dir):
    """(cert, key) of a self-signed certificate for 127.0.0.1 (its own CA)."""
    cert, key = os.path.join(state_dir, "cert.pem"), os.path.join(state_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def start_gateways(state_dir):
    """The GPU host's gateways (hand-over; TLS) and a GPU-less host's
    (relay to each)."""
    gpu_uuid = "GPU-sim-%08d" % 0
    control_path = os.path.join(state_dir, "gpu-server-0.control.sock")
    gpu_host, handed_unix, handed_tcp = start_gateway(state_dir, "gpu-host", gpu_uuid,
                                                      control_path=control_path)
    guest_host, relayed_unix, _ = start_gateway(state_dir, "guest-host", gpu_uuid,
                                                remote=handed_tcp)
    cert, key = make_certificate(state_dir)
    gpu_host_tls, _, tls_tcp = start_gateway(state_dir, "gpu-host-tls", gpu_uuid,
                                             control_path=control_path, tls=(cert, key, cert))
    guest_host_tls, tls_relayed_unix, _ = start_gateway(state_dir, "guest-host-tls", gpu_uuid,
                                                        remote=tls_tcp, tls=("-", "-", cert))
    routes = {"handed": (handed_unix, "auto", "shm"), "relayed": (relayed_unix, "auto", "unix"),
              "tls-relayed": (tls_relayed_unix, "auto", "unix")}
    return [gpu_host, guest_host, gpu_host_tls, guest_host_tls], routes, gpu_uuid


def _wait_for(predicate, child, name):
    deadline = time.monotonic() + 60
    while not predicate():
        if child.poll() is not None or time.monotonic() > deadline:
            sys.exit("%s did not start" % name)
        time.sleep(0.05)


# -- baselines ------------------------------------------------------------------

def echo_rtt_us(sock, iterations):
    message = b"x" * SMALL_MESSAGE_BYTES
    buffer = bytearray(SMALL_MESSAGE_BYTES)
    view = memoryview(buffer)

    batch = max(1, iterations // BATCHES)

    def run():
        for _ in range(batch):
            sock.sendall(message)
            got = 0
            while got < SMALL_MESSAGE_BYTES:
                got += sock.recv_into(view[got:])
    return best_of(BATCHES, run) / batch * 1e6


def copyto_gbps(nbytes):
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    repeats = max(3, int(256 * MB / nbytes))
    return nbytes / best_of(repeats, lambda: np.copyto(dst, src)) / 1e9


# -- per transport ------------------------------------------------------------------

def small_call_rtt_us(connection, iterations):
    batch = max(1, iterations // BATCHES)

    def run():
        for _ in range(batch):
            connection.ping()
    run()  # warm up: first calls pay for page faults and the spinning estimate
    return best_of(BATCHES, run) / batch * 1e6


def bandwidth_gbps(connection, nbytes):
    host = np.ones(nbytes, np.uint8)
    view = memoryview(host)
    (dptr,) = connection.mem_alloc(nbytes)
    repeats = max(3, int(256 * MB / nbytes))
    connection.memcpy_htod(dptr, buffer=view)
    htod = best_of(repeats, lambda: connection.memcpy_htod(dptr, buffer=view))
    dtoh = best_of(repeats, lambda: connection.memcpy_dtoh(dptr, nbytes, 0, reply_into=view))
    connection.mem_free(dptr)
    return nbytes / htod / 1e9, nbytes / dtoh / 1e9


def launches_per_s(cuda, launches):
    (_, dptr) = cuda.cuMemAlloc(1024)
    kernels.fill_f32(dptr, 1.0, 256)
    cuda.cuCtxSynchronize()

    def run():
        for _ in range(launches):
            kernels.fill_f32(dptr, 1.0, 256)
        cuda.cuCtxSynchronize()
    elapsed = best_of(3, run)
    cuda.cuMemFree(dptr)
    return launches / elapsed


def gemm_seconds(cuda, n, repeats, rounds):
    """(remote, local) best seconds of ``repeats`` gemm_f32 of n x n, measured
    in alternating rounds so that both see the same machine load."""
    nbytes = 4 * n * n
    host = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b_host, c_host = host.copy(), np.empty_like(host)
    a, b, c = (cuda.cuMemAlloc(nbytes)[1] for _ in range(3))
    cuda.cuMemcpyHtoD(a, host, nbytes)
    cuda.cuMemcpyHtoD(b, host, nbytes)

    def remote():
        for _ in range(repeats):
            kernels.gemm_f32(c, a, b, n, n, n)
        err, = cuda.cuCtxSynchronize()
        assert err == 0, cuda.last_error_message()

    def local():
        for _ in range(repeats):
            np.matmul(host, b_host, out=c_host)
    remote()
    local()  # warm up BLAS on both sides
    remote_s, local_s = [], []
    for _ in range(rounds):
        remote_s.append(best_of(1, remote))
        local_s.append(best_of(1, local))
    for ptr in (a, b, c):
        cuda.cuMemFree(ptr)
    return min(remote_s), min(local_s)


def measure_transport(name, endpoint, transport, token, echo_sock, args, expected_kind=None):
    connection = Connection(endpoint, token, transport=transport)
    assert connection.transport == (expected_kind or name), (connection.transport, name)
    # The echo is measured again right here, before and after, so that both
    # round trips see the same load on a shared machine.
    echo_before = echo_rtt_us(echo_sock, args.iterations)
    result = {"rtt_us": small_call_rtt_us(connection, args.iterations)}
    result["echo_us"] = min(echo_before, echo_rtt_us(echo_sock, args.iterations))
    for size_mb in (1, 64):
        result["htod_%d" % size_mb], result["dtoh_%d" % size_mb] = bandwidth_gbps(
            connection, size_mb * MB)
    connection.close()
    runtime.configure(endpoint=endpoint, token=token, transport=transport)
    driver.cuInit(0)
    result["launches_per_s"] = launches_per_s(driver, args.launches)
    remote, local = gemm_seconds(driver, args.gemm_n, args.gemm_repeats, args.gemm_rounds)
    result["gemm_remote_s"], result["gemm_local_s"] = remote, local
    result["gemm_overhead_pct"] = (remote / local - 1) * 100
    runtime.reset()
    return result


# -- report ----------------------------------------------------------------------

def report(baseline, results):
    print("Baselines (this run)")
    print("  raw echo round trip: unix %.1f us, tcp %.1f us (again beside each transport below)"
          % (baseline["echo_unix_us"], baseline["echo_tcp_us"]))
    print("  numpy.copyto: 1 MB %.2f GB/s, 64 MB %.2f GB/s"
          % (baseline["copyto_1"], baseline["copyto_64"]))
    print()
    print("%-11s %9s %8s %8s %9s %9s %9s %9s %11s %10s"
          % ("", "call us", "echo us", "x echo", "H2D 1MB", "D2H 1MB", "H2D 64MB", "D2H 64MB",
             "launches/s", "gemm ovh"))
    for name, r in results.items():
        echo = r["echo_us"]
        print("%-11s %9.1f %8.1f %8.2f %9.2f %9.2f %9.2f %9.2f %11.0f %9.2f%%"
              % (name, r["rtt_us"], echo, r["rtt_us"] / echo, r["htod_1"], r["dtoh_1"],
                 r["htod_64"], r["dtoh_64"], r["launches_per_s"], r["gemm_overhead_pct"]))
    print("(bandwidths in GB/s; gemm overhead: %d x gemm_f32 n=%d against the same numpy "
          "matmul in this process, BLAS threads %s on both sides)"
          % (baseline["gemm_repeats"], baseline["gemm_n"], os.environ["OPENBLAS_NUM_THREADS"]))
    print()
    print("Targets")
    for name, r in results.items():
        echo = r["echo_us"]
        limit = 5.0 if name in ("tcp", "relayed", "tls-relayed") else 2.0
        _target("%s gemm overhead %.2f %% <= %.0f %%" % (name, r["gemm_overhead_pct"], limit),
                r["gemm_overhead_pct"] <= limit)
        _target("%s small call %.2fx <= 2x raw echo" % (name, r["rtt_us"] / echo),
                r["rtt_us"] <= 2 * echo)
        if name == "shm":
            worst = min(r["htod_64"], r["dtoh_64"]) / baseline["copyto_64"] * 100
            _target("shm 64 MB bulk %.0f %% of copyto >= 50 %%" % worst, worst >= 50)


def _target(text, met):
    print("  [%s] %s" % ("met" if met else "MISSED", text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--transports", default="shm,unix,tcp")
    parser.add_argument("--routes", default="handed,relayed,tls-relayed",
                        help="routed paths through gateways to measure too (empty: none)")
    args = parser.parse_args(argv)
    args.iterations = 500 if args.quick else 5000
    args.launches = 500 if args.quick else 5000
    args.gemm_n = 256 if args.quick else 1024
    args.gemm_repeats = 3 if args.quick else 10
    args.gemm_rounds = 3 if args.quick else 7

    state_dir = tempfile.mkdtemp(prefix="oxbench-", dir="/tmp")
    gpu_server, endpoints = start_gpu_server(state_dir, memory_mb=1024)
    echo_server, echo_path, echo_port = start_echo_server(state_dir)
    children = [gpu_server, echo_server]
    try:
        baseline, echo_socks = measure_baseline(echo_path, echo_port, args.iterations)
        baseline.update(gemm_n=args.gemm_n, gemm_repeats=args.gemm_repeats)
        token = development_token(SECRET, 100, 512)
        results = {name: measure_transport(name, *endpoints[name], token,
                                           echo_socks["tcp" if name == "tcp" else "unix"],
                                           args)
                   for name in args.transports.split(",")}
        results.update(measure_routes(state_dir, children, echo_socks, args))
    finally:
        for child in children:
            child.terminate()
            child.wait()
    report(baseline, results)
    return 0


def measure_routes(state_dir, children, echo_socks, args):
    """The routed paths, each with a token naming the GPU (gateways route by it)."""
    routes = [name for name in args.routes.split(",") if name]
    if not routes:
        return {}
    gateways, endpoints, gpu_uuid = start_gateways(state_dir)
    children.extend(gateways)
    token = development_token(SECRET, 100, 512, gpu_uuid=gpu_uuid)
    results = {}
    for name in routes:
        endpoint, transport, kind = endpoints[name]
        # The relay crosses TCP between hosts: compare it with the TCP echo.
        echo = echo_socks["tcp" if name in ("relayed", "tls-relayed") else "unix"]
        results[name] = measure_transport(name, endpoint, transport, token, echo, args,
                                          expected_kind=kind)
    return results


def measure_baseline(echo_path, echo_port, iterations):
    unix = socket.socket(socket.AF_UNIX)
    unix.connect(echo_path)
    tcp = socket.create_connection(("127.0.0.1", echo_port))
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    baseline = {"echo_unix_us": echo_rtt_us(unix, iterations),
                "echo_tcp_us": echo_rtt_us(tcp, iterations),
                "copyto_1": statistics.median(copyto_gbps(MB) for _ in range(3)),
                "copyto_64": copyto_gbps(64 * MB)}
    return baseline, {"unix": unix, "tcp": tcp}


if __name__ == "__main__":
    sys.exit(main())
