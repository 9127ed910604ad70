"""Hall patrols (大厅巡查) and the weekly bulletin (通报) — pure.

The regulation (seed 003, 衢江区 四(一) 大厅巡查工作制度) has a patrol group
walk the hall twice a day and watch the CCTV at least half a day a week,
brief the window leads once a week on what it found, give a window lead
three working days to have a finding re-checked (再核实), and carry what is
still unresolved into the next week's patrols.  This module is that
workflow as data and pure functions: no I/O, no clock — every transition is
given the time it happens at, and the caller stores the result.

A finding's life::

    draft ──confirm──▶ confirmed ──dispute──▶ disputed ──uphold──▶ upheld
      │                   │      (window lead, within       │
      │                   │       dispute_working_days)     └─overturn─▶ overturned
      └─dismiss─▶ dismissed (reason required)
                          confirmed / upheld ──rectify──▶ rectified

* Drafts come from the devices' alerts (:func:`draft_findings`) or from the
  patrol officer's own eyes (:func:`new_finding`); only a confirmed finding
  is reported (通报).
* The dispute period runs from the day the finding is **confirmed** (see
  :func:`dispute_deadline` for why), counted in working days of the national
  calendar with 调休.
* A confirmed or upheld finding stays *unresolved* until the window reports
  it rectified (整改); a disputed finding stays unresolved until decided.
  :func:`weekly_bulletin` carries unresolved items into the next week.

Transitions return a new immutable :class:`Finding` (its ``history`` grows
by one :class:`Step` carrying time, actor and reason) or raise
:class:`TransitionError` saying why not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol

from broker.timeutil import HALL_TZ
from server.rules.calendar import CalendarGapError, WorkCalendar
from server.rules.policy import Policy
from server.rules.ratings import RATING_ALERTS
from server.rules.supervision import RULES, Alert

# --------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------

CategoryName = Literal[
    "vacant",
    "away",
    "unregistered_substitute",
    "evaluator",
    "phone",
    "chatting",
    "eating",
    "sleeping",
    "no_badge",
    "other",
]


@dataclass(frozen=True)
class Category:
    """A kind of patrol finding: names, who can see it, and the rule it breaks."""

    name_zh: str
    name_en: str
    seen_by: Literal["device", "officer"]
    """``device``: HallWatch's devices raise it (a draft comes from an alert); ``officer``: only a person sees it."""
    basis: str
    """The regulation text the finding rests on (seed 003 unless the finding cites its own rule)."""


CATEGORIES: dict[str, Category] = {
    "vacant": Category(
        "空岗",
        "vacant window",
        "device",
        "003 二(三)1(3): 「窗口工作人员在工作时间内不得擅自离岗。如有特殊事情必须离岗的,需在叫号系统中点击暂停办理」; "
        "三(五)4: 「部门应及时安排B岗人员接替顶岗代行职责,避免造成空岗和工作延误」",
    ),
    "away": Category(
        "脱岗",
        "away too long (unauthorised absence)",
        "device",
        "003 四(二)1(4)②: 「外出未进行请假流程或延时半小时以上未归被查到不在岗的按私自脱岗情形处理」",
    ),
    "unregistered_substitute": Category(
        "替岗未报备",
        "unregistered substitute",
        "device",
        "003 三(五)4: 「部门应及时安排B岗人员接替顶岗代行职责」; 四(二)1(2): 「派驻部门对派驻窗口工作人员进行轮换调整时,要事先填写"
        "《衢江区政务服务中心窗口工作人员登记表》,并经中心领导签字同意」",
    ),
    "evaluator": Category(
        "评价器未使用或登录人员不符",
        "evaluator not used or logged in as another clerk",
        "device",
        "003 二(三)1(4): 「窗口工作人员按要求使用窗口评价器。评价器显示的人员信息要与上岗人员相符」",
    ),
    "phone": Category(
        "玩手机",
        "phone or games at the counter",
        "officer",
        "003 二(三)1(5): 「窗口工作人员的手机不放置在窗口台面上」, 「接打手机时须离开窗口,且每次接打手机不超过3分钟」; "
        "二(三)1(6): 不得「玩游戏、上购物网站和划看手机」",
    ),
    "chatting": Category(
        "串岗聊天",
        "chatting, visiting other windows",
        "officer",
        "003 二(三)1(6): 不得「会客,趴台打盹,擅自离岗,大声喧哗,串岗聊天(含电话闲聊)」",
    ),
    "eating": Category("吃东西", "eating at the counter", "officer", "003 二(三)1(6): 不得「吃东西、吸烟、梳妆」"),
    "sleeping": Category("趴台打盹", "sleeping at the counter", "officer", "003 二(三)1(6): 不得「趴台打盹」"),
    "no_badge": Category(
        "未佩戴工牌",
        "badge not worn",
        "officer",
        "003 二(三)1(1): 「工作期间,工作人员须佩戴工号牌」; 二(一)2: 「在工作时间均应着工作装上岗,并佩戴工号牌」",
    ),
    "other": Category(
        "其他",
        "other",
        "officer",
        "003 二(三)1(6): 不得有「其他影响工作、有损窗口形象的动作」",
    ),
}

