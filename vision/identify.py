"""Open-set identification: who is this — or nobody we know, or not sure.

The library's habit (any template within 0.6 is a match) accepts a stranger
as *somebody* in a 14-person gallery almost half of the time here.  Three
rules make it usable at a clock-in terminal:

* a face matches a person only within ``threshold`` of that person's nearest
  enrolled template (several templates per person cover pose and light);
* the best person must beat the second best by ``margin``: a stranger tends
  to sit at a similar distance from several enrolled people, a clerk is much
  nearer to themself than to anyone else;
* a decision over several frames must agree (:class:`FrameVote`).

Anything else asks the person to try again (or to use 1:1 verification with
their staff number); it never guesses.  Thresholds come from the gallery
itself (see :mod:`vision.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from vision.faces import Encoding

Outcome = Literal["identified", "ambiguous", "unknown", "verify"]


@dataclass(frozen=True)
class Thresholds:
    """When a best match counts (see the module docstring)."""

    threshold: float
    margin: float


@dataclass(frozen=True)
class Decision:
    """The answer for one face."""

    outcome: Outcome
    person_id: str | None  # the best match (also when not accepted, for logs)
    distance: float
    margin: float

    @property
    def accepted(self) -> bool:
        return self.outcome == "identified"


class Gallery:
    """Enrolled templates, several per person, as one matrix for fast distances."""

    def __init__(self, templates: Mapping[str, Sequence[Encoding]], verify_only: frozenset[str] = frozenset()) -> None:
        people = sorted(p for p, encs in templates.items() if len(encs))
        self.people: tuple[str, ...] = tuple(people)
        self.verify_only = verify_only
        rows = [np.asarray(e, dtype=np.float64) for p in people for e in templates[p]]
        self.matrix: NDArray[np.float64] = np.vstack(rows) if rows else np.zeros((0, 128))
        counts = [len(templates[p]) for p in people]
        self.starts = np.cumsum([0, *counts[:-1]]).astype(np.intp)
        self._rows = {p: (int(s), int(s) + n) for p, s, n in zip(people, self.starts, counts, strict=True)}

    def __len__(self) -> int:
        return len(self.people)

    def templates(self, person_id: str) -> NDArray[np.float64]:
        start, end = self._rows[person_id]
        return self.matrix[start:end]

    def person_distances(self, encoding: Encoding) -> NDArray[np.float64]:
        """Each person's nearest-template distance, in ``self.people`` order."""
        if not self.people:
            return np.zeros(0)
        d = np.linalg.norm(self.matrix - encoding, axis=1)
        return np.minimum.reduceat(d, self.starts)

    def flagged(self, verify_only: frozenset[str]) -> Gallery:
        """The same templates, with these people confirming by 1:1 verification."""
        return Gallery({p: list(self.templates(p)) for p in self.people}, verify_only)

    def without(self, person_ids: set[str]) -> Gallery:
        """The same gallery with some people left out (for leave-one-person-out)."""
        return Gallery({p: list(self.templates(p)) for p in self.people if p not in person_ids}, self.verify_only - person_ids)


def best_two(per_person: NDArray[np.float64]) -> tuple[int, float, float]:
    """Index of the nearest person, their distance, and the margin to the next (inf if alone)."""
    if per_person.size == 0:
        return -1, float("inf"), 0.0
    if per_person.size == 1:
        return 0, float(per_person[0]), float("inf")
    two = np.argpartition(per_person, 1)[:2]
    first, second = (two[0], two[1]) if per_person[two[0]] <= per_person[two[1]] else (two[1], two[0])
    return int(first), float(per_person[first]), float(per_person[second] - per_person[first])


def decide(per_person: NDArray[np.float64], people: Sequence[str], limits: Thresholds, verify_only: frozenset[str] = frozenset()) -> Decision:
    """The decision from each person's nearest distance (pure, for calibration and terminal alike)."""
    index, distance, margin = best_two(per_person)
    person = people[index] if index >= 0 else None
    if person is None or distance > limits.threshold:
        return Decision("unknown", person, distance, margin)
    if margin < limits.margin:
        return Decision("ambiguous", person, distance, margin)
    if person in verify_only:
        return Decision("verify", person, distance, margin)
    return Decision("identified", person, distance, margin)


def identify(encoding: Encoding, gallery: Gallery, limits: Thresholds) -> Decision:
    return decide(gallery.person_distances(encoding), gallery.people, limits, gallery.verify_only)


def verify(encoding: Encoding, gallery: Gallery, person_id: str, threshold: float) -> tuple[bool, float]:
    """1:1 — the claimed person (staff number or card) must be within ``threshold`` *and* the
    nearest enrolled person: the claim settles a tie between look-alikes, it cannot make the
    terminal accept a face that is plainly someone else's."""
    if person_id not in gallery.people:
        return False, float("inf")
    per_person = gallery.person_distances(encoding)
    distance = float(per_person[gallery.people.index(person_id)])
    return distance <= threshold and distance <= float(per_person.min()), distance


@dataclass
class FrameVote:
    """Agreement over frames: ``need`` identifications of one person and none of anyone else.

    One frame can be unlucky (motion, a blink, half a turn); a person standing
    at the terminal gives several in a second.  A frame naming someone else
    spoils the vote: then the person is asked to try again.
    """

    need: int = 3
    frames: int = 5
    decisions: list[Decision] = field(default_factory=list)

    def add(self, decision: Decision) -> Decision | None:
        """Add a frame; the final decision once there is one, else None."""
        self.decisions.append(decision)
        named = [d for d in self.decisions if d.outcome in ("identified", "verify")]
        people = {d.person_id for d in named}
        if len(people) > 1:
            return self._done(Decision("ambiguous", None, min(d.distance for d in named), 0.0))
        if len(named) >= self.need:
            best = min(named, key=lambda d: d.distance)
            return self._done(Decision(best.outcome, best.person_id, best.distance, min(d.margin for d in named)))
        if len(self.decisions) >= self.frames:
            worst = self.decisions[-1]
            outcome: Outcome = "unknown" if all(d.outcome == "unknown" for d in self.decisions) else "ambiguous"
            return self._done(Decision(outcome, worst.person_id, worst.distance, worst.margin))
        return None

    def _done(self, decision: Decision) -> Decision:
        self.decisions = []
        return decision
