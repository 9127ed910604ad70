"""Thresholds estimated from the enrolled gallery itself.

A hall cannot collect strangers' photos, but it has its own staff: leaving
one person out of the gallery turns their photos into stranger probes that
look like the hall's real population (same terminal, same ethnicity, same
light).  Over every person left out in turn we see how often a stranger
would pass a given (threshold, margin); leaving out one *photo* at a time
shows how often a clerk would.  We pick the pair that lets the most clerks
through while keeping the stranger false-accept rate at or under the hall's
target, plus a safety margin — and we say how sure that estimate is: with
``n`` stranger probes and none accepted, the 95 % upper bound is ``3 / n``.

People whose photos are nearer to each other than half of the gallery's
same-person pairs are listed as look-alikes; they confirm with 1:1
verification (staff number or card), because no threshold separates them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vision.identify import Gallery, Thresholds


@dataclass(frozen=True)
class Calibration:
    """The chosen thresholds and the evidence for them."""

    thresholds: Thresholds
    target_far: float
    stranger_probes: int
    stranger_accepts: int
    genuine_probes: int
    genuine_accepts: int
    lookalikes: tuple[tuple[str, str, float], ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def far(self) -> float:
        return self.stranger_accepts / self.stranger_probes if self.stranger_probes else float("nan")

    @property
    def far_upper95(self) -> float:
        """95 % upper bound of the false-accept rate (rule of three when none was accepted)."""
        if not self.stranger_probes:
            return 1.0
        n, k = self.stranger_probes, self.stranger_accepts
        return 3 / n if k == 0 else min(1.0, (k + 2 * np.sqrt(k) + 2) / n)

    @property
    def genuine_rate(self) -> float:
        return self.genuine_accepts / self.genuine_probes if self.genuine_probes else float("nan")

    @property
    def verify_only(self) -> frozenset[str]:
        """Everyone in a look-alike pair: they confirm with 1:1 verification."""
        return frozenset(p for a, b, _ in self.lookalikes for p in (a, b))

    def to_dict(self) -> dict[str, object]:
        return {
            "threshold": self.thresholds.threshold,
            "margin": self.thresholds.margin,
            "target_far": self.target_far,
            "stranger_probes": self.stranger_probes,
            "stranger_accepts": self.stranger_accepts,
            "far": self.far,
            "far_upper95": round(self.far_upper95, 4),
            "genuine_probes": self.genuine_probes,
            "genuine_accepts": self.genuine_accepts,
            "lookalikes": [list(p) for p in self.lookalikes],
            "warnings": list(self.warnings),
        }


def _distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """All Euclidean distances between rows of a and rows of b (one matrix product)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _two_smallest(rows: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if rows.shape[1] == 1:
        return rows[:, 0], np.full(rows.shape[0], np.inf)
    part = np.partition(rows, 1, axis=1)
    return part[:, 0], part[:, 1]


@dataclass(frozen=True)
class Samples:
    """What leave-one-out shows about a gallery (input of the threshold choice)."""

    stranger_d1: NDArray[np.float64]  # a left-out person's photo: nearest other person
    stranger_margin: NDArray[np.float64]  # ... and how far the second is behind
    genuine_own: NDArray[np.float64]  # a photo left out: its own person's nearest remaining photo
    genuine_other: NDArray[np.float64]  # ... and the nearest other person
    genuine_median: float
    cross: dict[tuple[str, str], float]  # nearest photos of two people, only pairs nearer than genuine_median


def _groups(gallery: Gallery, rows: int) -> list[list[int]]:
    """People in consecutive groups of about ``rows`` templates (one matrix product per group)."""
    groups: list[list[int]] = [[]]
    size = 0
    for index, person in enumerate(gallery.people):
        n = len(gallery.templates(person))
        if groups[-1] and size + n > rows:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += n
    return groups


def samples(gallery: Gallery, progress: Callable[[int, int], None] | None = None, *, block_rows: int = 512) -> Samples:
    """Leave-one-person-out and leave-one-photo-out over the gallery (matrix work, no I/O).

    Templates are compared a block at a time against the whole gallery (one
    BLAS product per block, ~100 MB at 5,000 people): memory stays flat and
    a 5,000-person gallery takes about a minute, not an hour.
    """
    people = gallery.people
    same = []
    for person in people:  # first pass: same-person distances, for the look-alike bound
        mine = gallery.templates(person)
        if len(mine) > 1:
            own = _distances(mine, mine)
            same.append(own[np.triu_indices(len(mine), 1)])
    pairs = np.concatenate(same) if same else np.zeros(0)
    bound = float(np.median(pairs)) if pairs.size else 0.0
    s_d1, s_margin, g_own, g_other = [], [], [], []
    cross: dict[tuple[str, str], float] = {}
    done = 0
    for group in _groups(gallery, block_rows):
        first, last = int(gallery.starts[group[0]]), int(gallery.starts[group[-1]]) + len(gallery.templates(people[group[-1]]))
        full = _distances(gallery.matrix[first:last], gallery.matrix)  # rows × templates
        block = np.minimum.reduceat(full, gallery.starts, axis=1)  # rows × people
        for index in group:
            person = people[index]
            start = int(gallery.starts[index]) - first
            mine = slice(start, start + len(gallery.templates(person)))
            others = np.delete(block[mine], index, axis=1)
            if others.shape[1]:
                d1, d2 = _two_smallest(others)
                s_d1.append(d1)
                s_margin.append(d2 - d1)
                nearest = block[mine].min(axis=0)
                for j in np.flatnonzero(nearest < bound):
                    if j != index and person < people[j]:
                        cross[(person, people[j])] = float(nearest[j])
            n = mine.stop - mine.start
            if n > 1:
                own_start = int(gallery.starts[index])
                own = full[mine, own_start : own_start + n].copy()
                np.fill_diagonal(own, np.inf)
                g_own.append(own.min(axis=1))
                g_other.append(others.min(axis=1) if others.shape[1] else np.full(n, np.inf))
            done += 1
        if progress:
            progress(done, len(people))

    def cat(parts: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        return np.concatenate(parts) if parts else np.zeros(0)

    return Samples(cat(s_d1), cat(s_margin), cat(g_own), cat(g_other), bound, cross)


def choose(
    found: Samples,
    target_far: float,
    *,
    safety: float = 0.02,
    min_margin: float = 0.10,
    max_threshold: float = 0.6,
) -> tuple[Thresholds, int, int]:
    """The (threshold, margin) that accepts the most clerks with strangers at or under the target.

    For each threshold on a 0.01 grid, the margin is the smallest that keeps
    the accepted strangers within ``target_far`` of the probes, plus
    ``safety``; ties go to the lower threshold (the safer side).
    """
    n = found.stranger_d1.size
    allowed = int(np.floor(target_far * n))
    best: tuple[float, float, float, int] | None = None  # genuine rate, -threshold, margin, strangers
    for threshold in np.round(np.arange(0.30, max_threshold + 1e-9, 0.01), 2):
        passing = np.sort(found.stranger_margin[found.stranger_d1 <= threshold])[::-1]
        needed = float(passing[allowed]) + 1e-6 if passing.size > allowed else 0.0
        margin = round(max(min_margin, needed + safety), 3)
        genuine = (found.genuine_own <= threshold) & (found.genuine_other - found.genuine_own >= margin)
        rate = float(genuine.mean()) if genuine.size else 0.0
        strangers = int(np.sum((found.stranger_d1 <= threshold) & (found.stranger_margin >= margin)))
        key = (rate, -float(threshold), margin, strangers)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    return Thresholds(-best[1], best[2]), best[3], int(round(best[0] * found.genuine_own.size))


def calibrate(gallery: Gallery, target_far: float = 0.01, progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Thresholds for this gallery, the estimate behind them, and the look-alike pairs."""
    found = samples(gallery, progress)
    thresholds, stranger_accepts, genuine_accepts = choose(found, target_far)
    lookalikes = tuple(
        sorted(((a, b, round(d, 3)) for (a, b), d in found.cross.items() if d < found.genuine_median), key=lambda t: t[2])
    )
    warnings = []
    n = found.stranger_d1.size
    if len(gallery) < 2:
        warnings.append("fewer than two people enrolled: no stranger can be simulated; using the most cautious margin")
    elif 3 / n > target_far:
        warnings.append(
            f"{n} stranger probes cannot show a rate under {target_far:.1%} (95 % upper bound {3 / n:.1%} even with none accepted): enrol more people or photos"
        )
    if found.genuine_own.size == 0:
        warnings.append("nobody has two photos: the rate of clerks let through cannot be estimated; enrol 3–5 photos per person")
    return Calibration(thresholds, target_far, n, stranger_accepts, found.genuine_own.size, genuine_accepts, lookalikes, tuple(warnings))
