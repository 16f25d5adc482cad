"""``[DEFAULT] compute_driver = orionx.driver.OrionXLibvirtDriver``."""

from orionx_nova.virt.driver import OrionXLibvirtDriver

__all__ = ["OrionXLibvirtDriver"]
