"""Is the clerk's seat occupied?  The window-camera monitor on clips composed from the real photos.

Each clip (tests/clips.py) is played once at 5 fps through a monitor with
the real HOG face finder, and the tests read what a supervisor would see:
the seat's decided states, when they were decided and the onset they
report.  The boundaries are the monitor's own delays: occupied
``occupied_after_s`` after the first sighting, vacant ``vacant_after_s``
after the last one, each within a frame or two (a frame is 0.2 s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

import clips
from clips import WALK_S, Clip
from vision.occupancy import Change, Frame, OccupancyMonitor, OccupancySettings, SeatRegion, SeatState, hog_faces, inside

FRAME = 1 / clips.FPS
EPS = 1e-6
DEFAULT = OccupancySettings()
FACES = hog_faces()
"""Production's finder: HOG without upsampling (the clerk's face is ~105 px)."""


@dataclass(frozen=True)
class Run:
    """A clip played through a monitor: its changes and the decided state after every frame."""

    clip: Clip
    settings: OccupancySettings
    changes: list[Change]
    states: list[SeatState | None]
    kept: dict[float, Frame]

    def at(self, t0: float, t1: float) -> list[Change]:
        """The changes decided in ``t0``..``t1``."""
        return [c for c in self.changes if t0 <= c.at <= t1]

    def states_in(self, t0: float, t1: float) -> set[SeatState | None]:
        return {s for t, s in zip(self.clip.times, self.states) if t0 <= t <= t1}


def play(clip: Clip, settings: OccupancySettings = DEFAULT, keep: tuple[float, ...] = ()) -> Run:
    region = SeatRegion("w01", "clerk", clip.seat)
    monitor = OccupancyMonitor([region], clip.reference, settings, customer=[clip.customer], face_finder=FACES)
    changes: list[Change] = []
    states: list[SeatState | None] = []
    kept: dict[float, Frame] = {}
    for t, frame in clip.frames():
        changes += monitor.update(frame, t)
        states.append(monitor.states()[0][1])
        if t in keep:
            kept[t] = frame
    assert all(c.region == region for c in changes)
    return Run(clip, settings, changes, states, kept)


def late(run: Run, *, object_left: float | None = None) -> list[tuple[float, SeatState | None, bool]]:
    """Frames where the decided state contradicts the truth for longer than the hysteresis explains.

    Becoming occupied may lag the truth by ``occupied_after_s``, becoming
    vacant by ``vacant_after_s`` (plus ``still_s`` after ``object_left``: a
    motionless change gets that much doubt), each plus two frames.
    """
    s = run.settings
    wrong: list[tuple[float, SeatState | None, bool]] = []
    since, previous = run.clip.times[0], None
    for t, truth, state in zip(run.clip.times, run.clip.truth, run.states):
        if truth != previous:
            since, previous = t, truth
        if truth is None or state is None or (state == "occupied") == truth:
            continue
        allowed = s.occupied_after_s if truth else s.vacant_after_s + (s.still_s if object_left is not None and t > object_left else 0.0)
        if t - since > allowed + 2 * FRAME + EPS:
            wrong.append((t, state, truth))
    return wrong


def assert_arrival(change: Change, arrive: float, settings: OccupancySettings) -> None:
    """Occupied, dated to the walk into the seat, decided ``occupied_after_s`` after that (a frame of slack)."""
    assert change.state == "occupied", change
    assert arrive - EPS <= change.since <= arrive + WALK_S + EPS, change
    assert settings.occupied_after_s - EPS <= change.at - change.since <= settings.occupied_after_s + FRAME + EPS, change


def assert_departure(change: Change, leave: float, settings: OccupancySettings, delay: float = 0.0) -> None:
    """Vacant, dated to the walk out of the seat, decided ``vacant_after_s`` (+ ``delay``) after that.

    Two frames of slack: the first frame without a sighting, and float rounding.
    """
    assert change.state == "vacant", change
    assert leave - EPS <= change.since <= leave + WALK_S + EPS, change
    wait = settings.vacant_after_s + delay
    assert wait - EPS <= change.at - change.since <= wait + 2 * FRAME + EPS, change


# ------------------------------------------------------- the clips, played once

SHIFT_FACING, SHIFT_DOWN, SHIFT_STILL = (19.0, 30.0, 115.0), (54.0, 80.0, 110.0), (25.0, 51.0)


@pytest.fixture(scope="module")
def shift(faces_dir: Path) -> Run:
    return play(clips.shift(faces_dir), keep=SHIFT_FACING + SHIFT_DOWN + SHIFT_STILL)


@pytest.fixture(scope="module")
def steps_away(faces_dir: Path) -> Run:
    return play(clips.steps_away(DEFAULT.vacant_after_s, faces_dir))


@pytest.fixture(scope="module")
def lights_empty(faces_dir: Path) -> Run:
    return play(clips.lights_empty(faces_dir))


@pytest.fixture(scope="module")
def lights_seated(faces_dir: Path) -> Run:
    return play(clips.lights_seated(faces_dir))


COAT = OccupancySettings(absorb_s=45.0)
"""The coat is absorbed 45 s after it last moved instead of 120 s, to keep the clip short."""


@pytest.fixture(scope="module")
def coat(faces_dir: Path) -> Run:
    return play(clips.coat_left(faces_dir), COAT)


# --------------------------------------------------- the clips are what they say


def _faces_in_seat(frame: Frame) -> int:
    return sum(inside(clips.SEAT, (left + right) / 2, (top + bottom) / 2) for top, right, bottom, left in FACES(frame))


def test_the_clerk_s_face_is_found_facing_the_camera_and_not_while_looking_down(shift: Run) -> None:
    """Without this the looking-down test would prove nothing: the face must really be gone."""
    assert [_faces_in_seat(shift.kept[t]) for t in SHIFT_FACING] == [1, 1, 1]
    assert [_faces_in_seat(shift.kept[t]) for t in SHIFT_DOWN] == [0, 0, 0]


def test_the_still_clerk_does_not_move_a_pixel_beyond_the_sensor_noise(shift: Run) -> None:
    """Without this the sitting-still test would prove nothing: the motion cue must really be silent."""
    first, last = (cv2.GaussianBlur(shift.kept[t][40:300, 180:460], (5, 5), 0).astype(np.int16) for t in SHIFT_STILL)
    assert np.abs(first - last).max() < DEFAULT.motion_level


# ------------------------------------------------------------ a clerk's shift


def test_an_empty_seat_is_decided_vacant_after_vacant_after_s(shift: Run) -> None:
    first = shift.changes[0]
    assert (first.state, first.since) == ("vacant", 0.0)
    assert DEFAULT.vacant_after_s - EPS <= first.at <= DEFAULT.vacant_after_s + FRAME + EPS
    assert shift.states_in(0.0, DEFAULT.vacant_after_s - FRAME) == {None}, "nothing is guessed before the delay"


def test_a_clerk_sitting_down_is_occupied_from_their_arrival(shift: Run) -> None:
    (visit,) = shift.clip.visits
    (change,) = shift.at(visit.arrive, visit.arrive + 10)
    assert_arrival(change, visit.arrive, DEFAULT)


def test_a_clerk_sitting_perfectly_still_facing_the_screen_stays_occupied(shift: Run) -> None:
    """Longer than ``still_s`` + ``vacant_after_s`` without a movement: the face alone keeps the seat."""
    (visit,) = shift.clip.visits
    ((start, end),) = visit.still
    assert end - start > DEFAULT.still_s + DEFAULT.vacant_after_s
    assert shift.states_in(start, end + 5) == {"occupied"}


def test_a_clerk_looking_down_for_a_minute_stays_occupied(shift: Run) -> None:
    (visit,) = shift.clip.visits
    ((down, up),) = visit.down
    assert up - down >= 60
    assert shift.at(visit.arrive + 10, visit.leave) == []
    assert shift.states_in(down, up + 5) == {"occupied"}


def test_a_clerk_leaving_is_vacant_once_dated_to_their_departure(shift: Run) -> None:
    (visit,) = shift.clip.visits
    after = shift.at(visit.leave, shift.clip.duration)
    assert len(after) == 1
    assert_departure(after[0], visit.leave, DEFAULT)


def test_the_day_reads_vacant_occupied_vacant_with_customers_passing_all_along(shift: Run) -> None:
    assert len(shift.clip.passes) >= 12
    assert [c.state for c in shift.changes] == ["vacant", "occupied", "vacant"]
    assert late(shift) == []


# ----------------------------------------------------------------- boundaries


def test_a_colleague_walking_through_the_seat_is_not_an_occupant(steps_away: Run) -> None:
    """In and straight out: about a second of sightings, under ``occupied_after_s``."""
    colleague, clerk = steps_away.clip.visits[:2]
    assert colleague.leave - colleague.arrive == WALK_S
    assert steps_away.at(colleague.arrive, clerk.arrive) == []
    assert steps_away.states_in(colleague.arrive, clerk.arrive) == {"vacant"}
    assert_arrival(steps_away.at(clerk.arrive, clerk.arrive + 10)[0], clerk.arrive, DEFAULT)


def test_away_a_little_less_than_vacant_after_s_is_no_vacancy(steps_away: Run) -> None:
    first, second = steps_away.clip.visits[1:3]
    assert second.arrive - first.leave == DEFAULT.vacant_after_s - 1.5
    assert steps_away.at(first.arrive + 5, second.leave) == []
    assert steps_away.states_in(first.arrive + 5, second.leave) == {"occupied"}


def test_away_a_little_more_than_vacant_after_s_is_a_vacancy_then_a_return(steps_away: Run) -> None:
    second, third = steps_away.clip.visits[2:4]
    assert third.arrive - second.leave == DEFAULT.vacant_after_s + 1.5
    gone, back = steps_away.at(second.leave, steps_away.clip.duration)
    assert_departure(gone, second.leave, DEFAULT)
    assert gone.at < third.arrive, "decided before the clerk was back"
    assert_arrival(back, third.arrive, DEFAULT)
    assert late(steps_away) == []


def test_a_shorter_vacant_after_s_turns_the_short_absence_into_a_vacancy(faces_dir: Path) -> None:
    """The same walk away, with the delay set 3 s under it: the setting, not the clip, decides."""
    clip = clips.steps_away(DEFAULT.vacant_after_s, faces_dir)
    settings = OccupancySettings(vacant_after_s=DEFAULT.vacant_after_s - 3)
    first, second = clip.visits[1:3]
    run = play(replace(clip, duration=second.arrive + 5), settings)
    gone, back = run.at(first.leave, second.leave)
    assert_departure(gone, first.leave, settings)
    assert_arrival(back, second.arrive, settings)


# ------------------------------------------------------------------- lighting


def test_lights_dimmed_or_sunlight_on_an_empty_seat_are_nobody(lights_empty: Run) -> None:
    assert [(c.state, c.since) for c in lights_empty.changes] == [("vacant", 0.0)]
    assert "occupied" not in lights_empty.states


def test_lights_dimmed_while_the_clerk_looks_down_keep_the_seat_occupied(lights_seated: Run) -> None:
    (visit,) = lights_seated.clip.visits
    arrived, left = lights_seated.changes
    assert_arrival(arrived, visit.arrive, DEFAULT)
    assert lights_seated.states_in(arrived.at, visit.leave) == {"occupied"}
    assert_departure(left, visit.leave, DEFAULT)  # and in the dim light, the clerk leaving is still seen


# ------------------------------------------------------------------ the coat


def test_a_coat_left_on_the_chair_is_vacant_from_when_its_owner_left(coat: Run) -> None:
    """A still, faceless change is given ``still_s`` of doubt (a clerk reading), then dated back.
    The customers leaning over the counter meanwhile, their heads in the seat's view, change nothing."""
    owner, later = coat.clip.visits
    assert coat.clip.coat_at is not None and owner.arrive < coat.clip.coat_at < owner.leave
    assert sum(owner.leave < p.start < later.arrive for p in coat.clip.passes) >= 20, "a queue while only the coat is there"
    arrived, left = coat.at(0.0, later.arrive)
    assert_arrival(arrived, owner.arrive, COAT)
    assert_departure(left, owner.leave, COAT, delay=COAT.still_s)
    assert coat.states_in(left.at, later.arrive) == {"vacant"}
    assert late(coat, object_left=owner.leave) == []


