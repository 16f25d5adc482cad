"""``cuda.bindings`` under orionx-run: only ``driver`` is served."""
