"""How the speech server listens and what it accepts; `check_options` refuses an unsafe or impossible
choice before anything binds. Imports nothing of the HTTP stack (the window reads these too)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from miodesk.errors import MioDeskError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8880  # Kokoro-FastAPI's port, which OpenAI-compatible TTS clients often suggest
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DEFAULT_QUEUE_SIZE = 8  # requests accepted at once, the one being spoken included (SpeechService)
ENV_API_KEY = "MIODESK_SERVER_API_KEY"  # `miodesk serve`'s key when --api-key is not given
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+")  # scheme://host[:port], as browsers send Origin


@dataclass(frozen=True)
class ServerOptions:
    """`host`/`port` to listen on (port 0: any free port); `api_key` (empty: none, loopback only) that
    clients send as `Authorization: Bearer KEY`; `cors_origins` that browsers may call from (none:
    no CORS headers at all); the largest request body and input text accepted."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = ""
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 65536
    max_input_chars: int = 4096


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; a name is not looked up (anything else counts as the network)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in WILDCARD_HOSTS


def check_options(options: ServerOptions) -> None:
    """MioDeskError (one line) for options the server must not or cannot start with."""
    if not options.host.strip():
        raise MioDeskError("The server needs an address to listen on, e.g. --host 127.0.0.1.")
    if not isinstance(options.port, int) or not 0 <= options.port <= 65535:
        raise MioDeskError(f"Port {options.port} is not a TCP port; give 1 to 65535 (default {DEFAULT_PORT}).")
    key = options.api_key
    if key and not (key.isascii() and key.isprintable() and " " not in key):
        raise MioDeskError("The API key must be printable ASCII without spaces (clients send it in a header).")
    if not is_loopback(options.host) and not key:
        raise MioDeskError(
            f"Listening on {options.host} makes the server reachable from other computers; that needs an "
            f"API key (--api-key or {ENV_API_KEY}). Without one it listens on 127.0.0.1 only."
        )
    if options.max_body_bytes < 1024 or options.max_input_chars < 1:
        raise MioDeskError("The request body limit must be at least 1024 bytes and the input limit at least 1.")
    for origin in options.cors_origins:
        if not _ORIGIN.fullmatch(origin):
            raise MioDeskError(f"CORS origin '{origin}' must be one origin, like http://localhost:3000 (no path, "
                               "no '*': name each site that may call the server).")