def test_an_absorbed_coat_is_the_chair_and_the_next_clerk_is_seen_over_it(coat: Run) -> None:
    """After ``absorb_s`` the coat is part of the empty seat: the next clerk's departure
    is decided ``vacant_after_s`` after it, without the doubt a coat was given."""
    owner, later = coat.clip.visits
    assert later.arrive > owner.leave + WALK_S + COAT.absorb_s
    arrived, left = coat.at(later.arrive, coat.clip.duration)
    assert_arrival(arrived, later.arrive, COAT)
    assert_departure(left, later.leave, COAT)


# ------------------------------------------------------------------ customers


def test_customers_crowding_the_counter_are_not_the_clerk(faces_dir: Path) -> None:
    run = play(clips.customers_only(faces_dir), keep=(10.0,))
    assert len(run.clip.passes) >= 20
    assert len(FACES(run.kept[10.0])) >= 1, "the customers show real faces"
    assert [(c.state, c.since) for c in run.changes] == [("vacant", 0.0)]
    assert "occupied" not in run.states


# ------------------------------------------------------------ reset and errors


def test_reset_forgets_every_seat_and_decides_again(faces_dir: Path) -> None:
    clip = clips.shift(faces_dir)
    (visit,) = clip.visits
    monitor = OccupancyMonitor([SeatRegion("w01", "clerk", clip.seat)], clip.reference, customer=[clip.customer], face_finder=FACES)
    frames = clip.frames()
    reset_at = visit.arrive + 8.0
    for t, frame in frames:
        monitor.update(frame, t)
        if t >= reset_at:
            break
    assert [s for _, s, _ in monitor.states()] == ["occupied"]
    monitor.reset()
    assert [s for _, s, _ in monitor.states()] == [None]
    again = [c for t, frame in islice(frames, 25) for c in monitor.update(frame, t)]
    assert len(again) == 1
    assert again[0].state == "occupied" and again[0].since > reset_at
    assert DEFAULT.occupied_after_s - EPS <= again[0].at - again[0].since <= DEFAULT.occupied_after_s + FRAME + EPS


def test_a_frame_of_another_size_is_refused_naming_both_sizes() -> None:
    monitor = OccupancyMonitor([SeatRegion("w01", "clerk", clips.SEAT)], np.zeros((480, 640, 3), np.uint8))
    with pytest.raises(ValueError, match="frame is 320×240, the reference 640×480: recalibrate"):
        monitor.update(np.zeros((240, 320, 3), np.uint8), 0.0)


def test_a_camera_without_seats_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one seat region"):
        OccupancyMonitor([], np.zeros((480, 640, 3), np.uint8))


def test_a_seat_outside_the_picture_is_refused_naming_the_seat() -> None:
    with pytest.raises(ValueError, match="w01/clerk: the polygon covers no pixel"):
        OccupancyMonitor([SeatRegion("w01", "clerk", ((700, 10), (800, 10), (800, 90)))], np.zeros((480, 640, 3), np.uint8))
