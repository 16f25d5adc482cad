"""Optimistic-concurrency updates of GPU usage, and the retry loop around
a transaction that claims.

Every change to a GPU's ``allocated_*`` counters bumps its ``generation``. A claim
names the generation it planned against; when another controller changed
the GPU in between, the UPDATE matches no row, the whole transaction rolls
back and the request is planned again from fresh rows. The UPDATE also
re-checks capacity, so even a stale plan can never overcommit a GPU.
"""

import functools
import random
import time

import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.scheduler import fit

LOG = logging.getLogger(__name__)

GPUS = models.PhysicalGpu.__table__

# Lock conflicts the database resolves by aborting one side: PostgreSQL's
# serialization failure and deadlock, MySQL's deadlock and lock wait
# timeout. SQLite reports a busy writer as "database is locked".
_PG_TRANSIENT = ("40001", "40P01")
_MYSQL_TRANSIENT = (1205, 1213)


class RaceLost(Exception):
    """A claim's GPU changed since it was read; plan again."""


@functools.cache
def _usage_update(check_generation, check_compute, check_memory):
    """UPDATE of one GPU's usage by a delta, built once per set of guards."""
    query = (
        sa.update(GPUS)
        .where(GPUS.c.id == sa.bindparam("gpu_id"))
        .values(
            allocated_compute_pct=GPUS.c.allocated_compute_pct + sa.bindparam("delta_compute_pct"),
            allocated_memory_mb=GPUS.c.allocated_memory_mb + sa.bindparam("delta_memory_mb"),
            generation=GPUS.c.generation + 1,
        )
    )
    if check_generation:
        query = query.where(GPUS.c.generation == sa.bindparam("planned_generation"))
    if check_compute:
        query = query.where(
            GPUS.c.allocated_compute_pct + sa.bindparam("delta_compute_pct")
            <= fit.COMPUTE_PCT_PER_GPU
        )
    if check_memory:
        query = query.where(
            GPUS.c.allocated_memory_mb + sa.bindparam("delta_memory_mb")
            <= GPUS.c.memory_mb * GPUS.c.memory_oversub_ratio
        )
    return query


def adjust_usage(session, deltas, generations=None):
    """Apply ``deltas`` ({gpu_id: (compute_pct, memory_mb)}, positive to
    claim, negative to release). With ``generations`` ({gpu_id: generation
    planned against}) an UPDATE that finds another generation raises
    :class:`RaceLost`; a claim that would overcommit does too. GPUs are
    updated in id order so two transactions touching the same GPUs never
    deadlock."""
    generations = generations or {}
    for gpu_id in sorted(deltas):
        compute_pct, memory_mb = deltas[gpu_id]
        if compute_pct == 0 and memory_mb == 0:
            continue
        params = {"gpu_id": gpu_id, "delta_compute_pct": compute_pct, "delta_memory_mb": memory_mb}
        if gpu_id in generations:
            params["planned_generation"] = generations[gpu_id]
        query = _usage_update(gpu_id in generations, compute_pct > 0, memory_mb > 0)
        if session.execute(query, params).rowcount != 1:
            raise RaceLost("GPU %d changed since it was planned" % gpu_id)


def is_transient(error):
    orig = getattr(error, "orig", None)
    if getattr(orig, "pgcode", None) in _PG_TRANSIENT:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_TRANSIENT:
        return True
    return "database is locked" in str(error)


def run_with_retries(work, what):
    """Run ``work(session)`` in a transaction, again from the start each time
    it loses a race, up to ``[scheduler] claim_retries`` times."""
    attempts = CONF.scheduler.claim_retries
    for attempt in range(attempts):
        try:
            with db_api.transaction() as session:
                return work(session)
        except RaceLost as error:
            LOG.debug("%s lost a race (attempt %d): %s", what, attempt + 1, error)
        except sa.exc.DBAPIError as error:
            if not is_transient(error):
                raise
            LOG.debug("%s hit a lock conflict (attempt %d): %s", what, attempt + 1, error)
        # A short random pause keeps retrying controllers from colliding
        # again in lock step.
        time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise exception.ClaimRaceLost(
        "%s lost the race for its GPUs %d times against concurrent requests; "
        "retry it, or raise [scheduler] claim_retries" % (what, attempts)
    )