ALERT_CATEGORY: dict[str, str | None] = {
    "vacant": "vacant",
    "pause_overrun": "away",
    "unexpected_person": "unregistered_substitute",
    "clerk_mismatch": "evaluator",
    "no_substitute": "vacant",  # a one-clerk window left empty during leave (AB岗: no window may be left empty)
    "device_fault": None,  # the device's fault, never the clerk's (DOMAIN: unknown is not vacant)
    # 好差评 signals and overdue work orders have their own workflow (docs/ratings.md): never a patrol finding.
    **{name: None for name in RATING_ALERTS},
}
"""Which finding an alert type drafts.  ``None``: never a finding.  A type not
listed (a newer rule) drafts ``other``, so the officer still sees it."""

# --------------------------------------------------------------------------
# Findings and their lifecycle
# --------------------------------------------------------------------------

Status = Literal["draft", "confirmed", "dismissed", "disputed", "upheld", "overturned", "rectified"]

STATUS_ZH: dict[str, str] = {
    "draft": "待确认",
    "confirmed": "已确认",
    "dismissed": "已排除",
    "disputed": "异议核实中",
    "upheld": "异议不成立",
    "overturned": "异议成立，已撤销",
    "rectified": "已整改",
}
REPORTED: frozenset[str] = frozenset({"confirmed", "disputed", "upheld", "overturned", "rectified"})
"""Statuses of a finding that has been confirmed (is or was in a bulletin)."""
UNRESOLVED: frozenset[str] = frozenset({"confirmed", "disputed", "upheld"})
"""Confirmed but not rectified, or disputed and not yet decided: carried into next week."""
FINAL: frozenset[str] = frozenset({"dismissed", "overturned", "rectified"})

Action = Literal["confirm", "dismiss", "dispute", "uphold", "overturn", "rectify"]
_TARGET: dict[str, Status] = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "dispute": "disputed",
    "uphold": "upheld",
    "overturn": "overturned",
    "rectify": "rectified",
}
_ALLOWED_FROM: dict[str, frozenset[str]] = {
    "confirm": frozenset({"draft"}),
    "dismiss": frozenset({"draft"}),
    "dispute": frozenset({"confirmed"}),
    "uphold": frozenset({"disputed"}),
    "overturn": frozenset({"disputed"}),
    "rectify": frozenset({"confirmed", "upheld"}),
}
_REASON_NEEDED = frozenset({"dismiss", "dispute", "uphold", "overturn", "rectify"})
_WHAT = {
    "confirm": "a draft can be confirmed",
    "dismiss": "a draft can be dismissed",
    "dispute": "a confirmed finding can be disputed (once)",
    "uphold": "a disputed finding can be upheld",
    "overturn": "a disputed finding can be overturned",
    "rectify": "a confirmed or upheld finding can be reported rectified",
}


class TransitionError(ValueError):
    """A transition that the workflow does not allow; the message says why."""


@dataclass(frozen=True)
class Step:
    """One transition of a finding: to ``status`` at ``at`` by ``actor`` (with a reason or note)."""

    status: Status
    at: datetime
    actor: str
    reason: str = ""


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value


def local_day(value: datetime) -> date:
    """The hall-local (Asia/Shanghai) date of an aware datetime."""
    return _aware(value, "time").astimezone(HALL_TZ).date()


