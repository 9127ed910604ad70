"""Patrols (大厅巡查), findings and the weekly bulletin (通报).

The pure rules first, table by table (dispute period in working days with the
2026 national calendar and its 调休, drafts from a round's period, the finding
lifecycle, the bulletin's carried-over items); then the API over a real
database migrated by Alembic, with alerts inserted as the supervisor would.
"""

from __future__ import annotations

import io
import re
from dataclasses import FrozenInstanceError
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from server.db import AlertRow, Base, WindowRow, make_engine, migrate
from server.config.hall import load_hall
from server.patrol.api import BULLETIN_COLUMNS, patrol_router
from server.patrol.service import PatrolService, FindingRow, FindingStepRow, PatrolRoundRow
from server.config.policy import load_policy
from server.rules import patrol as rules
from server.rules.calendar import CalendarGapError
from server.rules.patrol import (
    CATEGORIES,
    LiveState,
    PatrolRound,
    Step,
    TransitionError,
    checklist,
    confirm,
    dismiss,
    dispute,
    dispute_deadline,
    draft_findings,
    new_finding,
    overturn,
    rectify,
    uphold,
    weekly_bulletin,
)
from server.rules.supervision import Alert
from server.users.authority import Authority
from server.users.accounts import UserStore
from users import session_headers, sign_in

ROOT = Path(__file__).resolve().parents[1]
CAL = national_calendar([2026])
POLICY = load_policy("qujiang-2023")  # dispute_working_days = 3 (003 四(一)4(2))
HALL = load_hall(ROOT / "config" / "halls" / "demo.toml")


def at(day: date, hh: int = 10, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), HALL_TZ)


def confirmed_on(day: date, window: str = "w01", category: str = "phone") -> rules.Finding:
    draft = new_finding(window, category, "低头玩手机", "巡查员甲", at(day, 9, 40))
    return confirm(draft, "巡查员甲", at(day, 9, 45))


# ---------------------------------------------------------------------------
# The dispute period: 3 working days after the day of confirmation
# ---------------------------------------------------------------------------

# (case, confirmed on, last day to dispute)
DEADLINES = [
    ("Monday: Thursday is the 3rd working day", date(2026, 3, 2), date(2026, 3, 5)),
    ("Friday: the weekend does not count", date(2026, 3, 6), date(2026, 3, 11)),
    ("eve of Labour Day: 1–5 May off", date(2026, 4, 30), date(2026, 5, 8)),
    ("after Labour Day: Saturday 9 May is a moved working day (调休)", date(2026, 5, 6), date(2026, 5, 9)),
    ("before Spring Festival: Saturday 14 Feb worked, 15–23 Feb off", date(2026, 2, 13), date(2026, 2, 25)),
    ("Sunday 20 Sep worked for National Day (调休)", date(2026, 9, 18), date(2026, 9, 22)),
    ("eve of the National Day break: 1–7 Oct off, Saturday 10 Oct worked", date(2026, 9, 30), date(2026, 10, 10)),
]


@pytest.mark.parametrize(("case", "confirmed", "last"), DEADLINES, ids=[c[0] for c in DEADLINES])
def test_dispute_deadline(case: str, confirmed: date, last: date) -> None:
    assert dispute_deadline(confirmed, POLICY, CAL) == last


@pytest.mark.parametrize(("case", "confirmed", "last"), DEADLINES, ids=[c[0] for c in DEADLINES])
def test_dispute_on_the_last_working_day_is_allowed_and_a_day_late_is_refused(case: str, confirmed: date, last: date) -> None:
    finding = confirmed_on(confirmed)
    disputed = dispute(finding, "窗口负责人", "当时已按暂停", at(last, 17, 59), POLICY, CAL)
    assert disputed.status == "disputed"
    with pytest.raises(TransitionError, match=f"dispute period ended on {last.isoformat()}"):
        dispute(finding, "窗口负责人", "当时已按暂停", at(last + timedelta(days=1), 8, 0), POLICY, CAL)


def test_the_dispute_day_is_the_hall_local_day() -> None:
    finding = confirmed_on(date(2026, 3, 2))
    # 23:59 Beijing time on the last day is in time; 16:30 UTC that date is already 00:30 the next day in Beijing.
    assert dispute(finding, "负责人", "理由", datetime(2026, 3, 5, 23, 59, tzinfo=HALL_TZ), POLICY, CAL).status == "disputed"
    with pytest.raises(TransitionError, match="ended on 2026-03-05"):
        dispute(finding, "负责人", "理由", datetime(2026, 3, 5, 16, 30, tzinfo=timezone.utc), POLICY, CAL)


