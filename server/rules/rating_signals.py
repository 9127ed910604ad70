"""好差评 fraud signals kept up to date rating by rating — pure.

:func:`server.rules.ratings.evaluate_window_day` and
:func:`server.rules.ratings.never_below` judge a window's whole day (month)
at once; they are the reference.  Ingest cannot call them for every batch:
the work would grow with the ratings already stored that day, quadratic in a
day's traffic.  :class:`DaySignals` and :class:`MonthRatings` keep what those
functions need and give the same answers (``tests/test_incremental_rules.py``
holds them equal on random days fed in random batches and orders) while each
new rating, ticket or seat fact costs only what it can change:

* a rating's own signals depend on the seat at its moment, its ticket, the
  queue gateway's health at its moment and (for ``no_ticket``) whether
  ``ticket_wait_s`` has passed — so a seat or gateway fact dirties only the
  ratings after it, a ticket only the ratings naming it, and the passing of
  time only the ratings whose wait ends;
* a burst needs only the ratings within ``burst_window_s`` of the new one,
  and marks only grow as ratings are added;
* an alert's facts need how many ratings are flagged, the first few and the
  clerks credited (:class:`~server.rules.ratings.Flagged`), kept per signal.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from server.rules.policy import Policy
from server.rules.ratings import (
    FACT_ITEMS,
    SIGNAL_ALERT,
    Flagged,
    Rating,
    SeatHistory,
    Ticket,
    clerk_label,
    day_start,
    month_bounds,
    never_below_alert,
    own_signals,
    signal_alert,
)
from server.rules.supervision import Alert, Observation

Key = tuple[datetime, tuple[str, int, int], int]
"""A rating's place in event order: (rated_at, (device, boot, seq), handle); the handle breaks the last ties by arrival."""
_US = timedelta(microseconds=1)