@dataclass(frozen=True)
class Finding:
    """A patrol finding about one window.  ``history[0]`` is its creation (a draft)."""

    window: str
    category: str
    observed_at: datetime
    """When the problem began (an alert's condition start, or when the officer saw it)."""
    note: str
    history: tuple[Step, ...]
    observed_until: datetime | None = None
    origin: Literal["device", "officer"] = "officer"
    facts: tuple[tuple[str, str], ...] = ()
    rule: str | None = None
    """The policy key (device findings) — None for an officer's finding."""
    source: str = ""
    """The citation of the rule; empty means the category's :attr:`Category.basis`."""
    evidence: str | None = None
    alert_type: str | None = None
    alert_key: tuple[str, str, datetime] | None = None
    """(window, type, raised_at) of the alert the draft came from — unique per alert episode."""
    round_id: int | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown finding category {self.category!r}; categories: {', '.join(CATEGORIES)}")
        if not self.history:
            raise ValueError("a finding needs its history (at least its creation)")
        _aware(self.observed_at, "observed_at")

    # -- derived -----------------------------------------------------------

    @property
    def status(self) -> Status:
        return self.history[-1].status

    @property
    def category_zh(self) -> str:
        return CATEGORIES[self.category].name_zh

    @property
    def basis(self) -> str:
        """What the finding rests on: its own citation, else its category's."""
        return self.source or CATEGORIES[self.category].basis

    @property
    def created(self) -> Step:
        return self.history[0]

    def step(self, status: str) -> Step | None:
        """The (first) step into ``status``, if the finding went through it."""
        return next((s for s in self.history if s.status == status), None)

    @property
    def confirmed_at(self) -> datetime | None:
        s = self.step("confirmed")
        return s.at if s else None

    def status_at(self, moment: datetime) -> Status | None:
        """The status just before ``moment`` (None: the finding did not exist yet)."""
        current: Status | None = None
        for s in self.history:
            if s.at < moment:
                current = s.status
        return current


def new_finding(
    window: str,
    category: str,
    note: str,
    officer: str,
    at: datetime,
    *,
    observed_at: datetime | None = None,
    source: str = "",
    round_id: int | None = None,
) -> Finding:
    """A draft the patrol officer records (what a camera cannot see: a phone, a missing badge…)."""
    officer = _actor(officer)
    note = (note or "").strip()
    if not note:
        raise TransitionError("a finding needs a description of what was seen (情况描述)")
    return Finding(
        window=window,
        category=category,
        observed_at=_aware(observed_at or at, "observed_at"),
        note=note,
        history=(Step("draft", _aware(at, "at"), officer, ""),),
        origin="officer",
        source=source.strip(),
        round_id=round_id,
    )


def _hm(t: datetime) -> str:
    return t.astimezone(HALL_TZ).strftime("%H:%M")


def _describe(alert: Alert, round_end: datetime) -> str:
    rule = RULES.get(alert.type)
    name = rule.name_zh if rule else alert.type
    since = alert.condition_since
    day = since.astimezone(HALL_TZ).strftime("%Y-%m-%d")
    if alert.cleared_at is not None and alert.cleared_at <= round_end:
        span = f"{day} {_hm(since)}–{_hm(alert.cleared_at)}"
    else:
        span = f"{day} {_hm(since)} 起，巡查时仍在持续"
    limit = f"，超过规定的 {alert.threshold_s // 60} 分钟" if alert.threshold_s >= 60 else ""
    details = "；".join(f"{k}={v}" for k, v in alert.facts if v)
    text = f"设备发现{name}：{span}{limit}"
    if details:
        text += f"（{details}）"
    if not alert.live:
        text += "（补传数据，非实时发现）"
    return text


def draft_findings(alerts: Iterable[Alert], round_start: datetime, round_end: datetime) -> tuple[Finding, ...]:
    """Draft findings for a patrol round from the devices' alerts.

    An alert is taken when it was *active or raised within* the round's
    period ``[round_start, round_end)``: raised before ``round_end`` and not
    cleared by ``round_start``.  Not taken: device faults (a silent camera is
    the device's fault, not the clerk's), and alerts withdrawn because later
    data showed the condition never lasted (cleared at the moment raised).
    Facts, rule, citation and evidence are copied; the draft's creation step
    is at ``round_end`` by ``hallwatch``.  Sorted by window, then time.
    """
    _aware(round_start, "round_start")
    _aware(round_end, "round_end")
    if round_end < round_start:
        raise ValueError(f"round ends ({round_end.isoformat()}) before it starts ({round_start.isoformat()})")
    drafts: list[Finding] = []
    for alert in alerts:
        category = ALERT_CATEGORY.get(alert.type, "other")
        if category is None:
            continue
        if alert.cleared_at is not None and alert.cleared_at <= alert.raised_at:
            continue  # withdrawn
        if dict(alert.facts).get("withdrawn"):
            continue
        if not (alert.raised_at < round_end and (alert.cleared_at is None or alert.cleared_at > round_start)):
            continue
        facts = tuple(alert.facts) + (("raised_at", alert.raised_at.astimezone(HALL_TZ).isoformat()), ("live", "yes" if alert.live else "no"))
        drafts.append(
            Finding(
                window=alert.window,
                category=category,
                observed_at=alert.condition_since,
                observed_until=alert.cleared_at if alert.cleared_at is not None and alert.cleared_at <= round_end else None,
                note=_describe(alert, round_end),
                history=(Step("draft", round_end, "hallwatch", f"alert {alert.type} raised {alert.raised_at.astimezone(HALL_TZ).isoformat()}"),),
                origin="device",
                facts=facts,
                rule=alert.rule,
                source=alert.source,
                evidence=alert.evidence,
                alert_type=alert.type,
                alert_key=alert.key,
            )
        )
    drafts.sort(key=lambda f: (f.window, f.observed_at, f.category))
    return tuple(drafts)


