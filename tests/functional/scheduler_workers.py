"""Worker processes of the scheduler concurrency test: each is a separate
controller process with its own engine on the shared database."""

import random

import sqlalchemy as sa

from orionx_nova import exception
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, notifier

GPUS = models.PhysicalGpu.__table__


class _Quiet:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def churn(url, seed, steps):
    """Create, resize, bind and delete allocations as fast as possible;
    returns a count of outcomes."""
    db_api.configure(db_api.create_engine(url))
    notifier.set_notifier(_Quiet())
    rng = random.Random(seed)
    mine = []
    outcomes = {}
    for _step in range(steps):
        try:
            outcome = _one_step(rng, mine)
        except exception.OrionXError as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        overcommitted = _overcommitted_gpus()
        if overcommitted:
            outcomes["overcommitted"] = outcomes.get("overcommitted", 0) + overcommitted
    db_api.dispose()
    return outcomes


def _one_step(rng, mine):
    roll = rng.random()
    if roll < 0.55 or not mine:
        body = {
            "vgpus": [
                {"compute_pct": rng.randint(5, 60), "memory_mb": rng.randint(100, 6000)}
                for _ in range(rng.choice([1, 1, 2]))
            ],
            "queue": rng.random() < 0.3,
            "mode": "acquire" if rng.random() < 0.2 else "reserve",
        }
        allocation = allocations.create(body)
        mine.append(allocation["uuid"])
        return "created " + allocation["state"]
    uuid = rng.choice(mine)
    if roll < 0.8:
        allocations.delete(uuid)
        mine.remove(uuid)
        return "deleted"
    if roll < 0.9:
        allocations.resize(uuid, compute_pct=rng.randint(5, 60))
        return "resized"
    allocations.bind(uuid, queue=False)
    return "bound"


def _overcommitted_gpus():
    """GPUs above 100 % compute or their memory capacity, seen right now
    (the final check alone could miss an overcommit that was undone)."""
    with db_api.transaction() as session:
        return session.execute(
            sa.select(sa.func.count()).where(
                sa.or_(
                    GPUS.c.allocated_compute_pct > 100,
                    GPUS.c.allocated_memory_mb > GPUS.c.memory_mb * GPUS.c.memory_oversub_ratio,
                )
            )
        ).scalar_one()