class DaySignals:
    """One window's day of fraud signals, as :func:`evaluate_window_day` would judge it.

    ``tickets``: the day's tickets by number, shared with the caller, who
    updates it and then calls :meth:`ticket_changed`.  ``gateway``: the
    (time, online) changes of the window's queue gateway known so far, None
    when no gateway serves the window (later ones come through
    :meth:`gateway_change`); ``observations``: the window's day so far.
    Ratings get a handle (0, 1, … in the order added); :meth:`advance` says
    which handles' signals changed.
    """

    def __init__(
        self, window: str, day: date, policy: Policy, tickets: Mapping[str, Ticket], gateway: Iterable[tuple[datetime, bool]] | None, observations: Iterable[Observation] = ()
    ) -> None:
        self.window = window
        self.day = day
        self.policy = policy
        self._tickets = tickets
        self._gateway = None if gateway is None else sorted(gateway)
        self._seats = SeatHistory(observations)
        self._wait = timedelta(seconds=policy.ratings.ticket_wait_s)
        self._burst_s = timedelta(seconds=policy.ratings.burst_window_s)
        self._day_end = day_start(day + timedelta(days=1))
        self._ratings: list[Rating] = []
        self._marks: list[frozenset[str]] = []
        self._judged: list[Key] = []
        """Device ratings pressed by ``until``, in event order (what the reference judges)."""
        self._judged_handles: set[int] = set()
        self._later: list[Key] = []
        """Device ratings pressed after ``until`` (a device clock ahead): judged when time reaches them."""
        self._waiting: list[tuple[datetime, int]] = []
        """(end of the ticket wait, handle) of judged ratings whose ``no_ticket`` still waits for ``until``."""
        self._by_ticket: dict[str, list[int]] = {}
        self._burst: set[int] = set()
        self._flagged: dict[str, list[Key]] = {signal: [] for signal in SIGNAL_ALERT}
        self._clerks: dict[str, Counter[str]] = {signal: Counter() for signal in SIGNAL_ALERT}
        self._dirty: set[int] = set()
        self._before: dict[int, frozenset[str]] = {}
        """Signals as the last :meth:`advance` returned them, of the ratings remarked since."""
        self._until: datetime | None = None

    # ------------------------------------------------------------ inputs

    def add_rating(self, rating: Rating) -> int:
        """Take one more rating of the window's day; returns its handle."""
        handle = len(self._ratings)
        self._ratings.append(rating)
        self._marks.append(frozenset())
        if rating.origin != "device":
            return handle  # nobody pressed a default: never judged
        if rating.ticket is not None:
            self._by_ticket.setdefault(rating.ticket, []).append(handle)
        key = (rating.rated_at, rating.order, handle)
        if self._until is not None and rating.rated_at <= self._until:
            self._judge(key)
        else:
            insort(self._later, key)
        return handle

    def ticket_changed(self, number: str) -> bool:
        """The shared ``tickets`` mapping changed for this number; whether a rating of the day names it."""
        self._dirty.update(h for h in self._by_ticket.get(number, ()) if h in self._judged_handles)
        return number in self._by_ticket

    def observe(self, observation: Observation) -> None:
        """A seat or camera fact of the window (other kinds are ignored)."""
        if observation.kind in ("seat", "camera"):
            self._seats.add(observation)
            self._dirty_from(observation.time)

    def gateway_change(self, at: datetime, online: bool) -> None:
        """A health change of the window's queue gateway."""
        if self._gateway is not None:
            insort(self._gateway, (at, online))
            self._dirty_from(at)

    def _dirty_from(self, moment: datetime) -> None:
        self._dirty.update(key[2] for key in self._judged[bisect_left(self._judged, (moment,)) :])

    # ------------------------------------------------------------ judging

    def advance(self, until: datetime) -> tuple[dict[int, frozenset[str]], tuple[Alert, ...]]:
        """Judge as known at ``until``: the handles whose signals changed since the last call, and the day's alerts."""
        if self._until is not None and until < self._until:
            self._rejudge()  # the clock went back: judge everything again
        self._until = until
        while self._later and self._later[0][0] <= until:
            self._judge(self._later.pop(0))
        while self._waiting and self._waiting[0][0] <= until:
            self._dirty.add(self._waiting.pop(0)[1])
        for handle in sorted(self._dirty):
            marks = self._signals_of(handle, until)
            if marks != self._marks[handle]:
                self._remark(handle, marks)
        self._dirty.clear()
        changed = {handle: self._marks[handle] for handle, was in self._before.items() if self._marks[handle] != was}
        self._before.clear()
        return changed, self._alerts(until)

    def signals(self) -> tuple[frozenset[str], ...]:
        """Every rating's signals as of the last :meth:`advance`, by handle."""
        return tuple(self._marks)

    def assume(self, stored: Sequence[frozenset[str]]) -> None:
        """The signals the ratings (by handle) carry where they are stored: the next :meth:`advance` reports the differences."""
        self._before.update(enumerate(stored))

    def rating(self, handle: int) -> Rating:
        return self._ratings[handle]

    def _judge(self, key: Key) -> None:
        insort(self._judged, key)
        handle = key[2]
        self._judged_handles.add(handle)
        self._dirty.add(handle)
        rating = self._ratings[handle]
        if rating.ticket is not None and self._until is not None and self._until < rating.rated_at + self._wait:
            insort(self._waiting, (rating.rated_at + self._wait, handle))
        self._find_bursts(key)

    def _rejudge(self) -> None:
        for handle in list(self._burst) + [k[2] for k in self._judged]:
            if self._marks[handle]:
                self._remark(handle, frozenset())
        self._later = sorted(self._judged + self._later)
        self._judged, self._waiting, self._burst, self._dirty, self._judged_handles = [], [], set(), set(), set()

    def _find_bursts(self, key: Key) -> None:
        """Mark the bursts a newly judged rating completes or joins: the runs
        of ``burst_count`` ratings within ``burst_window_s`` ending at or after
        it and no later than that window after it (both ends included)."""
        count, judged = self.policy.ratings.burst_count, self._judged
        end = bisect_left(judged, key)
        while end < len(judged) and judged[end][0] - key[0] <= self._burst_s:
            start = bisect_left(judged, (judged[end][0] - self._burst_s,))
            if end - start + 1 >= count:
                for member in judged[start : end + 1]:
                    if member[2] not in self._burst:
                        self._burst.add(member[2])
                        self._dirty.add(member[2])
            end += 1

    def _signals_of(self, handle: int, until: datetime) -> frozenset[str]:
        rating = self._ratings[handle]
        marks = own_signals(rating, self._seats.at(rating.rated_at), self.window, self._tickets, self._gateway, self.policy, until)
        if handle in self._burst:
            marks.add("burst")
        return frozenset(marks)

    def _remark(self, handle: int, marks: frozenset[str]) -> None:
        self._before.setdefault(handle, self._marks[handle])
        rating = self._ratings[handle]
        key = (rating.rated_at, rating.order, handle)
        for signal in SIGNAL_ALERT:
            was, now = signal in self._marks[handle], signal in marks
            if was and not now:
                flagged = self._flagged[signal]
                del flagged[bisect_left(flagged, key)]
                self._clerks[signal][clerk_label(rating)] -= 1
            elif now and not was:
                insort(self._flagged[signal], key)
                self._clerks[signal][clerk_label(rating)] += 1
        self._marks[handle] = marks

    def _alerts(self, until: datetime) -> tuple[Alert, ...]:
        cleared = self._day_end if until >= self._day_end else None
        alerts = []
        for signal, flagged in self._flagged.items():
            if not flagged:
                continue
            since = raising = self._ratings[flagged[0][2]]
            if signal == "burst":  # the first burst: from its first marked rating to the burst_count-th after it
                at = bisect_left(self._judged, flagged[0]) + self.policy.ratings.burst_count - 1
                raising = self._ratings[self._judged[at][2]]
            clerks = tuple(sorted(clerk for clerk, n in self._clerks[signal].items() if n > 0))
            summary = Flagged(len(flagged), tuple(self._ratings[k[2]] for k in flagged[:FACT_ITEMS]), clerks)
            alerts.append(signal_alert(signal, self.window, since, raising, summary, cleared, self.policy))
        alerts.sort(key=lambda a: (a.raised_at, a.type))
        return tuple(alerts)


