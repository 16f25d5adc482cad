"""The pool scheduler: which physical GPUs serve a request's vGPUs.

- :mod:`.fit` -- the in-memory view of a GPU and of one vGPU's demand, and
  the rule that says whether a demand fits a GPU.
- :mod:`.planner` -- pure choice of distinct GPUs for all vGPUs of a request
  (local first, then binpack or spread), all or nothing.
- :mod:`.candidates` -- the SQL that loads GPUs worth considering.
- :mod:`.claims` -- optimistic-concurrency updates of GPU usage counters.
- :mod:`.placement` -- plan and claim in one transaction.
- :mod:`.preemption` -- choice and eviction of lower-priority work.
- :mod:`.queue` -- serving queued requests when capacity frees.
"""
