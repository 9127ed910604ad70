"""The administrator token: the one credential for sensitive endpoints until user roles arrive.

Face enrolment and evidence pictures are personal data.  Their endpoints
are off unless a token file is configured (``HALLWATCH_ADMIN_TOKEN_FILE``,
refused if others can read it), and every call carries the token as
``Authorization: Bearer …``, compared in constant time.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import HTTPException, Request

from broker.config_file import ConfigError
from broker.key_files import KeyFileError, read_key_file

ADMIN_TOKEN_ENV = "HALLWATCH_ADMIN_TOKEN_FILE"


MIN_TOKEN_BYTES = 16


def admin_token(path: Path | None) -> bytes | None:
    """The token from its file (refused if others can read it, or shorter than 16 bytes), or None: administration off."""
    if path is None:
        return None
    try:
        token = read_key_file(path).strip()
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    if len(token) < MIN_TOKEN_BYTES:
        raise ConfigError(f"{path}: the administrator token is {len(token)} bytes; use at least {MIN_TOKEN_BYTES} (an empty one would let anyone in)")
    return token


def require_admin(request: Request, token: bytes | None, what: str) -> None:
    """Raise 503 when ``what`` is off (no token configured), 401 without the right token."""
    if token is None:
        raise HTTPException(503, f"{what} is off: set {ADMIN_TOKEN_ENV} to a file holding an administrator token")
    header = request.headers.get("authorization", "")
    given = header[7:].strip().encode() if header.lower().startswith("bearer ") else b""
    if not given or not token or not hmac.compare_digest(given, token):
        raise HTTPException(401, "administrator token required", headers={"WWW-Authenticate": "Bearer"})
