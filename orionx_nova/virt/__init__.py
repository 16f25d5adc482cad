"""OrionX in nova-compute: the libvirt driver extension (``driver``), the
guest XML every OrionX guest gets (``guest_xml``, shared with the agent's
virsh support) and flavor handling (``flavor``, ``extra_specs``).

Importing this package imports neither Nova nor the controller's
configuration: the agent reads ``guest_xml`` from here.
"""
