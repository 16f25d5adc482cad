"""Scheduler benchmark: place and release 10,000 vGPUs on 1,000 simulated
GPUs through the objects layer, on SQLite and on PostgreSQL.

    python benchmarks/scheduler.py
    python benchmarks/scheduler.py --postgresql-url postgresql://user@db/scratch

Prints allocations per second and p50/p99 latency of placing and of
releasing, with one client, beside a baseline measured in the same run on
the same database: a bare single-row INSERT transaction followed by a bare
single-row DELETE transaction, which bounds what any scheduler doing at
least one commit per request can reach there. Without --postgresql-url a
throwaway database is created on the local PostgreSQL server (and dropped).
"""

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from orionx_nova.db import api as db_api  # noqa: E402
from orionx_nova.db import migration  # noqa: E402
from orionx_nova.objects import allocations, nodes, notifier  # noqa: E402

LOCAL_POSTGRESQL = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
GPUS_PER_NODE = 8
GPU_MEMORY_MB = 81920
# Mixed sizes averaging 8 % of a GPU: 10,000 of them fill about 80 % of
# 1,000 GPUs, so late placements search a nearly full pool.
COMPUTE_PCT_CHOICES = (4, 8, 12)


class _Quiet:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _summary(name, latencies_s):
    total = sum(latencies_s)
    return "%-22s %8.0f /s   p50 %6.2f ms   p99 %6.2f ms   mean %6.2f ms" % (
        name,
        len(latencies_s) / total,
        1000 * _percentile(latencies_s, 0.5),
        1000 * _percentile(latencies_s, 0.99),
        1000 * statistics.mean(latencies_s),
    )


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def _register_pool(gpu_count):
    for node in range(gpu_count // GPUS_PER_NODE + bool(gpu_count % GPUS_PER_NODE)):
        hostname = "node-%04d" % node
        count = min(GPUS_PER_NODE, gpu_count - node * GPUS_PER_NODE)
        nodes.register(
            hostname,
            [
                {
                    "uuid": "%s-gpu%d" % (hostname, i),
                    "index": i,
                    "model": "SimGPU",
                    "pci_address": None,
                    "memory_mb": GPU_MEMORY_MB,
                }
                for i in range(count)
            ],
        )
    return gpu_count // GPUS_PER_NODE


def _baseline(engine, rounds):
    """Bare INSERT transaction then DELETE transaction of one row."""
    table = sa.Table(
        "bench_baseline",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.Integer),
    )
    table.create(engine)
    inserts, deletes = [], []
    try:
        for value in range(rounds):
            start = time.perf_counter()
            with db_api.transaction() as session:
                result = session.execute(sa.insert(table).values(value=value))
                row_id = result.inserted_primary_key[0]
            inserts.append(time.perf_counter() - start)
            start = time.perf_counter()
            with db_api.transaction() as session:
                session.execute(sa.delete(table).where(table.c.id == row_id))
            deletes.append(time.perf_counter() - start)
    finally:
        table.drop(engine)
    return inserts, deletes


def run(url, gpu_count, vgpu_count, seed):
    engine = db_api.create_engine(url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    notifier.set_notifier(_Quiet())
    rng = random.Random(seed)
    node_count = _register_pool(gpu_count)
    if engine.dialect.name == "postgresql":
        # Table statistics, as autovacuum gathers them within a minute of a
        # bulk load; without them PostgreSQL plans for empty tables.
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    place, release = [], []
    placed = []
    for _ in range(vgpu_count):
        body = {
            "vgpus": [
                {
                    "compute_pct": rng.choice(COMPUTE_PCT_CHOICES),
                    "memory_mb": rng.randint(1024, 6144),
                }
            ],
            "host": "node-%04d" % rng.randrange(node_count),
            "queue": False,
        }
        elapsed, allocation = _timed(allocations.create, body)
        place.append(elapsed)
        placed.append(allocation["uuid"])
    rng.shuffle(placed)
    for allocation_uuid in placed:
        release.append(_timed(allocations.delete, allocation_uuid)[0])
    baseline_insert, baseline_delete = _baseline(engine, min(2000, vgpu_count))
    db_api.dispose()
    return place, release, baseline_insert, baseline_delete


def report(label, results):
    place, release, baseline_insert, baseline_delete = results
    print("== %s: %d vGPUs placed then released, one client" % (label, len(place)))
    print(_summary("place (create)", place))
    print(_summary("release (delete)", release))
    print(_summary("place+release pair", [p + r for p, r in zip(place, release, strict=True)]))
    print(_summary("baseline INSERT tx", baseline_insert))
    print(_summary("baseline DELETE tx", baseline_delete))
    print()


@contextlib.contextmanager
def _throwaway_postgresql(server_url):
    name = "orionx_bench_%s" % uuid.uuid4().hex[:12]
    admin = sa.create_engine(server_url + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "%s"' % name))
    try:
        yield server_url + name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name))
        admin.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgresql-url",
        help="an empty PostgreSQL database to use (default: a throwaway one on the local server)",
    )
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--vgpus", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args(argv)
    print(
        "Pool: %d GPUs (%d per node, %d MB each); vGPUs of %s compute_pct.\n"
        % (args.gpus, GPUS_PER_NODE, GPU_MEMORY_MB, "/".join(map(str, COMPUTE_PCT_CHOICES)))
    )
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as directory:
            url = "sqlite:///%s" % os.path.join(directory, "bench.sqlite")
            report("SQLite", run(url, args.gpus, args.vgpus, args.seed))
    if not args.skip_postgresql:
        if args.postgresql_url:
            report("PostgreSQL", run(args.postgresql_url, args.gpus, args.vgpus, args.seed))
        else:
            with _throwaway_postgresql(LOCAL_POSTGRESQL) as url:
                report("PostgreSQL", run(url, args.gpus, args.vgpus, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
