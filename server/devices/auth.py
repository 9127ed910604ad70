"""HTTP endpoints for devices log in with the device's broker account.

A device already holds one secret, its MQTT username and password; asking
it for a second one would double what IT must provision and rotate.  The
password is checked against Mosquitto's ``passwd`` file, read on every call,
so a re-keyed or removed device is refused at once.  Least privilege: each
endpoint says which devices it serves (a gallery download only for the
devices that run the gallery, an evidence upload only for window cameras).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from broker.mosquitto import check_login

log = logging.getLogger(__name__)


def device_login(passwd_file: Path | None, realm: str, refusal: Callable[[str], str | None]) -> Callable[..., str | None]:
    """A FastAPI dependency giving the logged-in device id.

    ``refusal(device_id)`` returns why this device may not use the endpoint
    (403) or None.  ``passwd_file`` None leaves the endpoint open and gives
    None (the demo's embedded broker has no accounts).  401 for missing or
    wrong credentials, 503 when the accounts cannot be read.
    """
    basic = HTTPBasic(auto_error=False, realm=realm)
    challenge = {"WWW-Authenticate": f'Basic realm="{realm}"'}

    def device(credentials: HTTPBasicCredentials | None = Depends(basic)) -> str | None:
        if passwd_file is None:
            return None
        if credentials is None:
            raise HTTPException(401, "log in with the device's broker username and password", headers=challenge)
        try:
            valid = check_login(passwd_file, credentials.username, credentials.password)
        except OSError as exc:
            log.error("%s: cannot read the broker passwd file %s: %s", realm, passwd_file, exc)
            raise HTTPException(503, "device accounts are unavailable") from None
        if not valid:
            raise HTTPException(401, "wrong device username or password", headers=challenge)
        refused = refusal(credentials.username)
        if refused:
            raise HTTPException(403, refused)
        return credentials.username

    return device
