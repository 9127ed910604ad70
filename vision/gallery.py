"""The gallery a terminal runs: templates, thresholds, look-alikes and PIN hashes.

Built by the server from the staff register, serialised here, then sealed
(encrypted and signed, :mod:`vision.gallery_seal`) for the trip to the
terminals.  It carries only what a terminal needs to decide on its own while
the network is down: no names beyond the display name, no photos.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import numpy as np
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from numpy.typing import NDArray

from vision.identify import Gallery, Thresholds

FORMAT = "hallwatch-gallery/1"
_PINS = PasswordHasher()


def hash_pin(pin: str) -> str:
    """argon2id: a 4–8 digit PIN is weak, so the hash must be slow (and the terminal limits tries)."""
    return _PINS.hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    """A typed PIN against its stored hash (the terminal checks offline, against its gallery)."""
    try:
        return _PINS.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, eq=False)
class Person:
    person_id: str
    name: str | None
    staff_no: str | None
    pin_hash: str | None
    templates: NDArray[np.float32]  # k × 128


@dataclass(frozen=True)
class TerminalGallery:
    """Everything a terminal decides with, for one gallery version."""

    version: int
    thresholds: Thresholds
    people: tuple[Person, ...]
    verify_only: frozenset[str] = field(default=frozenset())

    def matcher(self) -> Gallery:
        return Gallery({p.person_id: list(p.templates.astype(np.float64)) for p in self.people}, self.verify_only)

    def by_id(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.person_id == person_id), None)

    def by_staff_no(self, staff_no: str) -> Person | None:
        return next((p for p in self.people if p.staff_no == staff_no), None)

    def to_bytes(self) -> bytes:
        def pack(templates: NDArray[np.float32]) -> str:
            return base64.b64encode(np.ascontiguousarray(templates, dtype="<f4").tobytes()).decode()

        return json.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "threshold": self.thresholds.threshold,
                "margin": self.thresholds.margin,
                "verify_only": sorted(self.verify_only),
                "people": [
                    {"id": p.person_id, "name": p.name, "staff_no": p.staff_no, "pin_hash": p.pin_hash, "templates": pack(p.templates)}
                    for p in self.people
                ],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TerminalGallery:
        """Parse a gallery; ``ValueError`` saying what is wrong (after the seal was verified)."""
        try:
            raw = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT!r}")
            people = []
            for p in raw["people"]:
                flat = np.frombuffer(base64.b64decode(p["templates"]), dtype="<f4")
                if flat.size == 0 or flat.size % 128:
                    raise ValueError(f"person {p['id']}: templates are not 128-dimensional")
                templates = flat.reshape(-1, 128)
                people.append(Person(p["id"], p.get("name"), p.get("staff_no"), p.get("pin_hash"), templates))
            return cls(int(raw["version"]), Thresholds(float(raw["threshold"]), float(raw["margin"])), tuple(people), frozenset(raw["verify_only"]))
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a HallWatch gallery: {exc}") from None
