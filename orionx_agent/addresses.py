"""HOST:PORT options of the host side, parsed by the data plane's own
endpoint parser so that one grammar holds everywhere."""

from guest_runtime.endpoints import parse_endpoint


def parse_host_port(text, option):
    """(host, port) of ``text``; ValueError naming ``option`` when it is not
    HOST:PORT."""
    try:
        return parse_endpoint("tcp:" + text).address
    except ValueError:
        raise ValueError("%s %r is not HOST:PORT" % (option, text)) from None