def _actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise TransitionError("every step needs the person who takes it (actor)")
    return actor


def dispute_deadline(confirmed_day: date, policy: Policy, calendar: WorkCalendar) -> date:
    """The last day a window lead may dispute a finding confirmed on ``confirmed_day``.

    ``policy.deadlines.dispute_working_days`` working days *after* the day of
    confirmation (the day itself never counts; the national calendar with
    调休 decides what a working day is): confirmed on Monday 2026-03-02 with
    3 days, the last day is Thursday 2026-03-05.

    Why from the confirmation and not from the weekly bulletin: seed 003
    四(一)4(2) gives the window lead three working days on a 通报.  In
    HallWatch a finding is shown to its window the moment it is confirmed —
    that is its 通报 — and the weekly bulletin only collects the week's
    findings.  Counting from the bulletin would give a Monday finding twice
    the time of a Friday one, and leave disputes open long after the facts
    (and the CCTV recording) are gone.  Raises CalendarGapError if the
    calendar does not cover the days counted.
    """
    return calendar.add_working_days(confirmed_day, policy.deadlines.dispute_working_days)


def _move(finding: Finding, action: str, actor: str, at: datetime, reason: str) -> Finding:
    _aware(at, "at")
    actor = _actor(actor)
    reason = (reason or "").strip()
    if finding.status not in _ALLOWED_FROM[action]:
        ident = f"finding {finding.id}" if finding.id is not None else "the finding"
        raise TransitionError(f"cannot {action}: {ident} is {finding.status} ({STATUS_ZH[finding.status]}); only {_WHAT[action]}")
    if action in _REASON_NEEDED and not reason:
        raise TransitionError(f"cannot {action} without a reason")
    if at < finding.history[-1].at:
        raise TransitionError(
            f"cannot {action} at {at.isoformat()}: before the finding's last step ({finding.history[-1].at.isoformat()})"
        )
    return replace(finding, history=finding.history + (Step(_TARGET[action], at, actor, reason),))


def confirm(finding: Finding, actor: str, at: datetime, note: str = "") -> Finding:
    """The officer confirms a draft: it is reported (通报) and the dispute period starts."""
    return _move(finding, "confirm", actor, at, note)


def dismiss(finding: Finding, actor: str, reason: str, at: datetime) -> Finding:
    """The officer dismisses a draft (e.g. the clerk had paused properly); a reason is required."""
    return _move(finding, "dismiss", actor, at, reason)


def dispute(finding: Finding, actor: str, reason: str, at: datetime, policy: Policy, calendar: WorkCalendar) -> Finding:
    """The window lead asks for a re-check (再核实), within the dispute period (see :func:`dispute_deadline`)."""
    if finding.status == "confirmed":
        confirmed_at = finding.confirmed_at
        assert confirmed_at is not None
        last = dispute_deadline(local_day(confirmed_at), policy, calendar)
        if local_day(_aware(at, "at")) > last:
            raise TransitionError(
                f"cannot dispute: the dispute period ended on {last.isoformat()} "
                f"({policy.deadlines.dispute_working_days} working days after the finding was confirmed on "
                f"{local_day(confirmed_at).isoformat()})"
            )
    return _move(finding, "dispute", actor, at, reason)


def _decide(finding: Finding, action: str, actor: str, reason: str, at: datetime) -> Finding:
    disputed = finding.step("disputed")
    if finding.status == "disputed" and disputed is not None and _actor(actor) == disputed.actor:
        raise TransitionError(f"cannot {action}: {disputed.actor} raised the dispute and cannot also decide it")
    return _move(finding, action, actor, at, reason)


def uphold(finding: Finding, actor: str, reason: str, at: datetime) -> Finding:
    """The re-check confirms the finding (异议不成立); the reason says what the re-check found."""
    return _decide(finding, "uphold", actor, reason, at)