def test_a_dispute_on_the_day_of_confirmation_is_allowed() -> None:
    finding = confirmed_on(date(2026, 3, 2))
    assert dispute(finding, "负责人", "理由", at(date(2026, 3, 2), 11), POLICY, CAL).status == "disputed"


def test_a_deadline_beyond_the_calendar_raises_instead_of_guessing() -> None:
    finding = confirmed_on(date(2026, 12, 30))
    with pytest.raises(CalendarGapError, match="2027"):
        dispute(finding, "负责人", "理由", at(date(2026, 12, 31)), POLICY, CAL)


def test_the_period_follows_the_policy() -> None:
    longer = POLICY.model_copy(update={"deadlines": POLICY.deadlines.model_copy(update={"dispute_working_days": 5})})
    assert dispute_deadline(date(2026, 3, 2), longer, CAL) == date(2026, 3, 9)


# ---------------------------------------------------------------------------
# The lifecycle
# ---------------------------------------------------------------------------


def test_dismiss_needs_a_reason() -> None:
    draft = new_finding("w01", "vacant", "座位无人", "巡查员甲", at(date(2026, 3, 2)))
    for reason in ("", "   "):
        with pytest.raises(TransitionError, match="cannot dismiss without a reason"):
            dismiss(draft, "巡查员甲", reason, at(date(2026, 3, 2), 10, 5))
    done = dismiss(draft, "巡查员甲", "已在叫号系统暂停", at(date(2026, 3, 2), 10, 5))
    assert done.status == "dismissed"
    assert done.history[-1] == Step("dismissed", at(date(2026, 3, 2), 10, 5), "巡查员甲", "已在叫号系统暂停")


# (case, path of actions before, action refused, message)
REFUSED = [
    ("a draft cannot be disputed", [], "dispute", "cannot dispute: the finding is draft"),
    ("a dismissed draft cannot be confirmed", ["dismiss"], "confirm", "cannot confirm: the finding is dismissed"),
    ("a confirmed finding cannot be dismissed", ["confirm"], "dismiss", "only a draft can be dismissed"),
    ("no second dispute after the re-check", ["confirm", "dispute", "uphold"], "dispute", "cannot dispute: the finding is upheld"),
    ("an overturned finding cannot be rectified", ["confirm", "dispute", "overturn"], "rectify", "cannot rectify"),
    ("a confirmed finding cannot be upheld without a dispute", ["confirm"], "uphold", "only a disputed finding can be upheld"),
]


