"""Reading key and secret files safely (face templates, the gallery, admin tokens).

A secret in a file that other users can read is not a secret: such a file is
refused, naming it and the fix, instead of being used.  A public key may be
readable by anyone, but not writable: replacing it would let someone else
sign.
"""

from __future__ import annotations

import stat
from pathlib import Path


class KeyFileError(ValueError):
    """A key file that is missing, unsafe or malformed; the message names the file."""


def read_key_file(path: Path, *, secret: bool = True) -> bytes:
    """The file's bytes; refuses a file others may read (secret) or write (any)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    others = (stat.S_IRWXG | stat.S_IRWXO) if secret else (stat.S_IWGRP | stat.S_IWOTH)
    if mode & others:
        what = "readable or writable by others" if secret else "writable by others"
        raise KeyFileError(f"{path}: key file is {what} (mode {stat.filemode(mode)}); chmod 600 it")
    return data