def overturn(finding: Finding, actor: str, reason: str, at: datetime) -> Finding:
    """The re-check shows the finding was wrong (异议成立): it is withdrawn from the bulletin."""
    return _decide(finding, "overturn", actor, reason, at)


def rectify(finding: Finding, actor: str, note: str, at: datetime) -> Finding:
    """The window reports the problem corrected (整改情况); the finding stops being carried over."""
    return _move(finding, "rectify", actor, at, note)


def next_actions(finding: Finding) -> tuple[str, ...]:
    """The actions the workflow allows from the finding's status (a dispute still needs its period open)."""
    return tuple(a for a, allowed in _ALLOWED_FROM.items() if finding.status in allowed)


def apply(
    finding: Finding, action: str, actor: str, reason: str, at: datetime, policy: Policy, calendar: WorkCalendar
) -> Finding:
    """Dispatch one action by name (for adapters)."""
    if action == "confirm":
        return confirm(finding, actor, at, reason)
    if action == "dismiss":
        return dismiss(finding, actor, reason, at)
    if action == "dispute":
        return dispute(finding, actor, reason, at, policy, calendar)
    if action == "uphold":
        return uphold(finding, actor, reason, at)
    if action == "overturn":
        return overturn(finding, actor, reason, at)
    if action == "rectify":
        return rectify(finding, actor, reason, at)
    raise TransitionError(f"unknown action {action!r}; actions: {', '.join(_TARGET)}")


# --------------------------------------------------------------------------
# Rounds and the checklist
# --------------------------------------------------------------------------

RoundKind = Literal["hall", "cctv"]
ROUND_KIND_ZH = {"hall": "大厅巡查", "cctv": "监控巡查"}


@dataclass(frozen=True)
class PatrolRound:
    """One patrol: a walk through the hall (``hall``) or a CCTV session (``cctv``)."""

    kind: RoundKind
    officer: str
    started_at: datetime
    period_start: datetime
    """Alerts active or raised since then are drafted (the previous round's start)."""
    name: str | None = None
    """The scheduled round (``policy.patrols.rounds``) it fulfils, if any."""
    scheduled_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    id: int | None = None


def scheduled_rounds(day: date, policy: Policy, calendar: WorkCalendar) -> tuple[tuple[str, datetime], ...]:
    """The hall rounds due on ``day`` (none on a day the hall is closed)."""
    if policy.schedule.working_days_only and not calendar.is_working_day(day):
        return ()
    return tuple((r.name, datetime.combine(day, r.at, HALL_TZ)) for r in sorted(policy.patrols.rounds, key=lambda r: r.at))


def half_day(policy: Policy) -> timedelta:
    """How long "half a day" of CCTV patrol is: the shortest opening session of the schedule."""
    return min(
        datetime.combine(date.min, s.end) - datetime.combine(date.min, s.start) for s in policy.schedule.sessions
    )


class WindowLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def department(self) -> str: ...


@dataclass(frozen=True)
class LiveState:
    """A window's state when the round started (from the live hall map)."""

    state: str = "unknown"
    occupant: str | None = None
    pause_reason: str | None = None
    since: datetime | None = None


STATE_ZH = {
    "closed": "未开放",
    "staffed": "在岗",
    "paused": "暂停服务",
    "vacant": "空岗",
    "unknown": "状态未知（设备离线）",
}
_HINT = {
    "closed": "窗口未开放，无需检查在岗",
    "staffed": "设备显示在岗：核对在岗人员、工牌、评价器和工作纪律",
    "paused": "暂停服务中：核实是否已放置暂停告示、告知相邻窗口，是否超时",
    "vacant": "设备显示空岗：现场核实，如有合理原因请排除草稿",
    "unknown": "设备离线，状态未知：请现场核实在岗情况（设备离线不作为空岗依据）",
}
CheckResult = Literal["recorded", "suspect", "ok", "to_check", "not_applicable"]


@dataclass(frozen=True)
class CheckItem:
    category: str
    name_zh: str
    result: CheckResult
    """``recorded``: a finding of this kind exists for the window in this round;
    ``suspect``: the live state points to it; ``ok``: the live state shows it is fine;
    ``to_check``: for the officer's eyes; ``not_applicable``: window closed."""
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ChecklistEntry:
    window: str
    name: str
    department: str
    state: str
    state_zh: str
    occupant: str | None
    hint: str
    items: tuple[CheckItem, ...]
    findings: tuple[Finding, ...] = field(default=())


