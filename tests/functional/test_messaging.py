"""The management plane's transport works over a real RabbitMQ: an RPC call
and a cast reach a server on the broker the fixture provides."""

import threading

import oslo_messaging as messaging


class _Endpoint:
    target = messaging.Target(version="1.0")

    def __init__(self):
        self.casts = []
        self.cast_seen = threading.Event()

    def echo(self, ctxt, value):
        return {"value": value, "from": "server"}

    def note(self, ctxt, value):
        self.casts.append(value)
        self.cast_seen.set()


def test_rpc_call_and_cast_over_rabbitmq(conf, rabbit_url):
    # The services' global CONF: oslo.messaging registers some of its options
    # (tracing) on the global object only.
    transport = messaging.get_rpc_transport(conf, url=rabbit_url)
    endpoint = _Endpoint()
    target = messaging.Target(topic="orionx-test", server="host-a")
    server = messaging.get_rpc_server(transport, target, [endpoint])
    server.start()
    try:
        client = messaging.get_rpc_client(
            transport, messaging.Target(topic="orionx-test", server="host-a", version="1.0"),
            timeout=30)
        assert client.call({}, "echo", value=42) == {"value": 42, "from": "server"}
        client.cast({}, "note", value="preempt")
        assert endpoint.cast_seen.wait(30)
        assert endpoint.casts == ["preempt"]
    finally:
        server.stop()
        server.wait()
        transport.cleanup()
