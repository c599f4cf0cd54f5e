"""The test process is offline before any HF import, and every way out of the machine is blocked."""

from __future__ import annotations

import socket

import datasets.config
import huggingface_hub.constants
import pytest


def test_hf_libraries_read_offline_at_import() -> None:
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert huggingface_hub.constants.is_offline_mode()
    assert datasets.config.HF_HUB_OFFLINE is True


@pytest.mark.parametrize("attempt", [
    lambda: socket.create_connection(("hub.invalid", 443), timeout=1),
    lambda: socket.getaddrinfo("huggingface.co", 443),
    lambda: socket.socket().connect(("93.184.216.34", 80)),
    lambda: socket.socket().connect_ex(("93.184.216.34", 80)),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)),
    lambda: socket.socket(socket.AF_INET6).connect(("2606:4700::1", 443, 0, 0)),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b"x"], [], 0, ("8.8.8.8", 53)),
    lambda: socket.gethostbyname("huggingface.co"),
    lambda: socket.gethostbyname_ex("huggingface.co"),
    lambda: socket.gethostbyaddr("8.8.8.8"),
    lambda: socket.getnameinfo(("8.8.8.8", 53), 0),
], ids=["create_connection", "getaddrinfo", "connect", "connect_ex", "udp_sendto", "connect_ipv6", "udp_sendmsg",
        "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"])
def test_every_way_out_is_blocked(attempt) -> None:
    with pytest.raises(OSError, match="network access is blocked in tests"):
        attempt()


def test_loopback_still_works() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("localhost", port), timeout=5) as client:
            peer, _ = server.accept()
            client.sendall(b"ok")
            assert peer.recv(2) == b"ok"
            peer.close()