def checklist(
    windows: Sequence[WindowLike], window_states: Mapping[str, LiveState], drafts: Iterable[Finding]
) -> tuple[ChecklistEntry, ...]:
    """The round's checklist: one entry per window (hall order), one item per category.

    Pre-filled from the window's live state (a missing state is *unknown*)
    and the round's findings (drafts from alerts, or findings the officer
    already recorded).  Presence items (空岗, 脱岗) follow the live state;
    the discipline items are always left for the officer's eyes.
    """
    by_window: dict[str, list[Finding]] = {}
    for f in drafts:
        by_window.setdefault(f.window, []).append(f)
    entries: list[ChecklistEntry] = []
    for window in windows:
        live = window_states.get(window.id, LiveState())
        state = live.state if live.state in STATE_ZH else "unknown"
        found = tuple(sorted(by_window.get(window.id, ()), key=lambda f: (f.observed_at, f.category)))
        items: list[CheckItem] = []
        for name, category in CATEGORIES.items():
            mine = tuple(f for f in found if f.category == name)
            result: CheckResult
            if mine:
                result = "recorded"
            elif state == "closed":
                result = "not_applicable"
            elif name == "vacant":
                result = {"vacant": "suspect", "staffed": "ok"}.get(state, "to_check")  # type: ignore[assignment]
            elif name == "away":
                result = {"staffed": "ok", "paused": "to_check", "vacant": "to_check"}.get(state, "to_check")  # type: ignore[assignment]
            elif state in ("vacant",) and category.seen_by == "officer":
                result = "not_applicable"  # nobody at the counter to check
            else:
                result = "to_check"
            items.append(CheckItem(name, category.name_zh, result, mine))
        entries.append(
            ChecklistEntry(
                window=window.id,
                name=window.name,
                department=window.department,
                state=state,
                state_zh=STATE_ZH[state],
                occupant=live.occupant,
                hint=_HINT[state],
                items=tuple(items),
                findings=found,
            )
        )
    return tuple(entries)


# --------------------------------------------------------------------------
# The weekly bulletin
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BulletinItem:
    finding: Finding
    status: Status
    """The finding's status at the end of the bulletin's week."""
    confirmed_week: tuple[int, int]
    """ISO (year, week) in which it was confirmed (reported)."""
    dispute_deadline: date | None
    handling: str
    """The 异议/处理 column: the dispute and its outcome, the rectification, or how long it may be disputed."""
    carried_reason: str = ""
    """Why it is carried over (未整改 / 异议待核实), for unresolved items."""


@dataclass(frozen=True)
class WindowSummary:
    window: str
    name: str
    department: str
    count: int
    by_category: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Coverage:
    """Whether the week's patrols met the policy (2 hall rounds a working day, CCTV ≥ N half days)."""

    hall_rounds_done: int
    hall_rounds_expected: int
    cctv_minutes: int
    cctv_minutes_required: int

    @property
    def hall_rounds_met(self) -> bool:
        return self.hall_rounds_done >= self.hall_rounds_expected

    @property
    def cctv_met(self) -> bool:
        return self.cctv_minutes >= self.cctv_minutes_required


@dataclass(frozen=True)
class Bulletin:
    week_start: date
    week_end: date
    """The week's Sunday (inclusive)."""
    iso_year: int
    week_number: int
    title: str
    working_days: tuple[date, ...]
    issue_day: date | None
    """The week's last working day (when the patrol group briefs the window leads); None if the hall was closed all week."""
    items: tuple[BulletinItem, ...]
    """Findings confirmed this week, not overturned by its end, in hall window order, then time."""
    by_window: tuple[WindowSummary, ...]
    by_department: tuple[tuple[str, int], ...]
    overturned: int
    """Findings confirmed this week and overturned on dispute by its end (not listed)."""
    carried_over: tuple[BulletinItem, ...]
    """Unresolved at the end of the week (from this or earlier weeks): next week's focus."""
    coverage: Coverage | None = None


def bulletin_title(week_start: date) -> str:
    return f"政务服务中心大厅巡查情况通报（第{week_start.isocalendar().week}周）"


def _fmt_day(t: datetime) -> str:
    return t.astimezone(HALL_TZ).strftime("%Y-%m-%d")


