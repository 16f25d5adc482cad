"""The pool scheduler: which physical GPUs serve a request's vGPUs.

It decides and claims; it records no events and sends no casts, and it
never imports :mod:`orionx_nova.objects`, which carries its decisions out
(docs/scheduler.md).

- :mod:`.fit` -- the in-memory view of a GPU and of one vGPU's demand, and
  the rule that says whether a demand fits a GPU.
- :mod:`.planner` -- pure choice of distinct GPUs for all vGPUs of a request
  (local first, then binpack or spread), all or nothing.
- :mod:`.candidates` -- the SQL that loads GPUs worth considering.
- :mod:`.claims` -- optimistic-concurrency updates of GPU usage counters,
  and the retry loop around a transaction that claims.
- :mod:`.vgpu_binding` -- plan, claim, bind and release one request's vGPUs.
- :mod:`.preemption` -- which lower-priority work to evict.
- :mod:`.queue` -- the queue's order, and starting one queued request.
"""
