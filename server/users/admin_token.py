"""The administrator token: how scripts call the API as the role ``admin``, without a user session.

Optional (``HALLWATCH_ADMIN_TOKEN_FILE``, refused if others can read it or
if it is shorter than 16 bytes); a call carries it as
``Authorization: Bearer …`` and :class:`server.users.authority.Authority` compares
it in constant time.
"""

from __future__ import annotations

from pathlib import Path

from broker.config_file import ConfigError
from broker.key_files import KeyFileError, read_key_file

MIN_TOKEN_BYTES = 16


def admin_token(path: Path | None) -> bytes | None:
    """The token from its file (refused if others can read it, or shorter than 16 bytes), or None: scripts have no token login."""
    if path is None:
        return None
    try:
        token = read_key_file(path).strip()
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    if len(token) < MIN_TOKEN_BYTES:
        raise ConfigError(f"{path}: the administrator token is {len(token)} bytes; use at least {MIN_TOKEN_BYTES} (an empty one would let anyone in)")
    return token