def _handling(f: Finding, moment: datetime, deadline: date | None, deadline_error: str | None) -> str:
    parts: list[str] = []
    for s in f.history:
        if s.at >= moment:
            break
        if s.status == "disputed":
            parts.append(f"{_fmt_day(s.at)} {s.actor}提出异议：{s.reason}")
        elif s.status == "upheld":
            parts.append(f"{_fmt_day(s.at)} 再核实维持（{s.actor}）：{s.reason}")
        elif s.status == "overturned":
            parts.append(f"{_fmt_day(s.at)} 再核实撤销（{s.actor}）：{s.reason}")
        elif s.status == "rectified":
            parts.append(f"{_fmt_day(s.at)} 已整改（{s.actor}）：{s.reason}")
    if f.status_at(moment) == "confirmed":
        if deadline is not None:
            if deadline >= local_day(moment - timedelta(microseconds=1)):
                parts.append(f"可于 {deadline.isoformat()} 前（含）提出异议")
            else:
                parts.append(f"异议期已于 {deadline.isoformat()} 结束，待整改")
        elif deadline_error:
            parts.append(f"异议期无法计算：{deadline_error}")
    return "；".join(parts)


def _check_week_start(week_start: date) -> None:
    """Refuse anything but a Monday date: a bulletin covers one whole ISO week, and a datetime would blur its bounds."""
    if isinstance(week_start, datetime) or not isinstance(week_start, date):
        raise TypeError(f"week_start must be a date, not {week_start!r}")
    if week_start.weekday() != 0:
        raise ValueError(
            f"a bulletin week starts on a Monday; {week_start.isoformat()} is a {week_start.strftime('%A')}"
        )


@dataclass(frozen=True)
class _HallOrder:
    """The hall's windows, so a bulletin lists windows as people walk the hall, not alphabetically.

    A window the caller did not list (a retired window, say) still gets a
    row: it sorts after the known ones, and is named by its id.
    """

    names: Mapping[str, tuple[str, str]]
    """Window id → (name, department)."""
    position: Mapping[str, int]

    @classmethod
    def of(cls, windows: Sequence[WindowLike]) -> _HallOrder:
        return cls(
            names={w.id: (w.name, w.department) for w in windows},
            position={w.id: i for i, w in enumerate(windows)},
        )

    def window_key(self, window: str) -> tuple[int, str]:
        return (self.position.get(window, len(self.position)), window)

    def item_key(self, it: BulletinItem) -> tuple[object, ...]:
        f = it.finding
        return (*self.window_key(f.window), f.observed_at, f.id or 0)

    def name(self, window: str) -> str:
        return self.names.get(window, (window, ""))[0]

    def department(self, window: str) -> str:
        return self.names.get(window, ("", ""))[1]


def _carried_reason(status: Status) -> str:
    """Why an item is still open at the week's end — the 原因 column of the carried-over list."""
    if status == "disputed":
        return "异议待核实"
    if status == "upheld":
        return "异议不成立，未整改"
    if status == "confirmed":
        return "未整改"
    return ""


def _bulletin_item(f: Finding, status: Status, end: datetime, policy: Policy | None, calendar: WorkCalendar) -> BulletinItem:
    """One line of the bulletin, as it stood at ``end``.

    A calendar gap must not stop the bulletin from being issued, so it is
    written into the handling column instead of raised.
    """
    confirmed_at = f.confirmed_at
    assert confirmed_at is not None
    deadline: date | None = None
    error: str | None = None
    if policy is not None:
        try:
            deadline = dispute_deadline(local_day(confirmed_at), policy, calendar)
        except CalendarGapError as exc:
            error = str(exc)
    iso = local_day(confirmed_at).isocalendar()
    return BulletinItem(f, status, (iso.year, iso.week), deadline, _handling(f, end, deadline, error), _carried_reason(status))


@dataclass(frozen=True)
class _WeekItems:
    """What the week's findings come to: the listed items, the carried-over ones, and how many were overturned."""

    listed: tuple[BulletinItem, ...]
    carried: tuple[BulletinItem, ...]
    overturned: int


def _week_items(
    findings: Iterable[Finding], start: datetime, end: datetime, policy: Policy | None, calendar: WorkCalendar, hall: _HallOrder
) -> _WeekItems:
    """Sort the findings into this week's items and the unresolved carry-over (see :func:`weekly_bulletin`).

    Both are judged by each finding's status at ``end``, so a bulletin reads
    the same whenever it is printed.
    """
    listed: list[BulletinItem] = []
    carried: list[BulletinItem] = []
    overturned = 0
    for f in findings:
        confirmed_at = f.confirmed_at
        if confirmed_at is None or confirmed_at >= end:
            continue
        status = f.status_at(end)
        assert status is not None
        if start <= confirmed_at:
            if status == "overturned":
                overturned += 1
            else:
                listed.append(_bulletin_item(f, status, end, policy, calendar))
        if status in UNRESOLVED:
            carried.append(_bulletin_item(f, status, end, policy, calendar))
    listed.sort(key=hall.item_key)
    carried.sort(key=lambda it: (it.confirmed_week, *hall.item_key(it)))
    return _WeekItems(tuple(listed), tuple(carried), overturned)