@pytest.mark.parametrize(("case", "before", "action", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_invalid_transitions_are_refused_with_the_reason(case: str, before: list[str], action: str, message: str) -> None:
    day = date(2026, 3, 2)
    finding = new_finding("w01", "phone", "玩手机", "巡查员甲", at(day, 9))
    actors = {"dispute": "窗口负责人"}
    for minute, step in enumerate(before, 1):
        finding = rules.apply(finding, step, actors.get(step, "督查科"), "理由", at(day, 10, minute), POLICY, CAL)
    with pytest.raises(TransitionError, match=message):
        rules.apply(finding, action, actors.get(action, "督查科"), "理由", at(day, 11), POLICY, CAL)


def test_the_window_lead_cannot_decide_their_own_dispute() -> None:
    disputed = dispute(confirmed_on(date(2026, 3, 2)), "窗口负责人", "理由", at(date(2026, 3, 3)), POLICY, CAL)
    with pytest.raises(TransitionError, match="raised the dispute and cannot also decide it"):
        overturn(disputed, "窗口负责人", "我说没问题", at(date(2026, 3, 3), 11))
    assert overturn(disputed, "督查科", "回看录像，当时已放置暂停牌", at(date(2026, 3, 3), 11)).status == "overturned"


def test_transitions_return_new_immutable_findings_and_keep_every_step() -> None:
    day = date(2026, 3, 2)
    draft = new_finding("w03", "no_badge", "未佩戴工号牌", "巡查员甲", at(day, 9, 40))
    confirmed = confirm(draft, "巡查员甲", at(day, 9, 45))
    disputed = dispute(confirmed, "窗口负责人", "工牌在抽屉里", at(day + timedelta(days=1)), POLICY, CAL)
    upheld = uphold(disputed, "督查科", "在岗期间须佩戴", at(day + timedelta(days=2)))
    fixed = rectify(upheld, "窗口负责人", "已提醒并佩戴", at(day + timedelta(days=3)))
    assert draft.status == "draft" and confirmed.status == "confirmed"
    assert [s.status for s in fixed.history] == ["draft", "confirmed", "disputed", "upheld", "rectified"]
    assert [s.actor for s in fixed.history] == ["巡查员甲", "巡查员甲", "窗口负责人", "督查科", "窗口负责人"]
    with pytest.raises(FrozenInstanceError):
        fixed.note = "changed"  # type: ignore[misc]
    with pytest.raises(TransitionError, match="before the finding's last step"):
        confirm(new_finding("w03", "phone", "x", "甲", at(day, 10)), "甲", at(day, 9))


def test_a_finding_needs_a_known_category_a_description_and_an_actor() -> None:
    with pytest.raises(ValueError, match="unknown finding category 'smoking'"):
        new_finding("w01", "smoking", "吸烟", "甲", at(date(2026, 3, 2)))
    with pytest.raises(TransitionError, match="description"):
        new_finding("w01", "phone", "  ", "甲", at(date(2026, 3, 2)))
    with pytest.raises(TransitionError, match="actor"):
        new_finding("w01", "phone", "玩手机", "", at(date(2026, 3, 2)))
    with pytest.raises(TypeError, match="timezone-aware"):
        new_finding("w01", "phone", "玩手机", "甲", datetime(2026, 3, 2, 10))


def test_every_category_has_its_chinese_name_and_basis() -> None:
    assert {k: c.name_zh for k, c in CATEGORIES.items()} == {
        "vacant": "空岗",
        "away": "脱岗",
        "unregistered_substitute": "替岗未报备",
        "evaluator": "评价器未使用或登录人员不符",
        "phone": "玩手机",
        "chatting": "串岗聊天",
        "eating": "吃东西",
        "sleeping": "趴台打盹",
        "no_badge": "未佩戴工牌",
        "other": "其他",
    }
    assert all(c.basis.startswith("003 ") for c in CATEGORIES.values())


def test_every_category_basis_quotes_seed_003_word_for_word() -> None:
    seeds = ROOT.parent / "shared" / "seeds"
    found = sorted(seeds.glob("003_*.txt")) if seeds.is_dir() else []
    if not found:
        pytest.skip(f"regulation texts not found at {seeds}: cannot check that the categories quote them")
    text = re.sub(r"\s+", "", found[0].read_text(encoding="utf-8"))
    for name, category in CATEGORIES.items():
        quotes = re.findall(r"「([^」]+)」", category.basis)
        assert quotes, f"{name}: its basis quotes the regulation in 「」"
        for quote in quotes:
            assert re.sub(r"\s+", "", quote) in text, f"{name}: 「{quote}」 is not in seed 003"


# ---------------------------------------------------------------------------
# Drafts from alerts: only those active or raised within the round's period
# ---------------------------------------------------------------------------

DAY = date(2026, 3, 2)
ROUND_START = at(DAY, 9, 30)  # the previous round
ROUND_END = at(DAY, 15, 0)  # this round


def alert(
    raised: datetime, cleared: datetime | None, type: str = "vacant", window: str = "w02", facts: tuple[tuple[str, str], ...] = (("seat", "vacant"),)
) -> Alert:
    return Alert(
        window=window,
        type=type,
        condition_since=raised - timedelta(minutes=3),
        raised_at=raised,
        cleared_at=cleared,
        live=True,
        severity="high",
        rule="thresholds.vacant_grace_s",
        threshold_s=180,
        source="003 衢江区 二(三)1(5)",
        facts=facts,
        evidence="snap-7",
    )


# (case, alert, drafted category or None)
DRAFTS = [
    ("raised and cleared before the period", alert(at(DAY, 8, 40), at(DAY, 9, 0)), None),
    ("cleared exactly when the period starts", alert(at(DAY, 8, 40), ROUND_START), None),
    ("raised before, still active", alert(at(DAY, 9, 0), None), "vacant"),
    ("raised before, cleared within", alert(at(DAY, 9, 0), at(DAY, 10, 0)), "vacant"),
    ("raised within", alert(at(DAY, 11, 0), at(DAY, 11, 20)), "vacant"),
    ("raised exactly when the round starts", alert(ROUND_END, None), None),
    ("raised after the round", alert(at(DAY, 16, 0), None), None),
    ("pause overrun is 脱岗", alert(at(DAY, 11, 0), None, "pause_overrun"), "away"),
    ("unregistered person", alert(at(DAY, 11, 0), None, "unexpected_person"), "unregistered_substitute"),
    ("evaluator logged in as another clerk", alert(at(DAY, 11, 0), None, "clerk_mismatch"), "evaluator"),
    ("leave without substitute leaves the window empty", alert(at(DAY, 11, 0), None, "no_substitute"), "vacant"),
    ("a camera fault is never the clerk's", alert(at(DAY, 11, 0), None, "device_fault"), None),
    ("withdrawn by later data", alert(at(DAY, 11, 0), at(DAY, 11, 0), facts=(("withdrawn", "later observations"),)), None),
    ("a newer alert type still reaches the officer", alert(at(DAY, 11, 0), None, "new_rule"), "other"),
]


@pytest.mark.parametrize(("case", "given", "category"), DRAFTS, ids=[c[0] for c in DRAFTS])
def test_drafts_only_from_the_rounds_period(case: str, given: Alert, category: str | None) -> None:
    drafts = draft_findings([given], ROUND_START, ROUND_END)
    assert [d.category for d in drafts] == ([category] if category else [])


def test_a_draft_copies_facts_rule_source_and_evidence() -> None:
    a = alert(at(DAY, 11, 0), at(DAY, 11, 20))
    (d,) = draft_findings([a], ROUND_START, ROUND_END)
    assert (d.window, d.status, d.origin, d.alert_type, d.alert_key) == ("w02", "draft", "device", "vacant", a.key)
    assert ("seat", "vacant") in d.facts and ("live", "yes") in d.facts
    assert (d.rule, d.source, d.basis, d.evidence) == ("thresholds.vacant_grace_s", "003 衢江区 二(三)1(5)", "003 衢江区 二(三)1(5)", "snap-7")
    assert (d.observed_at, d.observed_until) == (a.condition_since, a.cleared_at)
    assert d.history == (Step("draft", ROUND_END, "hallwatch", d.history[0].reason),)
    assert "空岗" in d.note and "10:57–11:20" in d.note


def test_checklist_prefilled_from_live_state_and_drafts() -> None:
    drafts = draft_findings([alert(at(DAY, 11, 0), None, window="w02")], ROUND_START, ROUND_END)
    states = {
        "w01": LiveState("staffed", occupant="c01"),
        "w02": LiveState("vacant"),
        "w03": LiveState("paused", pause_reason="取材料"),
        "w05": LiveState("closed"),
    }
    entries = {e.window: e for e in checklist(HALL.windows, states, drafts)}
    assert list(entries) == [w.id for w in HALL.windows]

    def result(window: str, category: str) -> str:
        return next(i.result for i in entries[window].items if i.category == category)

    assert (entries["w01"].state_zh, entries["w01"].occupant) == ("在岗", "c01")
    assert result("w01", "vacant") == "ok" and result("w01", "phone") == "to_check"
    assert result("w02", "vacant") == "recorded" and entries["w02"].findings == drafts
    assert result("w02", "phone") == "not_applicable"  # nobody at the counter
    assert entries["w03"].state == "paused" and "暂停" in entries["w03"].hint
    assert entries["w04"].state == "unknown" and "设备离线" in entries["w04"].hint  # no state: unknown, never vacant
    assert result("w04", "vacant") == "to_check"
    assert {i.result for i in entries["w05"].items} == {"not_applicable"}


# ---------------------------------------------------------------------------
# The weekly bulletin
# ---------------------------------------------------------------------------

MON = date(2026, 3, 2)  # ISO week 10


def test_bulletin_lists_the_weeks_findings_and_carries_unresolved_items() -> None:
    previous_week = confirmed_on(date(2026, 2, 25), "w07", "eating")  # still not rectified
    fixed_earlier = rectify(confirmed_on(date(2026, 2, 24), "w08", "sleeping"), "负责人", "已整改", at(date(2026, 2, 26)))
    plain = confirmed_on(MON, "w01", "phone")
    fixed = rectify(confirmed_on(MON, "w02", "no_badge"), "负责人", "已佩戴", at(date(2026, 3, 3)))
    pending = dispute(confirmed_on(date(2026, 3, 5), "w03", "chatting"), "负责人", "是在交接业务", at(date(2026, 3, 6)), POLICY, CAL)
    upheld = uphold(dispute(confirmed_on(MON, "w04", "eating"), "负责人", "理由", at(date(2026, 3, 3)), POLICY, CAL), "督查科", "录像确认", at(date(2026, 3, 4)))
    withdrawn = overturn(dispute(confirmed_on(MON, "w05", "phone"), "负责人", "理由", at(date(2026, 3, 3)), POLICY, CAL), "督查科", "系误判", at(date(2026, 3, 4)))
    draft = new_finding("w06", "phone", "未确认", "甲", at(MON))
    next_week = confirmed_on(date(2026, 3, 9), "w09", "phone")
    # Rectified only next week: still unresolved at the end of this week.
    late_fix = rectify(confirmed_on(date(2026, 3, 4), "w10", "sleeping"), "负责人", "已整改", at(date(2026, 3, 10)))

    b = weekly_bulletin(
        [previous_week, fixed_earlier, plain, fixed, pending, upheld, withdrawn, draft, next_week, late_fix],
        MON,
        CAL,
        policy=POLICY,
        windows=HALL.windows,
    )
    assert b.title == "政务服务中心大厅巡查情况通报（第10周）"
    assert (b.week_end, b.issue_day, len(b.working_days)) == (date(2026, 3, 8), date(2026, 3, 6), 5)
    listed = {it.finding.window: it for it in b.items}
    assert set(listed) == {"w01", "w02", "w03", "w04", "w10"}  # not overturned, not draft, not other weeks
    assert listed["w10"].status == "confirmed"  # as it stood at the end of the week
    assert listed["w02"].status == "rectified" and "已整改" in listed["w02"].handling
    assert "提出异议" in listed["w03"].handling and "再核实维持" in listed["w04"].handling
    assert listed["w03"].dispute_deadline == date(2026, 3, 10)
    assert b.overturned == 1
    carried = {it.finding.window: it.carried_reason for it in b.carried_over}
    assert carried == {"w07": "未整改", "w01": "未整改", "w03": "异议待核实", "w04": "异议不成立，未整改", "w10": "未整改"}
    assert b.carried_over[0].finding.window == "w07" and b.carried_over[0].confirmed_week == (2026, 9)
    assert dict(b.by_department) == {"人社局": 2, "市场监管局": 2, "税务局": 1}


def test_bulletin_week_starts_on_monday() -> None:
    with pytest.raises(ValueError, match="2026-03-03 is a Tuesday"):
        weekly_bulletin([], date(2026, 3, 3), CAL)


def test_bulletin_coverage_of_rounds() -> None:
    officer = "巡查员甲"
    rounds = [PatrolRound("hall", officer, at(MON + timedelta(days=i), h), at(MON, 0)) for i in range(5) for h in (9, 15)][:9]
    rounds.append(PatrolRound("cctv", officer, at(MON, 14), at(MON, 0), ended_at=at(MON, 17, 30)))
    b = weekly_bulletin([], MON, CAL, policy=POLICY, rounds=rounds)
    assert b.coverage is not None
    assert (b.coverage.hall_rounds_done, b.coverage.hall_rounds_expected, b.coverage.hall_rounds_met) == (9, 10, False)
    assert (b.coverage.cctv_minutes, b.coverage.cctv_minutes_required, b.coverage.cctv_met) == (210, 210, True)
    holiday_week = weekly_bulletin([], date(2026, 2, 16), CAL, policy=POLICY)  # Spring Festival: no working day
    assert holiday_week.issue_day is None and holiday_week.coverage is not None and holiday_week.coverage.hall_rounds_expected == 0


# ---------------------------------------------------------------------------
# The API over a real database
# ---------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(db_url):
    """A migrated database: SQLite in tmp_path, and PostgreSQL (conftest's ``db_url``)."""
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as session, session.begin():
        for spec in HALL.windows:
            session.add(WindowRow(id=spec.id, hall_id=HALL.hall.id, name=spec.name, department=spec.department, paused=False, state="staffed", occupant=spec.clerks[0]))
        session.get(WindowRow, "w02").state = "vacant"  # type: ignore[union-attr]
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return Clock(at(MON, 9, 30))


@pytest.fixture
def client(engine, clock):
    app = FastAPI()
    app.include_router(patrol_router(PatrolService(engine, HALL, POLICY, CAL, clock), Authority(UserStore(engine), None)))
    with TestClient(app) as client:
        yield sign_in(client, engine, "viewer")  # reading; each step is taken as its actor (``as_``)


ROLE_OF = {"巡查员甲": "patrol", "巡查员乙": "patrol", "甲": "patrol", "窗口负责人": "lead", "不动产窗口负责人": "lead", "督查科": "office"}
DEPARTMENT_OF = {"窗口负责人": "市场监管局", "不动产窗口负责人": "不动产登记中心"}
"""The window leads' departments: 市场监管局 has w01 and w02, 不动产登记中心 w07 and w08."""


@pytest.fixture
def as_(engine):
    """The session headers of a user named ``name``: the actor a step records is the logged-in user."""
    sessions: dict[str, dict[str, str]] = {}

    def headers(name: str) -> dict[str, str]:
        if name not in sessions:
            sessions[name] = session_headers(engine, ROLE_OF[name], name, DEPARTMENT_OF.get(name))
        return sessions[name]

    return headers


def add_alert(engine, window: str, type: str, since: datetime, raised: datetime, cleared: datetime | None) -> int:
    with Session(engine) as session, session.begin():
        row = AlertRow(
            window_id=window,
            type=type,
            severity="high",
            condition_since=since,
            raised_at=raised,
            cleared_at=cleared,
            live=True,
            rule="thresholds.vacant_grace_s",
            threshold_s=180,
            source="003 衢江区 二(三)1(5)",
            facts={"seat": "vacant", "paused": "no", "camera": "online"},
            evidence="snap-42",
        )
        session.add(row)
        session.flush()
        return row.id


def test_the_migration_creates_exactly_the_models_tables(engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if "patrol" in repr(d)]
    assert ours == []


def test_a_round_drafts_from_alerts_since_the_previous_round(client, engine, clock, as_) -> None:
    yesterday = add_alert(engine, "w01", "vacant", at(date(2026, 2, 27), 10), at(date(2026, 2, 27), 10, 3), at(date(2026, 2, 27), 10, 30))
    morning = add_alert(engine, "w02", "vacant", at(MON, 9, 0), at(MON, 9, 3), None)
    add_alert(engine, "w03", "device_fault", at(MON, 9, 0), at(MON, 9, 5), None)

    r = client.post("/api/patrols", json={"round": "上午巡查"}, headers=as_("巡查员甲"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["name"], first["kind"], first["scheduled_at"]) == ("上午巡查", "hall", "2026-03-02T09:30:00+08:00")
    assert first["period_start"] == "2026-03-02T00:00:00+08:00"
    entries = {e["window_id"]: e for e in first["checklist"]}
    assert len(entries) == 12 and entries["w02"]["state"] == "vacant" and entries["w01"]["occupant"] == "c01"
    (draft,) = entries["w02"]["findings"]
    assert (draft["category"], draft["status"], draft["evidence"], draft["rule"]) == ("vacant", "draft", "snap-42", "thresholds.vacant_grace_s")
    assert draft["facts"]["seat"] == "vacant" and draft["actions"] == ["confirm", "dismiss"]
    assert entries["w03"]["findings"] == []  # device fault: no finding
    assert all(not e["findings"] for w, e in entries.items() if w != "w02")  # yesterday's alert is before the period

    # The afternoon round: only what is new since the morning round; the still-active w02 alert is not drafted twice.
    clock.now = at(MON, 15, 0)
    afternoon = add_alert(engine, "w05", "pause_overrun", at(MON, 13, 30), at(MON, 14, 0), at(MON, 14, 20))
    second = client.post("/api/patrols", json={"round": "下午巡查"}, headers=as_("巡查员乙")).json()
    assert second["period_start"] == "2026-03-02T09:30:00+08:00"
    drafted = [(f["window_id"], f["category"]) for e in second["checklist"] for f in e["findings"]]
    assert drafted == [("w05", "away")]
    with Session(engine) as session:
        by_alert = {row.alert_id for row in session.scalars(select(FindingRow))}
    assert by_alert == {morning, afternoon} and yesterday not in by_alert

    r = client.post("/api/patrols", json={"round": "下午巡查"}, headers=as_("巡查员乙"))
    assert r.status_code == 409 and "already started" in r.json()["detail"]

    day = client.get("/api/patrols", params={"day": "2026-03-02"}).json()
    assert day["working_day"] is True
    assert [(s["name"], s["round_id"]) for s in day["scheduled"]] == [("上午巡查", first["id"]), ("下午巡查", second["id"])]
    assert client.get(f"/api/patrols/{first['id']}").json()["checklist"][1]["findings"][0]["id"] == draft["id"]
    assert client.get("/api/patrols/999").status_code == 404


def test_start_round_validation(client, clock, as_) -> None:
    r = client.post("/api/patrols", json={"round": "夜间巡查"}, headers=as_("甲"))
    assert r.status_code == 422 and "夜间巡查" in r.text and "上午巡查" in r.text
    assert client.post("/api/patrols", json={"kind": "drone"}, headers=as_("甲")).status_code == 422
    clock.now = at(date(2026, 3, 1), 10)  # a Sunday
    r = client.post("/api/patrols", json={"round": "上午巡查"}, headers=as_("甲"))
    assert r.status_code == 409 and "not a working day" in r.json()["detail"]
    r = client.post("/api/patrols", json={"kind": "cctv"}, headers=as_("甲"))  # an unscheduled CCTV session is fine
    assert r.status_code == 201


def test_findings_lifecycle_over_the_api(client, engine, clock, as_) -> None:
    kinds = client.get("/api/finding-categories").json()
    assert [k["name"] for k in kinds] == list(CATEGORIES) and all(k["name_zh"] and k["basis"] for k in kinds)
    assert {k["name"]: k["seen_by"] for k in kinds}["phone"] == "officer"
    r = client.post("/api/findings", json={"window": "w99", "category": "phone", "note": "玩手机"}, headers=as_("甲"))
    assert r.status_code == 422 and "unknown window 'w99'" in r.text
    r = client.post("/api/findings", json={"window": "w01", "category": "smoking", "note": "x"}, headers=as_("甲"))
    assert r.status_code == 422 and "category" in r.text
    r = client.post("/api/findings", json={"window": "w01", "category": "phone", "note": "x", "round_id": 7}, headers=as_("甲"))
    assert r.status_code == 422 and "no patrol round 7" in r.text
    r = client.get("/api/findings", params={"window": "w77"})
    assert r.status_code == 422 and "w77" in r.text

    r = client.post("/api/findings", json={"window": "w01", "category": "phone", "note": "低头划看手机"}, headers=as_("巡查员甲"))
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert r.json()["status"] == "draft" and "二(三)1(5)" in r.json()["basis"]

    r = client.post(f"/api/findings/{fid}/dismiss", json={}, headers=as_("巡查员甲"))
    assert r.status_code == 422  # the reason is required
    r = client.post(f"/api/findings/{fid}/dispute", json={"reason": "理由"}, headers=as_("窗口负责人"))
    assert r.status_code == 409 and "is draft" in r.json()["detail"]

    r = client.post(f"/api/findings/{fid}/confirm", json={}, headers=as_("巡查员甲"))
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["dispute_deadline"]) == ("confirmed", "2026-03-05")
    assert r.json()["actions"] == ["dispute", "rectify"]

    clock.now = at(date(2026, 3, 6), 9)
    r = client.post(f"/api/findings/{fid}/dispute", json={"reason": "当时在查询业务资料"}, headers=as_("窗口负责人"))
    assert r.status_code == 409 and "dispute period ended on 2026-03-05" in r.json()["detail"]
    assert client.get(f"/api/findings/{fid}").json()["actions"] == ["rectify"]

    # A second finding, disputed in time and decided by the supervision office.
    clock.now = at(MON, 10)
    other = client.post("/api/findings", json={"window": "w02", "category": "chatting", "note": "串岗聊天"}, headers=as_("巡查员甲")).json()["id"]
    client.post(f"/api/findings/{other}/confirm", json={}, headers=as_("巡查员甲"))
    clock.now = at(date(2026, 3, 5), 17)
    assert client.post(f"/api/findings/{other}/dispute", json={"reason": "是在交接业务"}, headers=as_("窗口负责人")).status_code == 200
    r = client.post(f"/api/findings/{other}/overturn", json={"reason": "我说没问题"}, headers=as_("窗口负责人"))
    assert r.status_code == 403 and "findings.decide" in r.json()["detail"], "a window lead does not decide disputes"
    assert client.post(f"/api/findings/{other}/uphold", json={"reason": "x"}, headers=as_("巡查员甲")).status_code == 403
    r = client.post(f"/api/findings/{other}/uphold", json={"reason": "录像显示闲聊"}, headers=as_("督查科"))
    assert r.status_code == 200
    history = r.json()["history"]
    assert [(h["status"], h["actor"]) for h in history] == [
        ("draft", "巡查员甲"), ("confirmed", "巡查员甲"), ("disputed", "窗口负责人"), ("upheld", "督查科")
    ]
    assert history[2]["at"] == "2026-03-05T17:00:00+08:00" and history[2]["reason"] == "是在交接业务"
    with Session(engine) as session:
        steps = session.scalars(select(FindingStepRow).where(FindingStepRow.finding_id == other)).all()
        assert [s.status for s in steps] == ["draft", "confirmed", "disputed", "upheld"]
    assert client.post("/api/findings/999/confirm", json={}, headers=as_("甲")).status_code == 404
    assert [f["id"] for f in client.get("/api/findings", params={"window": "w02"}).json()] == [other]


def test_bulletin_json_and_xlsx(client, engine, clock, as_) -> None:
    add_alert(engine, "w02", "vacant", at(MON, 9, 0), at(MON, 9, 3), at(MON, 9, 20))
    round_ = client.post("/api/patrols", json={"round": "上午巡查"}, headers=as_("巡查员甲")).json()
    device = round_["checklist"][1]["findings"][0]["id"]
    client.post(f"/api/findings/{device}/confirm", json={}, headers=as_("巡查员甲"))
    eating = client.post("/api/findings", json={"window": "w07", "category": "eating", "note": "窗口台面吃早餐", "round_id": round_["id"]}, headers=as_("巡查员甲")).json()["id"]
    client.post(f"/api/findings/{eating}/confirm", json={}, headers=as_("巡查员甲"))
    clock.now = at(date(2026, 3, 3), 10)
    client.post(f"/api/findings/{eating}/rectify", json={"reason": "已约谈提醒"}, headers=as_("不动产窗口负责人"))
    dismissed = client.post("/api/findings", json={"window": "w08", "category": "sleeping", "note": "趴台"}, headers=as_("巡查员甲")).json()["id"]
    client.post(f"/api/findings/{dismissed}/dismiss", json={"reason": "系弯腰取材料"}, headers=as_("巡查员甲"))
    clock.now = at(date(2026, 3, 4), 14)
    cctv = client.post("/api/patrols", json={"kind": "cctv"}, headers=as_("督查科")).json()["id"]
    clock.now = at(date(2026, 3, 4), 17, 45)
    assert client.post(f"/api/patrols/{cctv}/finish", headers=as_("督查科")).json()["minutes"] == 225
    assert client.post(f"/api/patrols/{cctv}/finish", headers=as_("督查科")).status_code == 409

    b = client.get("/api/bulletins/2026-03-02").json()
    assert b["title"] == "政务服务中心大厅巡查情况通报（第10周）"
    assert [(i["finding"]["window_id"], i["status"]) for i in b["items"]] == [("w02", "confirmed"), ("w07", "rectified")]
    assert [i["finding"]["window_id"] for i in b["carried_over"]] == ["w02"]
    assert b["coverage"] == {
        "hall_rounds_done": 1, "hall_rounds_expected": 10, "hall_rounds_met": False,
        "cctv_minutes": 225, "cctv_minutes_required": 210, "cctv_met": True,
    }
    assert client.get("/api/bulletins/2026-03-04").status_code == 422
    assert client.get("/api/bulletins/2026-13-40").status_code == 422
    # Next week the unrectified w02 finding is carried over again, with the week it was reported in.
    nxt = client.get("/api/bulletins/2026-03-09").json()
    assert nxt["items"] == [] and [(i["finding"]["window_id"], i["confirmed_week"]) for i in nxt["carried_over"]] == [("w02", "2026-W10")]

    r = client.get("/api/bulletins/2026-03-02.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["本周通报", "遗留问题"]
    ws = wb["本周通报"]
    assert ws["A1"].value == "政务服务中心大厅巡查情况通报（第10周）"
    assert "A1:I1" in {str(m) for m in ws.merged_cells.ranges}
    assert [c.value for c in ws[3]] == list(BULLETIN_COLUMNS)
    assert list(BULLETIN_COLUMNS) == ["序号", "窗口", "部门", "时间", "问题类别", "情况描述", "依据", "状态", "异议/处理"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=4, max_row=5)]
    assert rows[0][:5] == [1, "2号窗口", "市场监管局", "2026-03-02 09:00–09:20", "空岗"]
    assert rows[0][7] == "已确认" and "异议期已于 2026-03-05 结束" in rows[0][8]
    assert rows[1][1:5] == ["7号窗口", "不动产登记中心", rows[1][3], "吃东西"] and rows[1][7] == "已整改"
    texts = [row[0].value for row in ws.iter_rows(min_row=6) if row[0].value]
    assert any("监控巡查 225 分钟" in str(t) for t in texts)
    carried = wb["遗留问题"]
    assert carried["A1"].value == "未解决问题（转入第11周重点关注）"
    assert [c.value for c in carried[3]][:4] == ["序号", "窗口", "部门", "时间"]
    assert [c.value for c in carried[4]][1] == "2号窗口" and [c.value for c in carried[4]][8] == "未整改"


def test_round_rows_keep_who_and_when(client, engine, clock, as_) -> None:
    client.post("/api/patrols", json={"round": "上午巡查"}, headers=as_("巡查员甲"))
    with Session(engine) as session:
        (row,) = session.scalars(select(PatrolRoundRow)).all()
        assert (row.started_by, row.day, row.name) == ("巡查员甲", MON, "上午巡查")
        assert row.started_at == clock.now and row.window_states["w02"]["state"] == "vacant"
