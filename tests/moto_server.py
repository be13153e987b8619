"""moto as a server, for the tests that talk HTTP to AWS APIs (real clients, real processes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port: its URL; stopped on exit, also when the block
    fails."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
