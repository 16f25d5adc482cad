"""``from cuda import cuda`` (cuda-python before 12.6) under orionx-run."""

from guest_runtime.cuda import *  # noqa: F401,F403