def _window_summaries(listed: Iterable[BulletinItem], hall: _HallOrder) -> tuple[WindowSummary, ...]:
    """Per-window counts of the listed items, in hall order, categories in :data:`CATEGORIES` order."""
    counts: dict[str, dict[str, int]] = {}
    for it in listed:
        counts.setdefault(it.finding.window, {}).setdefault(it.finding.category, 0)
        counts[it.finding.window][it.finding.category] += 1
    return tuple(
        WindowSummary(
            window=w,
            name=hall.name(w),
            department=hall.department(w),
            count=sum(c.values()),
            by_category=tuple((k, c[k]) for k in CATEGORIES if k in c),
        )
        for w, c in sorted(counts.items(), key=lambda kv: hall.window_key(kv[0]))
    )


def _department_totals(by_window: Iterable[WindowSummary]) -> tuple[tuple[str, int], ...]:
    """Per-department counts, departments in the hall order of their first window."""
    departments: dict[str, int] = {}
    for summary in by_window:
        departments[summary.department] = departments.get(summary.department, 0) + summary.count
    return tuple(departments.items())


def _coverage(
    rounds: Iterable[PatrolRound], start: datetime, end: datetime, days: Sequence[date], policy: Policy, calendar: WorkCalendar
) -> Coverage:
    """The week's patrols against the policy's quota.

    Only rounds started within the week count; a CCTV round without a
    (later) end adds no minutes, since how long it lasted is unknown.
    """
    hall_done = 0
    cctv = timedelta()
    for r in rounds:
        if not (start <= r.started_at < end):
            continue
        if r.kind == "hall":
            hall_done += 1
        elif r.ended_at is not None and r.ended_at > r.started_at:
            cctv += r.ended_at - r.started_at
    required = half_day(policy) * policy.patrols.cctv_halfdays_per_week
    return Coverage(
        hall_rounds_done=hall_done,
        hall_rounds_expected=sum(len(scheduled_rounds(d, policy, calendar)) for d in days),
        cctv_minutes=int(cctv.total_seconds() // 60),
        cctv_minutes_required=int(-(-required.total_seconds() // 60)),
    )


def weekly_bulletin(
    findings: Iterable[Finding],
    week_start: date,
    calendar: WorkCalendar,
    *,
    policy: Policy | None = None,
    windows: Sequence[WindowLike] = (),
    rounds: Iterable[PatrolRound] = (),
) -> Bulletin:
    """The weekly bulletin (通报) of the ISO week starting Monday ``week_start``.

    * ``items``: findings *confirmed* during the week (Monday 00:00 to the
      next Monday 00:00, hall time), with their status as it stood at the
      end of the week — so a bulletin reads the same when printed again
      later.  Drafts and dismissed findings are never reported; a finding
      overturned on dispute by the end of the week is left out (only counted
      in ``overturned``), because a window is not named for what did not
      happen.
    * ``carried_over``: every finding confirmed by the end of the week and
      still unresolved then — confirmed or upheld but not rectified, or
      disputed and not decided — whichever week it came from
      (003 四(一)4(3): 「未解决的问题或延续性工作应在下周巡查中重点关注」).
    * ``coverage`` (with ``policy``): hall rounds done against
      ``len(policy.patrols.rounds)`` per working day, CCTV minutes against
      ``cctv_halfdays_per_week`` × :func:`half_day`.

    ``policy`` also gives each confirmed item its dispute deadline.
    Raises ValueError when ``week_start`` is not a Monday.
    """
    _check_week_start(week_start)
    start = datetime.combine(week_start, time.min, HALL_TZ)
    end = start + timedelta(days=7)
    days = tuple(week_start + timedelta(days=i) for i in range(7))
    working = tuple(d for d in days if calendar.is_working_day(d))
    hall = _HallOrder.of(windows)
    week = _week_items(findings, start, end, policy, calendar, hall)
    by_window = _window_summaries(week.listed, hall)
    return Bulletin(
        week_start=week_start,
        week_end=week_start + timedelta(days=6),
        iso_year=week_start.isocalendar().year,
        week_number=week_start.isocalendar().week,
        title=bulletin_title(week_start),
        working_days=working,
        issue_day=working[-1] if working else None,
        items=week.listed,
        by_window=by_window,
        by_department=_department_totals(by_window),
        overturned=week.overturned,
        carried_over=week.carried,
        coverage=_coverage(rounds, start, end, days, policy, calendar) if policy is not None else None,
    )
