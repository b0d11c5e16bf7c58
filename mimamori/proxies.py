"""The client's address behind reverse proxies: X-Forwarded-For is believed only from TRUSTED_PROXIES.

Anyone can send an X-Forwarded-For header, so believing it from anywhere lets a stranger choose
the address the sign-in throttle counts. Each proxy appends the address it received the request
from, so the client is the right-most hop that is not one of our own proxies: read the header from
the right while the hop we got it from is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from flask import Flask

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The address of whoever sent the request: the peer itself unless the peer is a trusted
    proxy, else the right-most hop of X-Forwarded-For that is not a trusted proxy."""
    networks = _networks(trusted)
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: stop at the last proxy we trust
        client = hop
        if not _trusted(hop, networks):
            break
    return client


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's address; the peer's is kept aside."""

    def __init__(self, wsgi_app: Callable[..., Any], app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        trusted: Any = self.app.config.get("TRUSTED_PROXIES") or ()
        if isinstance(trusted, str):
            trusted = tuple(part.strip() for part in trusted.split(",") if part.strip())
        peer = environ.get("REMOTE_ADDR") or ""
        if trusted:
            environ["mimamori.peer_addr"] = peer
            environ["REMOTE_ADDR"] = client_address(
                peer, environ.get("HTTP_X_FORWARDED_FOR"), trusted)
        return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> None:
    app.wsgi_app = TrustedProxies(app.wsgi_app, app)  # type: ignore[method-assign]