class MonthRatings:
    """One window's month for the never-below rule, as :func:`never_below` would judge it.

    Holds the month's counted real ratings in event order and, apart, those
    below the level; :meth:`put` adds a rating or changes whether it counts
    (一事一评 may decide again when an earlier rating of its transaction arrives).
    Ratings are told apart by their ``id``.
    """

    def __init__(self, window: str, month: date, policy: Policy) -> None:
        self.window = window
        self.month, self._after = month_bounds(month)
        self.policy = policy
        self._counted: list[Key] = []
        self._lower: list[Key] = []
        self._ratings: dict[int, Rating] = {}

    def put(self, rating: Rating) -> None:
        """Add a rating of the window, or replace the one with its id."""
        assert rating.id is not None, "a stored rating (it is told apart by its id)"
        old = self._ratings.pop(rating.id, None)
        if old is not None and old.counted and old.origin == "device":
            self._drop(self._key(old), old.level)
        if rating.origin == "device" and self.month <= rating.day < self._after:
            self._ratings[rating.id] = rating
            if rating.counted:
                insort(self._counted, self._key(rating))
                if rating.level < self.policy.ratings.never_below_level:
                    insort(self._lower, self._key(rating))

    def alert(self, until: datetime) -> Alert | None:
        """The month's never-below alert as known at ``until``, or None."""
        needed = self.policy.ratings.never_below_min_count
        known = bisect_left(self._counted, (until + _US,))
        if known < needed:
            return None
        kth = self._counted[needed - 1]
        lower = self._lower[0] if self._lower and self._lower[0][0] <= until else None
        if lower is not None and lower <= kth:
            return None
        count = known if lower is None else bisect_left(self._counted, (lower[0],))
        rating = self._by_key
        return never_below_alert(self.window, self.month, rating(self._counted[0]), rating(kth), rating(lower) if lower else None, count, self.policy, until)

    def _key(self, rating: Rating) -> Key:
        assert rating.id is not None
        return (rating.rated_at, rating.order, rating.id)

    def _by_key(self, key: Key) -> Rating:
        return self._ratings[key[2]]

    def _drop(self, key: Key, level: int) -> None:
        del self._counted[bisect_left(self._counted, key)]
        if level < self.policy.ratings.never_below_level:
            del self._lower[bisect_left(self._lower, key)]
