"""Nova loads compute drivers as ``nova.virt.<compute_driver>``: with
``compute_driver = orionx.driver.OrionXLibvirtDriver`` this package is where
it looks. Installed into Nova's own ``nova/virt`` (the pool ships no
``nova/__init__.py`` and ``nova/virt/__init__.py``)."""
