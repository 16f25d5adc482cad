"""``cuda.bindings.driver`` under orionx-run: the OrionX client runtime."""

from guest_runtime.cuda import *  # noqa: F401,F403
from guest_runtime.cuda import __doc__  # noqa: F401
