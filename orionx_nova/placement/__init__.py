"""The pool as Placement sees it: resource classes, traits, GPU providers,
sharing providers per pool, and the controller's own allocations.

``names`` holds every Placement name the pool uses (shared with the Nova
driver), ``provider_tree`` computes what Placement should hold, ``client``
talks to Placement and ``sync`` makes Placement match the pool.
"""
