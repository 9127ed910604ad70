/*
 * HallWatch 窗口值守实时监控页 (live monitoring page). Plain JS, no dependencies.
 *
 * Server contract (same origin):
 *   GET /api/hall           -> {id, name, timezone, clock: {now: ISO-8601, speed}}
 *   GET /api/windows        -> [{id, name, department, state: staffed|paused|vacant|unknown,
 *                                state_since: ISO-8601|null, seat_state: occupied|vacant|null,
 *                                occupant, paused, pause_reason, camera_device,
 *                                camera_status: online|offline|stale|never_seen}]
 *   GET /api/devices        -> [{id, kind, windows: [window ids], status, reason: why offline|null, boot, last_seen}]
 *   GET /api/stats          -> {accepted, duplicates, rejected, historical}
 *   GET /api/events?limit=50 -> newest first [{msg_id, device_id, type, event_time,
 *                                historical, window_id, summary}]
 *   GET /api/alerts?active=true&limit=100 -> newest first, not cleared (active + acknowledged)
 *   GET /api/alerts?limit=50 -> newest first, cleared ones too (we keep the last 20 cleared)
 *       alert = {id: int, window_id, window_name, type: vacant|pause_overrun|unexpected_person|
 *                clerk_mismatch|device_fault|no_substitute (supervision) or rating_seat_vacant|
 *                rating_no_ticket|rating_burst|rating_never_below|work_order_overdue (好差评,
 *                docs/ratings.md; shown by name_zh like any other), name_zh, name_en,
 *                state: active|acknowledged|cleared, severity: low|medium|high|critical,
 *                condition_since: ISO, raised_at: ISO, cleared_at: ISO|null,
 *                acknowledged_at: ISO|null, acknowledged_by: str|null,
 *                live: bool (false: backfilled data, never sounds), rule: "thresholds.x"|null,
 *                threshold_s: int, source: citation text, facts: {str: str}, evidence: str|null}
 *   GET /api/session -> {username, role, role_zh, permissions: [str]} or 401 (not logged in)
 *   POST /api/session {username, password} -> the same + HttpOnly cookie; 401 wrong, 429 too many failures
 *   DELETE /api/session -> 204 (logged out)
 *     Every other request needs the session: a 401 shows the login form again. Buttons a role may
 *     not use are not drawn (permissions from /api/session); the API refuses them anyway (403).
 *   POST /api/alerts/{id}/ack  (no body; the logged-in user acknowledges) -> the updated alert (404 if unknown)
 *   GET /api/patrols?day=YYYY-MM-DD (the hall clock's day, see hallNow()) -> {day, working_day: bool|null,
 *       calendar_error: str|null, scheduled: [{name, at: ISO, round_id: int|null, started_at: ISO|null}],
 *       rounds: [{id, kind: hall|cctv, kind_zh, name: str|null, scheduled_at, started_at, officer,
 *                 period_start, ended_at, ended_by, minutes}]}
 *     A scheduled entry is done (round_id set), missing (its time has passed) or upcoming.
 *   GET /api/patrols/{id} -> round + {checklist: [{window_id, window_name, department, state, state_zh,
 *       occupant, hint, items: [...], findings: [finding]}]}
 *       finding = {id, round_id, window_id, window_name, department, category: vacant|away|
 *         unregistered_substitute|evaluator|phone|chatting|eating|sleeping|no_badge|other, category_zh,
 *         origin: device|officer, status: draft|confirmed|dismissed|disputed|upheld|overturned|rectified,
 *         status_zh, observed_at, observed_until: ISO|null, note, facts: {str: str} (device findings add
 *         raised_at and live: yes|no), rule, basis, evidence, alert_type, confirmed_at,
 *         dispute_deadline, actions: [confirm|dismiss|dispute|…], history: [{status, status_zh, at, actor, reason}]}
 *   POST /api/findings/{id}/confirm  body {} -> the updated finding (the logged-in user confirms)
 *   POST /api/findings/{id}/dismiss  body {"reason": "<text>"} -> the finding
 *       409 {"detail": "<why the workflow refuses>"}, 404 {"detail": "no finding N"},
 *       422 {"detail": [{loc, msg}]} — shown next to the finding.
 *     Patrols have no WebSocket message: refetched on load, on every (re)connect, every 30 s,
 *     just after the next scheduled round's time, and after a confirm/dismiss.
 *   GET /api/attendance/{year}/{month} -> [{person_id, name, window, summary, days: [{day, working,
 *       halves: [{session, status, late_s, early_s, clock_in, clock_out, rules}]}]}] (docs/attendance.md)
 *   GET /api/ratings/stats?by=window&period=day&from=D&to=D -> {rows, totals: {rated, satisfied, bad,
 *       satisfaction_rate, bad_rate, ...}} (docs/ratings.md)
 *     Both feed the "today" panel (#today[data-day], #today-punched, #today-late, #today-rated,
 *     #today-satisfaction, #today-bad): fetched on load and every 60 s, not per event.
 *   WebSocket /ws pushes {kind: "window"|"device"|"event"|"stats"|"alert",
 *     window|device|event|stats|alert: {...}} with the same item shapes as above ("alert" on
 *     raise, clear, acknowledge or liveness change). On close we reconnect with exponential
 *     backoff and refetch every list once the socket is open again. Alerts are also refetched
 *     every minute, because severity escalation is computed by the server at read time.
 *
 * Alert sound: Web Audio beep for a new live active alert, repeated every 60 s (wall time)
 * while any live alert is unacknowledged, unless muted. The AudioContext starts on the first
 * click/keypress (browsers block audio before a user gesture).
 *
 * Test hooks: window cards [data-window-id][data-state][data-alert=<type of top open alert>];
 * alert rows [data-alert-id][data-alert-state]; ack buttons .ack-button;
 * #alerts[data-beeps] counts beeps played.
 * Patrols: #patrols[data-day][data-pending=<drafts>]; rounds .patrol-round[data-round-name]
 * [data-round-state=done|missing|upcoming][data-round-id]; findings [data-finding-id]
 * [data-finding-status]; buttons .finding-confirm, .finding-dismiss; the inline dismiss form
 * form.dismiss-form > input.dismiss-reason, .finding-submit, .finding-cancel; errors .finding-error.
 * Login: #login (form #login-form, #login-user, #login-password, #login-error); the live page #live
 * is shown once logged in; #user-name, #user-role, #logout in the top bar.
 *
 * Server data is only ever written with textContent (never innerHTML).
 */
(function () {
  "use strict";
  // A hall's page is served under /halls/<id>/ and calls that hall's API there; at / it is the district centre's.
  var HALL = (window.location.pathname.match(/^\/halls\/[a-z0-9][a-z0-9_-]*/) || [""])[0];

  var EVENT_LIMIT = 50;
  var DEFAULT_TZ = "Asia/Shanghai";
  var STATES = ["staffed", "paused", "vacant", "unknown", "closed"];
  var STATE_ICONS = { staffed: "✓", paused: "⏸\uFE0E", vacant: "✕", unknown: "?", closed: "–" };
  var DEVICE_STATUS_ICONS = { online: "●", offline: "✕", stale: "!", never_seen: "–" };
  var DEVICE_STATUS_ORDER = { offline: 0, stale: 1, never_seen: 2, online: 3 };
  var HIDDEN_EVENT_TYPES = { seat_heartbeat: true, heartbeat: true };
  var CLEARED_KEEP = 20;
  var ALERT_REFRESH_MS = 60000;
  var BEEP_REPEAT_MS = 60000;
  var SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  var SEVERITY_ICONS = { critical: "●●●●", high: "●●●○", medium: "●●○○", low: "●○○○" };
  var ALERT_STATE_ICONS = { active: "!", acknowledged: "✓", cleared: "○" };
  var ALERT_STATE_RANK = { active: 0, acknowledged: 1, cleared: 2 };

  // ---------------------------------------------------------------- i18n
  var I18N = {
    zh: {
      "app.title": "窗口值守实时监控",
      "app.subtitle": "窗口值守实时监控",
      "hall.default": "政务服务大厅",
      "conn.connecting": "正在连接…",
      "conn.online": "实时已连接",
      "conn.offline": "连接已断开",
      "banner.disconnected": "实时连接已断开，正在重连…",
      "summary.title": "窗口状态汇总",
      "summary.total": "窗口总数",
      "windows.title": "服务窗口",
      "windows.loading": "正在加载窗口数据…",
      "windows.empty": "暂无窗口",
      "state.staffed": "在岗",
      "state.paused": "暂停服务",
      "state.vacant": "空岗",
      "state.unknown": "状态未知（设备离线）",
      "state.closed": "关闭（非服务时间）",
      "card.occupant": "在岗人员",
      "card.pauseReason": "暂停原因",
      "card.duration": "持续",
      "card.camera": "摄像头",
      "card.noCamera": "未配置",
      "card.durationUnknown": "—",
      "stats.title": "数据接收",
      "stats.accepted": "已接收",
      "stats.duplicates": "重复",
      "stats.rejected": "已拒收",
      "stats.historical": "补传",
      "today.title": "今日考勤与评价",
      "today.punched": "打卡/应到",
      "today.late": "迟到",
      "today.rated": "评价数",
      "today.satisfaction": "满意率",
      "today.bad": "差评",
      "today.failed": "今日考勤与评价加载失败",
      "devices.title": "设备状态",
      "devices.empty": "暂无设备",
      "devices.windows": "窗口",
      "devices.lastSeen": "最后上报",
      "devices.never": "从未上报",
      "devices.boot": "启动 #",
      "devices.fault": "故障",
      "kind.face_terminal": "人脸考勤机",
      "kind.window_camera": "窗口摄像头",
      "kind.evaluator": "评价器",
      "kind.pause_button": "暂停按钮",
      "kind.queue_gateway": "叫号系统接口",
      "status.online": "在线",
      "status.offline": "离线",
      "status.stale": "超时",
      "status.never_seen": "未上线",
      "events.title": "最新事件",
      "events.empty": "暂无事件",
      "events.historical": "补传",
      "events.device": "设备",
      "type.punch": "打卡",
      "type.seat": "座位状态",
      "type.seat_heartbeat": "座位心跳",
      "type.rating": "评价",
      "type.pause": "暂停/恢复",
      "type.clerk_login": "评价器登录",
      "type.ack": "确认",
      "alerts.title": "告警",
      "alerts.loading": "正在加载告警…",
      "alerts.none": "暂无未解除的告警",
      "alerts.mute": "静音",
      "alerts.soundHint": "点击页面以启用提示音",
      "alerts.soundUnsupported": "此浏览器不支持提示音",
      "alerts.ackForbidden": "您的角色无权确认告警",
      "alerts.cleared": "最近解除",
      "alerts.clearedEmpty": "暂无已解除的告警",
      "alerts.since": "开始",
      "alerts.duration": "持续",
      "alerts.clearedAt": "解除",
      "alerts.ack": "确认",
      "alerts.acking": "正在确认…",
      "alerts.ackedBy": "已确认：{by} 于 {time}",
      "alerts.ackFailed": "确认失败，请重试",
      "alerts.ackNotFound": "该告警已不存在",
      "alerts.historical": "补传数据",
      "alerts.historicalNote": "补传数据：设备恢复连接后补报的记录，不发出提示音。",
      "alerts.details": "规则依据",
      "alerts.rule": "规则",
      "alerts.threshold": "阈值",
      "alerts.source": "依据",
      "alerts.evidence": "证据",
      "alerts.new": "新告警",
      "alerts.more": "另有 {n} 条",
      "alerts.card": "告警",
      "alerts.severityLabel": "级别",
      "severity.critical": "紧急",
      "severity.high": "高",
      "severity.medium": "中",
      "severity.low": "低",
      "alertState.active": "未确认",
      "alertState.acknowledged": "已确认",
      "alertState.cleared": "已解除",
      "patrols.title": "今日巡查",
      "patrols.loading": "正在加载巡查…",
      "patrols.loadFailed": "巡查数据加载失败，稍后自动重试",
      "patrols.none": "今日无定时巡查",
      "patrols.notWorkingDay": "今日非工作日，无定时巡查",
      "patrols.pending": "待确认 {n} 条",
      "round.done": "已巡查",
      "round.missing": "未巡查",
      "round.upcoming": "未到时间",
      "round.at": "计划",
      "round.started": "开始",
      "round.unscheduled": "非定时",
      "round.kind.hall": "大厅巡查",
      "round.kind.cctv": "监控巡查",
      "round.findings": "发现问题 {n} 条",
      "round.findingsPending": "发现问题 {n} 条，待确认 {p} 条",
      "round.noFindings": "未发现问题",
      "round.loadingFindings": "正在加载…",
      "round.findingsFailed": "发现的问题加载失败",
      "finding.confirm": "确认",
      "finding.dismiss": "驳回",
      "finding.reason": "驳回理由",
      "finding.submitDismiss": "提交驳回",
      "finding.cancel": "取消",
      "finding.working": "正在提交…",
      "finding.forbidden": "您的角色无权处理巡查问题",
      "finding.needReason": "请填写驳回理由。",
      "finding.failed": "操作失败，请重试",
      "finding.notFound": "该问题已不存在",
      "finding.since": "{t} 起",
      "finding.ongoing": "巡查时仍在持续",
      "finding.historical": "补传",
      "finding.confirmed": "已确认：{what}",
      "finding.dismissed": "已驳回：{what}",
      "finding.error": "未能处理 {what}：{msg}",
      "fstatus.draft": "待确认",
      "fstatus.confirmed": "已确认",
      "fstatus.dismissed": "已排除",
      "fstatus.disputed": "异议核实中",
      "fstatus.upheld": "异议不成立",
      "fstatus.overturned": "异议成立，已撤销",
      "fstatus.rectified": "已整改",
      "unit.s": "{n} 秒",
      "unit.min": "{n} 分钟",
      "unit.h": "{n} 小时",
      "lang.switchLabel": "Switch to English",
      "lang.switchText": "English",
      "auth.title": "登录",
      "auth.intro": "请使用督查科分配的账号登录。",
      "auth.username": "用户名",
      "auth.password": "密码",
      "auth.submit": "登录",
      "auth.working": "正在登录…",
      "auth.failed": "用户名或密码错误，或账号已停用",
      "auth.limited": "登录失败次数过多，请 15 分钟后再试",
      "auth.expired": "登录已过期，请重新登录",
      "auth.unavailable": "无法连接服务器，请稍后重试",
      "auth.logout": "退出登录",
      "auth.user": "当前用户",
      "sep": "，",
      "colon": "："
    },
    en: {
      "app.title": "Live window monitoring",
      "app.subtitle": "Live window monitoring",
      "hall.default": "Service hall",
      "conn.connecting": "Connecting…",
      "conn.online": "Live",
      "conn.offline": "Disconnected",
      "banner.disconnected": "Live connection lost, reconnecting…",
      "summary.title": "Window summary",
      "summary.total": "Windows",
      "windows.title": "Service windows",
      "windows.loading": "Loading windows…",
      "windows.empty": "No windows",
      "state.staffed": "Staffed",
      "state.paused": "Paused",
      "state.vacant": "Vacant",
      "state.unknown": "Unknown (device offline)",
      "state.closed": "Closed (not in service hours)",
      "card.occupant": "Clerk",
      "card.pauseReason": "Reason",
      "card.duration": "For",
      "card.camera": "Camera",
      "card.noCamera": "not configured",
      "card.durationUnknown": "—",
      "stats.title": "Ingest",
      "stats.accepted": "Accepted",
      "stats.duplicates": "Duplicates",
      "stats.rejected": "Rejected",
      "stats.historical": "Backfilled",
      "today.title": "Today's attendance and ratings",
      "today.punched": "Punched/due",
      "today.late": "Late",
      "today.rated": "Ratings",
      "today.satisfaction": "Satisfied",
      "today.bad": "Bad ratings",
      "today.failed": "Could not load today's attendance and ratings",
      "devices.title": "Devices",
      "devices.empty": "No devices",
      "devices.windows": "Windows",
      "devices.lastSeen": "Last seen",
      "devices.never": "never seen",
      "devices.boot": "boot #",
      "devices.fault": "Fault",
      "kind.face_terminal": "Face terminal",
      "kind.window_camera": "Window camera",
      "kind.evaluator": "Evaluator",
      "kind.pause_button": "Pause button",
      "kind.queue_gateway": "Queue system gateway",
      "status.online": "Online",
      "status.offline": "Offline",
      "status.stale": "Stale",
      "status.never_seen": "Never seen",
      "events.title": "Recent events",
      "events.empty": "No events yet",
      "events.historical": "Backfill",
      "events.device": "Device",
      "type.punch": "Punch",
      "type.seat": "Seat",
      "type.seat_heartbeat": "Seat heartbeat",
      "type.rating": "Rating",
      "type.pause": "Pause/resume",
      "type.clerk_login": "Evaluator login",
      "type.ack": "Ack",
      "alerts.title": "Alerts",
      "alerts.loading": "Loading alerts…",
      "alerts.none": "No open alerts",
      "alerts.mute": "Mute",
      "alerts.soundHint": "Click the page to enable alert sound",
      "alerts.soundUnsupported": "This browser cannot play alert sounds",
      "alerts.ackForbidden": "Your role may not acknowledge alerts",
      "alerts.cleared": "Recently cleared",
      "alerts.clearedEmpty": "No cleared alerts",
      "alerts.since": "Since",
      "alerts.duration": "For",
      "alerts.clearedAt": "Cleared",
      "alerts.ack": "Acknowledge",
      "alerts.acking": "Acknowledging…",
      "alerts.ackedBy": "Acknowledged by {by} at {time}",
      "alerts.ackFailed": "Acknowledge failed, please retry",
      "alerts.ackNotFound": "This alert no longer exists",
      "alerts.historical": "Backfilled data",
      "alerts.historicalNote": "Backfilled data: reported late after a device reconnected; never sounds.",
      "alerts.details": "Rule and source",
      "alerts.rule": "Rule",
      "alerts.threshold": "Threshold",
      "alerts.source": "Source",
      "alerts.evidence": "Evidence",
      "alerts.new": "New alert",
      "alerts.more": "{n} more",
      "alerts.card": "Alert",
      "alerts.severityLabel": "Severity",
      "severity.critical": "Critical",
      "severity.high": "High",
      "severity.medium": "Medium",
      "severity.low": "Low",
      "alertState.active": "Unacknowledged",
      "alertState.acknowledged": "Acknowledged",
      "alertState.cleared": "Cleared",
      "patrols.title": "Today's patrols",
      "patrols.loading": "Loading patrols…",
      "patrols.loadFailed": "Could not load patrols; retrying shortly",
      "patrols.none": "No scheduled patrols today",
      "patrols.notWorkingDay": "Not a working day: no scheduled patrols",
      "patrols.pending": "{n} to confirm",
      "round.done": "Done",
      "round.missing": "Missed",
      "round.upcoming": "Not yet due",
      "round.at": "Due",
      "round.started": "Started",
      "round.unscheduled": "unscheduled",
      "round.kind.hall": "Hall patrol",
      "round.kind.cctv": "CCTV patrol",
      "round.findings": "{n} findings",
      "round.findingsPending": "{n} findings, {p} to confirm",
      "round.noFindings": "No findings",
      "round.loadingFindings": "Loading…",
      "round.findingsFailed": "Could not load the findings",
      "finding.confirm": "Confirm",
      "finding.dismiss": "Dismiss",
      "finding.reason": "Reason for dismissal",
      "finding.submitDismiss": "Dismiss finding",
      "finding.cancel": "Cancel",
      "finding.working": "Saving…",
      "finding.forbidden": "Your role may not act on patrol findings",
      "finding.needReason": "Enter a reason for the dismissal.",
      "finding.failed": "Failed, please retry",
      "finding.notFound": "This finding no longer exists",
      "finding.since": "since {t}",
      "finding.ongoing": "still going on at the patrol",
      "finding.historical": "Backfilled",
      "finding.confirmed": "Confirmed: {what}",
      "finding.dismissed": "Dismissed: {what}",
      "finding.error": "Could not update {what}: {msg}",
      "fstatus.draft": "Draft",
      "fstatus.confirmed": "Confirmed",
      "fstatus.dismissed": "Dismissed",
      "fstatus.disputed": "Disputed (re-check)",
      "fstatus.upheld": "Dispute rejected",
      "fstatus.overturned": "Dispute upheld, withdrawn",
      "fstatus.rectified": "Rectified",
      "cat.vacant": "Vacant window",
      "cat.away": "Away too long",
      "cat.unregistered_substitute": "Unregistered substitute",
      "cat.evaluator": "Evaluator not used / wrong clerk",
      "cat.phone": "Phone or games at the counter",
      "cat.chatting": "Chatting, visiting other windows",
      "cat.eating": "Eating at the counter",
      "cat.sleeping": "Sleeping at the counter",
      "cat.no_badge": "Badge not worn",
      "cat.other": "Other",
      "unit.s": "{n} s",
      "unit.min": "{n} min",
      "unit.h": "{n} h",
      "lang.switchLabel": "切换到中文",
      "lang.switchText": "中文",
      "auth.title": "Log in",
      "auth.intro": "Log in with the account the supervision office gave you.",
      "auth.username": "User name",
      "auth.password": "Password",
      "auth.submit": "Log in",
      "auth.working": "Logging in…",
      "auth.failed": "Wrong user name or password, or the account is disabled",
      "auth.limited": "Too many failed logins: try again in 15 minutes",
      "auth.expired": "Your session has ended: please log in again",
      "auth.unavailable": "The server cannot be reached: try again later",
      "auth.logout": "Log out",
      "auth.user": "Logged in as",
      "sep": ", ",
      "colon": ": "
    }
  };

  var lang = "zh";
  var me = null;                // the logged-in user (GET /api/session)

  function t(key) {
    var d = I18N[lang];
    if (Object.prototype.hasOwnProperty.call(d, key)) return d[key];
    if (Object.prototype.hasOwnProperty.call(I18N.zh, key)) return I18N.zh[key];
    return key;
  }

  // t() with {name} placeholders filled from vars.
  function tf(key, vars) {
    return t(key).replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(vars, k) ? String(vars[k]) : m;
    });
  }

  // Label lookups that fall back to the raw server value for unknown codes.
  function labelOr(prefix, code) {
    var key = prefix + "." + code;
    return Object.prototype.hasOwnProperty.call(I18N.zh, key) ? t(key) : String(code);
  }

  // ---------------------------------------------------------------- state
  var hall = { id: null, name: null, timezone: DEFAULT_TZ };
  var windowOrder = [];          // window ids in server order
  var windows = {};              // id -> window
  var devices = {};              // id -> device
  var events = [];               // newest first
  var stats = null;
  var loaded = false;
  var alerts = {};               // id -> alert (open ones and the last CLEARED_KEEP cleared)
  var alertsLoaded = false;
  var alertFetchGen = 0;
  var wsTouchedAlert = {};       // id -> alertFetchGen at which the push arrived
  var announced = {};            // id -> true once a live active alert was sounded/shown
  var pendingAck = {};           // id -> true while the POST is in flight
  var ackErrors = {};            // id -> i18n key of the last ack failure
  var openRuleDetails = {};      // id -> true when its <details> is open

  var connState = "connecting";  // connecting | online | offline
  var socket = null;
  var retryDelay = 1000;
  var retryTimer = null;

  // Guard against a slow refetch overwriting newer websocket pushes.
  var fetchGen = 0;
  var wsTouchedWindow = {};     // id -> fetchGen at which the push arrived
  var wsTouchedDevice = {};
  var wsEventsDuringFetch = [];
  var statsTouchedGen = -1;

  // ---------------------------------------------------------------- DOM helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // ---------------------------------------------------------------- time
  var fmtCache = {};

  function formatter(tz) {
    if (fmtCache[tz]) return fmtCache[tz];
    var f = null;
    try {
      f = new Intl.DateTimeFormat("en-GB", {
        timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short"
      });
    } catch (e) {
      f = null;
    }
    fmtCache[tz] = f;
    return f;
  }

  // Returns {y, mo, d, h, mi, s, wd(0-6)} for a Date in the hall time zone.
  function partsInTz(date) {
    var f = formatter(hall.timezone || DEFAULT_TZ) || formatter(DEFAULT_TZ);
    if (f && f.formatToParts) {
      var p = {};
      f.formatToParts(date).forEach(function (x) { p[x.type] = x.value; });
      var wdMap = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
      return {
        y: p.year, mo: p.month, d: p.day,
        h: p.hour === "24" ? "00" : p.hour, mi: p.minute, s: p.second,
        wd: wdMap[p.weekday]
      };
    }
    // Fallback: fixed UTC+8 (China has no DST).
    var s = new Date(date.getTime() + 8 * 3600 * 1000);
    return {
      y: String(s.getUTCFullYear()), mo: pad2(s.getUTCMonth() + 1), d: pad2(s.getUTCDate()),
      h: pad2(s.getUTCHours()), mi: pad2(s.getUTCMinutes()), s: pad2(s.getUTCSeconds()),
      wd: s.getUTCDay()
    };
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  // The hall's clock as the server keeps it (/api/hall "clock"): the wall
  // clock in production, the simulator's faster clock in the demo, so that
  // "time in state" and the header agree with the events' times.
  var hallClock = { at: null, wallAt: 0, speed: 1 };

  function hallNow() {
    if (hallClock.at === null) return new Date();
    return new Date(hallClock.at + (Date.now() - hallClock.wallAt) * hallClock.speed);
  }

  var WEEKDAYS = {
    zh: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    en: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
  };

  function parseTime(iso) {
    if (!iso) return null;
    var ms = Date.parse(iso);
    return isNaN(ms) ? null : new Date(ms);
  }

  // "HH:mm:ss" if today (hall time), otherwise "MM-DD HH:mm:ss".
  function shortTime(iso) {
    var d = parseTime(iso);
    if (!d) return "—";
    var p = partsInTz(d);
    var now = partsInTz(hallNow());
    var hms = p.h + ":" + p.mi + ":" + p.s;
    if (p.y === now.y && p.mo === now.mo && p.d === now.d) return hms;
    if (p.y === now.y) return p.mo + "-" + p.d + " " + hms;
    return p.y + "-" + p.mo + "-" + p.d + " " + hms;
  }

  // mm:ss below one hour, h:mm:ss above.
  function formatDuration(ms) {
    if (ms < 0) ms = 0;
    var total = Math.floor(ms / 1000);
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    if (h > 0) return h + ":" + pad2(m) + ":" + pad2(s);
    return pad2(m) + ":" + pad2(s);
  }

  function durationText(w) {
    var since = parseTime(w.state_since);
    if (!since) return t("card.durationUnknown");
    return formatDuration(hallNow().getTime() - since.getTime());
  }

  function renderClock() {
    var p = partsInTz(hallNow());
    $("clock").textContent = p.y + "-" + p.mo + "-" + p.d + " " +
      (WEEKDAYS[lang][p.wd] || "") + " " + p.h + ":" + p.mi + ":" + p.s;
  }

  // ---------------------------------------------------------------- language
  function applyStaticLabels() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    var nodes = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = t(nodes[i].getAttribute("data-i18n"));
    }
    var btn = $("lang-toggle");
    btn.textContent = t("lang.switchText");
    btn.setAttribute("aria-label", t("lang.switchLabel"));
    btn.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
    renderHallName();
    renderUser();
  }

  function setLang(next) {
    lang = next === "en" ? "en" : "zh";
    try { window.localStorage.setItem("hallwatch.lang", lang); } catch (e) { /* ignore */ }
    applyStaticLabels();
    renderAll();
  }

  function initialLang() {
    var m = /[?&]lang=(zh|en)\b/.exec(window.location.search);
    if (m) return m[1];
    try {
      var saved = window.localStorage.getItem("hallwatch.lang");
      if (saved === "en" || saved === "zh") return saved;
    } catch (e) { /* ignore */ }
    return "zh";
  }

  // ---------------------------------------------------------------- rendering
  function renderHallName() {
    var name = hall.name || t("hall.default");
    $("hall-name").textContent = name;
    document.title = name + " · " + t("app.title");
  }

  function normState(s) {
    return STATES.indexOf(s) >= 0 ? s : "unknown";
  }

  function renderConn() {
    var node = $("conn");
    node.className = "conn conn-" + connState;
    var icon = { connecting: "…", online: "●", offline: "✕" }[connState];
    node.querySelector(".conn-icon").textContent = icon;
    var text = node.querySelector(".conn-text");
    text.setAttribute("data-i18n", "conn." + connState);
    text.textContent = t("conn." + connState);
    $("banner").hidden = connState !== "offline";
  }

  function renderSummary() {
    var counts = { staffed: 0, paused: 0, vacant: 0, unknown: 0, closed: 0 };
    windowOrder.forEach(function (id) { counts[normState(windows[id].state)]++; });
    var list = $("summary");
    clear(list);
    STATES.forEach(function (s) {
      var li = el("li", "summary-item state-" + s);
      li.setAttribute("data-state", s);
      var icon = el("span", "state-icon", STATE_ICONS[s]);
      icon.setAttribute("aria-hidden", "true");
      li.appendChild(icon);
      li.appendChild(el("span", "summary-label", t("state." + s)));
      li.appendChild(el("span", "summary-count", counts[s]));
      list.appendChild(li);
    });
    var total = el("li", "summary-item summary-total");
    total.appendChild(el("span", "summary-label", t("summary.total")));
    total.appendChild(el("span", "summary-count", windowOrder.length));
    list.appendChild(total);
  }

  function cameraText(w) {
    if (!w.camera_device) return t("card.camera") + t("colon") + t("card.noCamera");
    var status = w.camera_status || "never_seen";
    return t("card.camera") + " " + w.camera_device + t("colon") + labelOr("status", status);
  }

  function windowAriaLabel(w) {
    var s = normState(w.state);
    var parts = [w.name || w.id];
    if (w.department) parts.push(w.department);
    parts.push(t("state." + s));
    if (w.occupant) parts.push(t("card.occupant") + " " + w.occupant);
    if (w.pause_reason) parts.push(t("card.pauseReason") + " " + w.pause_reason);
    parts.push(t("card.duration") + " " + durationText(w));
    parts.push(cameraText(w));
    var open = openAlertsFor(w.id);
    if (open.length) parts.push(t("alerts.card") + " " + cardAlertText(open));
    return parts.join(t("sep"));
  }

  // "空岗 03:12" (+ "另有 1 条") for the most urgent open alert of a window.
  function cardAlertText(open) {
    var a = open[0];
    var text = alertName(a) + " " + alertDurationText(a);
    if (a.state === "acknowledged") text += " · " + t("alertState.acknowledged");
    if (open.length > 1) text += " · " + tf("alerts.more", { n: open.length - 1 });
    return text;
  }

  function buildCard(w) {
    var s = normState(w.state);
    var li = el("li", "card state-" + s);
    li.tabIndex = 0;
    li.setAttribute("data-window-id", w.id);
    li.setAttribute("data-state", s);

    var head = el("div", "card-head");
    head.appendChild(el("h3", "card-name", w.name || w.id));
    if (w.department) head.appendChild(el("span", "card-dept", w.department));
    li.appendChild(head);

    var open = openAlertsFor(w.id);
    if (open.length) {
      var top = open[0];
      li.setAttribute("data-alert", top.type);
      li.className += " has-alert alert-" + top.state + " sev-" + severityOf(top);
      var al = el("div", "card-alert");
      var ai = el("span", "card-alert-icon", "⚠");
      ai.setAttribute("aria-hidden", "true");
      al.appendChild(ai);
      al.appendChild(el("span", "card-alert-text", cardAlertText(open)));
      li.appendChild(al);
    }

    var stateRow = el("div", "card-state");
    var icon = el("span", "state-icon", STATE_ICONS[s]);
    icon.setAttribute("aria-hidden", "true");
    stateRow.appendChild(icon);
    stateRow.appendChild(el("span", "state-label", t("state." + s)));
    var dur = el("span", "card-duration");
    dur.appendChild(el("span", "card-duration-label", t("card.duration")));
    dur.appendChild(el("span", "card-duration-value", durationText(w)));
    stateRow.appendChild(dur);
    li.appendChild(stateRow);

    if (w.occupant) {
      var occ = el("div", "card-line card-occupant");
      occ.appendChild(el("span", "card-key", t("card.occupant") + t("colon")));
      occ.appendChild(el("span", "card-val", w.occupant));
      li.appendChild(occ);
    }
    if (w.pause_reason) {
      var pr = el("div", "card-line card-pause");
      pr.appendChild(el("span", "card-key", t("card.pauseReason") + t("colon")));
      pr.appendChild(el("span", "card-val", w.pause_reason));
      li.appendChild(pr);
    }

    var camStatus = w.camera_device ? (w.camera_status || "never_seen") : "none";
    var cam = el("div", "card-line card-camera cam-" + camStatus);
    var camIcon = el("span", "cam-icon", w.camera_device ? (DEVICE_STATUS_ICONS[camStatus] || "?") : "–");
    camIcon.setAttribute("aria-hidden", "true");
    cam.appendChild(camIcon);
    cam.appendChild(el("span", null, cameraText(w)));
    li.appendChild(cam);

    li.setAttribute("aria-label", windowAriaLabel(w));
    return li;
  }

  function renderWindow(id) {
    var w = windows[id];
    var grid = $("window-grid");
    var old = grid.querySelector('[data-window-id="' + cssEscape(id) + '"]');
    var card = buildCard(w);
    if (old) {
      var hadFocus = document.activeElement === old;
      grid.replaceChild(card, old);
      if (hadFocus) card.focus();
    } else {
      grid.appendChild(card);
    }
  }

  function renderWindows() {
    var grid = $("window-grid");
    var focusedId = document.activeElement && document.activeElement.getAttribute &&
      document.activeElement.getAttribute("data-window-id");
    clear(grid);
    windowOrder.forEach(function (id) { grid.appendChild(buildCard(windows[id])); });
    if (focusedId) {
      var again = grid.querySelector('[data-window-id="' + cssEscape(focusedId) + '"]');
      if (again) again.focus();
    }
    var empty = $("windows-empty");
    empty.hidden = windowOrder.length > 0;
    empty.setAttribute("data-i18n", loaded ? "windows.empty" : "windows.loading");
    empty.textContent = t(loaded ? "windows.empty" : "windows.loading");
  }

  function cssEscape(s) {
    if (window.CSS && window.CSS.escape) return window.CSS.escape(s);
    return String(s).replace(/["\\]/g, "\\$&");
  }

  function tickDurations() {
    var cards = $("window-grid").children;
    for (var i = 0; i < cards.length; i++) {
      var w = windows[cards[i].getAttribute("data-window-id")];
      if (!w) continue;
      var v = cards[i].querySelector(".card-duration-value");
      if (v) v.textContent = durationText(w);
      var at = cards[i].querySelector(".card-alert-text");
      if (at) {
        var open = openAlertsFor(w.id);
        if (open.length) at.textContent = cardAlertText(open);
      }
      cards[i].setAttribute("aria-label", windowAriaLabel(w));
    }
  }

  function windowName(id) {
    return windows[id] ? (windows[id].name || id) : id;
  }

  function renderDevices() {
    var list = $("device-list");
    clear(list);
    var ids = Object.keys(devices);
    ids.sort(function (a, b) {
      var oa = DEVICE_STATUS_ORDER[devices[a].status];
      var ob = DEVICE_STATUS_ORDER[devices[b].status];
      if (oa === undefined) oa = 0;
      if (ob === undefined) ob = 0;
      if (oa !== ob) return oa - ob;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    ids.forEach(function (id) {
      var d = devices[id];
      var status = d.status || "never_seen";
      var li = el("li", "device status-" + status);
      li.setAttribute("data-device-id", d.id);
      li.setAttribute("data-status", status);

      var main = el("div", "device-main");
      main.appendChild(el("span", "device-id", d.id));
      main.appendChild(el("span", "device-kind", labelOr("kind", d.kind)));
      var st = el("span", "device-status");
      var icon = el("span", "status-icon", DEVICE_STATUS_ICONS[status] || "?");
      icon.setAttribute("aria-hidden", "true");
      st.appendChild(icon);
      st.appendChild(el("span", null, labelOr("status", status)));
      main.appendChild(st);
      li.appendChild(main);

      var meta = [];
      if (d.windows && d.windows.length) {
        meta.push(t("devices.windows") + t("colon") + d.windows.map(windowName).join(lang === "zh" ? "、" : ", "));
      }
      meta.push(d.last_seen ? t("devices.lastSeen") + " " + shortTime(d.last_seen) : t("devices.never"));
      if (d.boot !== null && d.boot !== undefined) meta.push(t("devices.boot") + d.boot);
      li.appendChild(el("div", "device-meta", meta.join(" · ")));
      if (d.reason && status !== "online") {
        li.appendChild(el("div", "device-fault", t("devices.fault") + t("colon") + d.reason));
      }
      list.appendChild(li);
    });
    $("devices-empty").hidden = ids.length > 0;
  }

  function buildEvent(ev) {
    var li = el("li", "event" + (ev.historical ? " event-historical" : ""));
    li.setAttribute("data-msg-id", ev.msg_id);
    li.setAttribute("data-type", ev.type);
    var head = el("div", "event-head");
    head.appendChild(el("time", "event-time", shortTime(ev.event_time)));
    head.appendChild(el("span", "event-type type-" + String(ev.type).replace(/[^a-z0-9_-]/gi, ""),
      labelOr("type", ev.type)));
    if (ev.window_id) head.appendChild(el("span", "event-window", windowName(ev.window_id)));
    if (ev.historical) head.appendChild(el("span", "badge-historical", t("events.historical")));
    li.appendChild(head);
    if (ev.summary) li.appendChild(el("div", "event-summary", ev.summary));
    li.appendChild(el("div", "event-device", t("events.device") + " " + ev.device_id));
    return li;
  }

  function renderEvents() {
    var list = $("event-list");
    clear(list);
    events.forEach(function (ev) { list.appendChild(buildEvent(ev)); });
    $("events-empty").hidden = events.length > 0;
  }

  function renderStats() {
    ["accepted", "duplicates", "rejected", "historical"].forEach(function (k) {
      var v = stats && typeof stats[k] === "number" ? stats[k] : null;
      $("stat-" + k).textContent = v === null ? "–" : v.toLocaleString("en-US");
    });
  }

  // ---------------------------------------------------------------- today (今日考勤与评价)
  var TODAY_REFRESH_MS = 60000;
  var today = null;   // {day, punched, expected, late, rated, satisfaction_rate, bad} once loaded

  function refreshToday() {
    var day = hallDay();
    if (!day || !me) return;
    Promise.all([
      getJSON(HALL + "/api/attendance/today").catch(function () { return null; }),
      getJSON(HALL + "/api/ratings/stats?by=window&period=day&from=" + day + "&to=" + day).catch(function () { return null; })
    ]).then(function (r) {
      var att = r[0] ? r[0].summary : null;  // 应到/已到/迟到 as the server holds them (its today)
      var totals = r[1] && r[1].totals ? r[1].totals : null;
      today = {
        day: day,
        failed: !att || !totals,
        punched: att ? att.arrived : null,
        expected: att ? att.expected : null,
        late: att ? att.late : null,
        rated: totals ? totals.rated : null,
        satisfaction_rate: totals ? totals.satisfaction_rate : null,
        bad: totals ? totals.bad : null
      };
      renderToday();
    });
  }

  function renderToday() {
    var panel = $("today");
    if (!panel) return;
    var dash = "–";
    var num = function (v) { return typeof v === "number" ? String(v) : dash; };
    panel.setAttribute("data-day", today ? today.day : "");
    $("today-punched").textContent = today && typeof today.punched === "number" ? today.punched + "/" + today.expected : dash;
    $("today-late").textContent = today ? num(today.late) : dash;
    $("today-rated").textContent = today ? num(today.rated) : dash;
    $("today-satisfaction").textContent = today && typeof today.satisfaction_rate === "number" ? (Math.round(today.satisfaction_rate * 1000) / 10) + "%" : dash;
    $("today-bad").textContent = today ? num(today.bad) : dash;
    var err = $("today-error");
    err.hidden = !(today && today.failed);
    err.textContent = today && today.failed ? t("today.failed") : "";
  }

  // ---------------------------------------------------------------- alerts
  function severityOf(a) {
    return Object.prototype.hasOwnProperty.call(SEVERITY_RANK, a.severity) ? a.severity : "high";
  }

  function alertStateOf(a) {
    return Object.prototype.hasOwnProperty.call(ALERT_STATE_RANK, a.state) ? a.state : "active";
  }

  function alertName(a) {
    var name = lang === "en" ? (a.name_en || a.name_zh) : (a.name_zh || a.name_en);
    return name || String(a.type);
  }

  function alertWindowName(a) {
    return a.window_name || (a.window_id ? windowName(a.window_id) : "—");
  }

  function timeOf(iso) {
    var d = parseTime(iso);
    return d ? d.getTime() : 0;
  }

  // How long the condition lasted: until now while open, until cleared_at once cleared.
  function alertDurationText(a) {
    var since = parseTime(a.condition_since);
    if (!since) return t("card.durationUnknown");
    var end = a.state === "cleared" && parseTime(a.cleared_at) ? parseTime(a.cleared_at) : hallNow();
    return formatDuration(end.getTime() - since.getTime());
  }

  // "HH:MM" (hall time), with the date in front when not today.
  function shortHM(iso) {
    var d = parseTime(iso);
    if (!d) return "—";
    var p = partsInTz(d);
    var now = partsInTz(hallNow());
    var hm = p.h + ":" + p.mi;
    if (p.y === now.y && p.mo === now.mo && p.d === now.d) return hm;
    return p.mo + "-" + p.d + " " + hm;
  }

  function thresholdText(sec) {
    if (typeof sec !== "number" || !isFinite(sec)) return "—";
    if (sec >= 3600 && sec % 3600 === 0) return tf("unit.h", { n: sec / 3600 });
    if (sec >= 60 && sec % 60 === 0) return tf("unit.min", { n: sec / 60 });
    return tf("unit.s", { n: sec });
  }

  // Severity first (critical on top), then newest raised first.
  function compareAlerts(a, b) {
    var sa = SEVERITY_RANK[severityOf(a)], sb = SEVERITY_RANK[severityOf(b)];
    if (sa !== sb) return sa - sb;
    var ta = timeOf(a.raised_at) || timeOf(a.condition_since);
    var tb = timeOf(b.raised_at) || timeOf(b.condition_since);
    if (ta !== tb) return tb - ta;
    return b.id - a.id;
  }

  function openAlerts() {
    var list = [];
    Object.keys(alerts).forEach(function (id) {
      if (alertStateOf(alerts[id]) !== "cleared") list.push(alerts[id]);
    });
    return list.sort(compareAlerts);
  }

  function clearedAlerts() {
    var list = [];
    Object.keys(alerts).forEach(function (id) {
      if (alertStateOf(alerts[id]) === "cleared") list.push(alerts[id]);
    });
    list.sort(function (a, b) {
      var d = timeOf(b.cleared_at) - timeOf(a.cleared_at);
      return d !== 0 ? d : b.id - a.id;
    });
    return list;
  }

  function openAlertsFor(windowId) {
    return openAlerts().filter(function (a) { return a.window_id === windowId; });
  }

  function isLiveUnacked(a) {
    return a.live === true && alertStateOf(a) === "active";
  }

  // Keep every open alert and only the newest CLEARED_KEEP cleared ones.
  function pruneCleared() {
    clearedAlerts().slice(CLEARED_KEEP).forEach(function (a) {
      delete alerts[a.id];
      delete openRuleDetails[a.id];
      delete ackErrors[a.id];
    });
  }

  function buildSeverity(a) {
    var sev = severityOf(a);
    var node = el("span", "alert-sev sev-" + sev);
    var icon = el("span", "sev-icon", SEVERITY_ICONS[sev]);
    icon.setAttribute("aria-hidden", "true");
    node.appendChild(icon);
    node.appendChild(el("span", "visually-hidden", t("alerts.severityLabel") + t("colon")));
    node.appendChild(el("span", "sev-text", t("severity." + sev)));
    return node;
  }

  function buildAlertState(a) {
    var st = alertStateOf(a);
    var node = el("span", "alert-state astate-" + st);
    var icon = el("span", "astate-icon", ALERT_STATE_ICONS[st]);
    icon.setAttribute("aria-hidden", "true");
    node.appendChild(icon);
    node.appendChild(el("span", null, t("alertState." + st)));
    return node;
  }

  function buildAlert(a) {
    var st = alertStateOf(a);
    var sev = severityOf(a);
    var li = el("li", "alert sev-" + sev + " astate-" + st + (a.live === false ? " alert-historical" : ""));
    li.tabIndex = -1;
    li.setAttribute("data-alert-id", String(a.id));
    li.setAttribute("data-alert-state", st);
    li.setAttribute("data-alert-type", String(a.type));
    li.setAttribute("data-severity", sev);
    li.setAttribute("data-live", a.live === false ? "false" : "true");

    var head = el("div", "alert-head");
    head.appendChild(buildSeverity(a));
    var title = el("h3", "alert-title");
    title.id = "alert-title-" + a.id;
    title.appendChild(el("span", "alert-window", alertWindowName(a)));
    title.appendChild(el("span", "alert-name", alertName(a)));
    head.appendChild(title);
    head.appendChild(buildAlertState(a));
    li.appendChild(head);
    li.setAttribute("aria-labelledby", title.id);

    if (a.live === false) {
      var hist = el("div", "alert-historical-note");
      hist.appendChild(el("span", "badge-historical", t("alerts.historical")));
      hist.appendChild(el("span", "alert-historical-text", t("alerts.historicalNote")));
      li.appendChild(hist);
    }

    var times = el("div", "alert-times");
    var since = el("span", "alert-since");
    since.appendChild(el("span", "alert-key", t("alerts.since") + " "));
    since.appendChild(el("time", "alert-since-value", shortTime(a.condition_since)));
    times.appendChild(since);
    if (st === "cleared") {
      var cl = el("span", "alert-cleared-at");
      cl.appendChild(el("span", "alert-key", t("alerts.clearedAt") + " "));
      cl.appendChild(el("time", null, shortTime(a.cleared_at)));
      times.appendChild(cl);
    }
    var dur = el("span", "alert-duration");
    dur.appendChild(el("span", "alert-key", t("alerts.duration") + " "));
    dur.appendChild(el("span", "alert-duration-value", alertDurationText(a)));
    times.appendChild(dur);
    li.appendChild(times);

    var factKeys = a.facts && typeof a.facts === "object" ? Object.keys(a.facts) : [];
    if (factKeys.length) {
      var dl = el("dl", "alert-facts");
      factKeys.forEach(function (k) {
        var row = el("div", "alert-fact");
        row.appendChild(el("dt", null, k + t("colon")));
        var v = a.facts[k];
        row.appendChild(el("dd", null, v === null || v === undefined ? "—" :
          (typeof v === "object" ? JSON.stringify(v) : String(v))));
        dl.appendChild(row);
      });
      li.appendChild(dl);
    }

    var actions = el("div", "alert-actions");
    if (a.acknowledged_at || a.acknowledged_by) {
      var ack = el("span", "alert-acked");
      var ackIcon = el("span", "astate-icon", "✓");
      ackIcon.setAttribute("aria-hidden", "true");
      ack.appendChild(ackIcon);
      ack.appendChild(el("span", null, tf("alerts.ackedBy", {
        by: a.acknowledged_by || "—", time: shortHM(a.acknowledged_at)
      })));
      actions.appendChild(ack);
    } else if (st === "active" && can("alerts.ack")) {
      var btn = el("button", "ack-button", pendingAck[a.id] ? t("alerts.acking") : t("alerts.ack"));
      btn.type = "button";
      btn.setAttribute("aria-label", (pendingAck[a.id] ? t("alerts.acking") : t("alerts.ack")) +
        t("colon") + alertWindowName(a) + " " + alertName(a));
      if (pendingAck[a.id]) btn.setAttribute("aria-disabled", "true");
      actions.appendChild(btn);
    }
    if (ackErrors[a.id]) {
      var err = el("span", "alert-error", t(ackErrors[a.id]));
      err.setAttribute("role", "alert");
      actions.appendChild(err);
    }
    if (actions.firstChild) li.appendChild(actions);

    if (a.rule || a.source || a.evidence) {
      var det = el("details", "alert-rule");
      if (openRuleDetails[a.id]) det.open = true;
      det.appendChild(el("summary", null, t("alerts.details")));
      if (a.rule) {
        var r = el("p", "alert-rule-line");
        r.appendChild(el("span", "alert-key", t("alerts.rule") + t("colon")));
        r.appendChild(el("code", null, a.rule));
        if (typeof a.threshold_s === "number") {
          r.appendChild(el("span", null, t("sep") + t("alerts.threshold") + t("colon") + thresholdText(a.threshold_s)));
        }
        det.appendChild(r);
      }
      if (a.source) {
        var src = el("p", "alert-source");
        src.appendChild(el("span", "alert-key", t("alerts.source") + t("colon")));
        src.appendChild(el("span", "alert-source-text", a.source));
        det.appendChild(src);
      }
      if (a.evidence) {
        var ev = el("p", "alert-evidence");
        ev.appendChild(el("span", "alert-key", t("alerts.evidence") + t("colon")));
        ev.appendChild(el("span", null, a.evidence));
        det.appendChild(ev);
      }
      li.appendChild(det);
    }
    return li;
  }

  // Where focus was inside the alert panel, so a re-render can put it back.
  function alertFocus() {
    var a = document.activeElement;
    if (!a || !a.closest) return null;
    var row = a.closest(".alert[data-alert-id]");
    if (!row) return null;
    var what = "row";
    if (a.classList.contains("ack-button")) what = "ack";
    else if (a.tagName === "SUMMARY") what = "summary";
    return { id: row.getAttribute("data-alert-id"), what: what };
  }

  function restoreAlertFocus(f) {
    if (!f) return;
    var panel = $("alerts");
    var row = panel.querySelector('.alert[data-alert-id="' + cssEscape(f.id) + '"]');
    if (!row) return;
    var target = null;
    if (f.what === "ack") target = row.querySelector(".ack-button");
    else if (f.what === "summary") target = row.querySelector("summary");
    if (!target) target = row;
    if (row.closest("details.cleared") && !$("cleared").open) return;
    target.focus();
  }

  function renderAlerts() {
    var focus = alertFocus();
    var list = $("alert-list");
    clear(list);
    var open = openAlerts();
    open.forEach(function (a) { list.appendChild(buildAlert(a)); });
    $("alerts-count").textContent = String(open.length);
    $("alerts").setAttribute("data-open-count", String(open.length));
    $("alerts").classList.toggle("alerts-has-open", open.length > 0);
    $("alerts").classList.toggle("alerts-has-live", open.some(isLiveUnacked));
    var empty = $("alerts-empty");
    empty.hidden = open.length > 0;
    var emptyText = $("alerts-empty-text");
    emptyText.setAttribute("data-i18n", alertsLoaded ? "alerts.none" : "alerts.loading");
    emptyText.textContent = t(alertsLoaded ? "alerts.none" : "alerts.loading");

    var cleared = clearedAlerts().slice(0, CLEARED_KEEP);
    var cl = $("cleared-list");
    clear(cl);
    cleared.forEach(function (a) { cl.appendChild(buildAlert(a)); });
    $("cleared-count").textContent = String(cleared.length);
    $("cleared-empty").hidden = cleared.length > 0;
    restoreAlertFocus(focus);
  }

  function tickAlerts() {
    var rows = $("alert-list").children;
    for (var i = 0; i < rows.length; i++) {
      var a = alerts[rows[i].getAttribute("data-alert-id")];
      var v = a && rows[i].querySelector(".alert-duration-value");
      if (v) v.textContent = alertDurationText(a);
    }
    maybeRemind();
  }

  function rerenderWindowsOf(ids) {
    Object.keys(ids).forEach(function (id) {
      if (windows[id]) renderWindow(id);
    });
  }

  // ---------------------------------------------------------------- alert sound
  var audio = { ctx: null, unsupported: false };
  var muted = false;
  var lastBeepAt = Date.now();
  var beepCount = 0;

  function audioRunning() {
    return !!(audio.ctx && audio.ctx.state === "running");
  }

  function renderSoundHint() {
    var hint = $("sound-hint");
    hint.hidden = audioRunning() || muted;
    var key = audio.unsupported ? "alerts.soundUnsupported" : "alerts.soundHint";
    var text = $("sound-hint-text");
    text.setAttribute("data-i18n", key);
    text.textContent = t(key);
  }

  function ensureAudio() {
    if (audio.unsupported) return;
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) {
      audio.unsupported = true;
      renderSoundHint();
      return;
    }
    if (!audio.ctx) {
      try {
        audio.ctx = new AC();
      } catch (e) {
        audio.unsupported = true;
        renderSoundHint();
        return;
      }
      audio.ctx.onstatechange = renderSoundHint;
    }
    if (audio.ctx.state !== "running" && audio.ctx.resume) {
      var p = audio.ctx.resume();
      if (p && p.then) p.then(renderSoundHint, renderSoundHint);
    }
    renderSoundHint();
  }

  // Called from a user gesture: browsers only let an AudioContext start then.
  function unlockAudio() {
    if (!audioRunning()) ensureAudio();
  }

  // Two short tones (880 Hz then 660 Hz), about half a second in all.
  function beep() {
    if (muted || !audioRunning()) return false;
    var ctx = audio.ctx;
    var t0 = ctx.currentTime + 0.01;
    [[0, 880], [0.25, 660]].forEach(function (tone) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = tone[1];
      gain.gain.setValueAtTime(0.0001, t0 + tone[0]);
      gain.gain.exponentialRampToValueAtTime(0.35, t0 + tone[0] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + tone[0] + 0.2);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t0 + tone[0]);
      osc.stop(t0 + tone[0] + 0.22);
    });
    beepCount++;
    $("alerts").setAttribute("data-beeps", String(beepCount));
    return true;
  }

  // A new live alert: sound now and restart the reminder cycle.
  function soundNewAlert() {
    lastBeepAt = Date.now();
    beep();
  }

  function maybeRemind() {
    if (Date.now() - lastBeepAt < BEEP_REPEAT_MS) return;
    var any = false;
    Object.keys(alerts).forEach(function (id) { if (isLiveUnacked(alerts[id])) any = true; });
    if (!any) return;
    lastBeepAt = Date.now();
    beep();
  }

  function renderMute() {
    var btn = $("mute-toggle");
    btn.setAttribute("aria-pressed", muted ? "true" : "false");
    btn.querySelector(".mute-box").textContent = muted ? "☑" : "☐";
    btn.classList.toggle("is-muted", muted);
    renderSoundHint();
  }

  function setMuted(next) {
    muted = !!next;
    try { window.localStorage.setItem("hallwatch.mute", muted ? "1" : "0"); } catch (e) { /* ignore */ }
    renderMute();
  }

  function announce(a) {
    var live = $("alerts-live");
    live.textContent = "";
    live.textContent = t("alerts.new") + t("colon") + alertWindowName(a) + " " + alertName(a) +
      t("sep") + t("severity." + severityOf(a));
  }

  // ---------------------------------------------------------------- acknowledge
  function ackAlert(id) {
    if (pendingAck[id]) return;
    pendingAck[id] = true;
    delete ackErrors[id];
    renderAlerts();
    postJSON(HALL + "/api/alerts/" + encodeURIComponent(id) + "/ack", null).then(function (a) {
      delete pendingAck[id];
      if (a && a.id !== undefined) {
        upsertAlert(a);
      } else {
        renderAlerts();
      }
    }).catch(function (err) {
      delete pendingAck[id];
      ackErrors[id] = err && err.status === 404 ? "alerts.ackNotFound" :
        (err && err.status === 403 ? "alerts.ackForbidden" : "alerts.ackFailed");
      renderAlerts();
      if (err && err.status === 404) refetchAlerts();
      if (window.console) console.warn("HallWatch: acknowledge failed", err);
    });
  }

  // ---------------------------------------------------------------- alert data
  function upsertAlert(a, fromSocket) {
    if (!a || a.id === undefined || a.id === null) return;
    var prev = alerts[a.id];
    alerts[a.id] = a;
    if (alertStateOf(a) !== "active") delete ackErrors[a.id];
    if (isLiveUnacked(a) && !announced[a.id]) {
      announced[a.id] = true;
      if (fromSocket) {
        announce(a);
        soundNewAlert();
      }
    }
    pruneCleared();
    renderAlerts();
    var touched = {};
    touched[a.window_id] = true;
    if (prev && prev.window_id) touched[prev.window_id] = true;
    rerenderWindowsOf(touched);
  }

  // Merge the fetched lists (null: that request failed, keep what we have).
  function mergeAlerts(activeList, allList, gen) {
    var prevWindows = {};
    Object.keys(alerts).forEach(function (id) { prevWindows[alerts[id].window_id] = true; });
    var next = {};
    function take(a) {
      if (!a || a.id === undefined || a.id === null) return;
      var cur = next[a.id];
      if (!cur || ALERT_STATE_RANK[alertStateOf(a)] >= ALERT_STATE_RANK[alertStateOf(cur)]) next[a.id] = a;
    }
    (allList || []).forEach(take);
    (activeList || []).forEach(take);
    Object.keys(alerts).forEach(function (id) {
      var cur = alerts[id];
      var cleared = alertStateOf(cur) === "cleared";
      if (wsTouchedAlert[id] === gen) {
        next[id] = cur;                        // pushed while we were fetching: newer
      } else if (!next[id]) {
        if ((cleared && allList === null) || (!cleared && activeList === null)) next[id] = cur;
        else if (cleared) next[id] = cur;      // older cleared ones stay in the history
      }
    });
    var fresh = [];
    Object.keys(next).forEach(function (id) {
      var a = next[id];
      if (isLiveUnacked(a) && !announced[id]) {
        announced[id] = true;
        if (alertsLoaded) fresh.push(a);       // raised while we were disconnected
      }
      prevWindows[a.window_id] = true;
    });
    alerts = next;
    wsTouchedAlert = {};
    pruneCleared();
    alertsLoaded = true;
    renderAlerts();
    rerenderWindowsOf(prevWindows);
    if (fresh.length) {
      announce(fresh.sort(compareAlerts)[0]);
      soundNewAlert();
    }
  }

  function getJSONOrNull(url) {
    return getJSON(url).catch(function (err) {
      if (window.console) console.warn("HallWatch: alerts fetch failed", err);
      return null;
    });
  }

  function refetchAlerts() {
    alertFetchGen++;
    var gen = alertFetchGen;
    return Promise.all([
      getJSONOrNull(HALL + "/api/alerts?active=true&limit=100"),
      getJSONOrNull(HALL + "/api/alerts?limit=50")
    ]).then(function (r) {
      if (gen !== alertFetchGen) return;
      if (r[0] === null && r[1] === null) return;
      mergeAlerts(Array.isArray(r[0]) ? r[0] : null, Array.isArray(r[1]) ? r[1] : null, gen);
    });
  }

  // ---------------------------------------------------------------- patrols (巡查)
  // The day's scheduled rounds and the findings each round drafted from the alerts;
  // the officer on duty confirms or dismisses the drafts here.
  var PATROL_REFRESH_MS = 30000;
  var ROUND_STATE_ICONS = { done: "✓", missing: "✕", upcoming: "◷" };
  var FINDING_STATUS_ICONS = {
    draft: "?", confirmed: "!", dismissed: "–", disputed: "…", upheld: "!", overturned: "↺", rectified: "✓"
  };
  var HIDDEN_FACTS = { raised_at: true, live: true };

  var patrols = null;            // last GET /api/patrols answer
  var patrolRounds = {};         // round id -> GET /api/patrols/{id} answer (null: failed)
  var patrolsLoaded = false;
  var patrolsFailed = false;
  var patrolFetchGen = 0;
  var patrolTimer = null;        // refresh just after the next scheduled round's time
  var patrolRenderDeferred = false;
  var findingPending = {};       // finding id -> "confirm" | "dismiss" while the POST is in flight
  var findingErrors = {};        // finding id -> {key} (i18n) or {text} (server's reason)
  var dismissOpen = {};          // finding id -> reason typed so far (the inline form is open)
  var roundOpen = {};            // round id -> true/false once the user toggled its findings

  // "YYYY-MM-DD" of the hall clock (the demo runs on a simulated day).
  function hallDay() {
    if (hallClock.at === null) return null;
    var p = partsInTz(hallNow());
    return p.y + "-" + p.mo + "-" + p.d;
  }

  function categoryName(f) {
    if (lang === "en" && Object.prototype.hasOwnProperty.call(I18N.en, "cat." + f.category)) return t("cat." + f.category);
    return f.category_zh || String(f.category);
  }

  function findingStatusOf(f) {
    return typeof f.status === "string" && f.status ? f.status : "draft";
  }

  function findingStatusText(f) {
    var st = findingStatusOf(f);
    if (lang === "zh" && f.status_zh) return f.status_zh;
    return labelOr("fstatus", st);
  }

  function findingWhat(f) {
    return (f.window_name || f.window_id || "—") + " " + categoryName(f);
  }

  function minutesText(ms) {
    if (ms < 60000) return tf("unit.s", { n: Math.max(0, Math.round(ms / 1000)) });
    return tf("unit.min", { n: Math.round(ms / 60000) });
  }

  // "08:21–08:44（23 分钟）" or "09:15 起，巡查时仍在持续".
  function findingSpan(f) {
    var from = parseTime(f.observed_at);
    if (!from) return "—";
    var until = parseTime(f.observed_until);
    if (!until) return tf("finding.since", { t: shortHM(f.observed_at) }) + t("sep") + t("finding.ongoing");
    var a = partsInTz(from), b = partsInTz(until);
    var sameDay = a.y === b.y && a.mo === b.mo && a.d === b.d;
    var text = shortHM(f.observed_at) + "–" + (sameDay ? b.h + ":" + b.mi : shortHM(f.observed_until));
    return text + (lang === "zh" ? "（" : " (") + minutesText(until.getTime() - from.getTime()) + (lang === "zh" ? "）" : ")");
  }

  function findingFacts(f) {
    var facts = f.facts && typeof f.facts === "object" ? f.facts : {};
    return Object.keys(facts).filter(function (k) {
      return !HIDDEN_FACTS[k] && facts[k] !== null && facts[k] !== undefined && facts[k] !== "";
    }).map(function (k) {
      var v = facts[k];
      return k + "=" + (typeof v === "object" ? JSON.stringify(v) : String(v));
    });
  }

  // State of a scheduled round: done (a round exists), missing (its time has passed), upcoming.
  function scheduledState(s) {
    if (s.round_id !== null && s.round_id !== undefined) return "done";
    var at = parseTime(s.at);
    return at && at.getTime() <= hallNow().getTime() ? "missing" : "upcoming";
  }

  function roundFindings(id) {
    var view = patrolRounds[id];
    if (!view || !Array.isArray(view.checklist)) return null;
    var list = [];
    view.checklist.forEach(function (entry) {
      (entry && Array.isArray(entry.findings) ? entry.findings : []).forEach(function (f) {
        if (f && f.id !== undefined && f.id !== null) list.push(f);
      });
    });
    return list;
  }

  function allFindings() {
    var list = [];
    Object.keys(patrolRounds).forEach(function (id) { list = list.concat(roundFindings(id) || []); });
    return list;
  }

  function refreshPatrols() {
    patrolFetchGen++;
    var gen = patrolFetchGen;
    var day = hallDay();
    var url = HALL + "/api/patrols" + (day ? "?day=" + encodeURIComponent(day) : "");
    return getJSON(url).then(function (list) {
      if (gen !== patrolFetchGen) return null;
      var ids = [];
      (list && Array.isArray(list.rounds) ? list.rounds : []).forEach(function (r) {
        if (r && r.id !== undefined && r.id !== null) ids.push(r.id);
      });
      return Promise.all(ids.map(function (id) {
        return getJSON(HALL + "/api/patrols/" + encodeURIComponent(id)).catch(function (err) {
          if (window.console) console.warn("HallWatch: patrol round fetch failed", err);
          return null;
        });
      })).then(function (views) {
        if (gen !== patrolFetchGen) return;
        var next = {};
        ids.forEach(function (id, i) {
          // A round that failed to load keeps what we had (if anything).
          next[id] = views[i] || (patrolRounds[id] !== undefined ? patrolRounds[id] : null);
        });
        if (patrols && list && patrols.day !== list.day) {
          findingErrors = {};
          dismissOpen = {};
          roundOpen = {};
        }
        patrols = list;
        patrolRounds = next;
        patrolsLoaded = true;
        patrolsFailed = false;
        pruneFindingState();
        renderPatrols();
        schedulePatrolRefresh();
      });
    }).catch(function (err) {
      if (gen !== patrolFetchGen) return;
      patrolsFailed = true;
      renderPatrols();
      if (window.console) console.warn("HallWatch: patrols fetch failed", err);
    });
  }

  // Forget the UI state of findings no longer shown.
  function pruneFindingState() {
    var known = {};
    allFindings().forEach(function (f) { known[f.id] = true; });
    [findingErrors, dismissOpen].forEach(function (m) {
      Object.keys(m).forEach(function (id) { if (!known[id] && !findingPending[id]) delete m[id]; });
    });
  }

  // A scheduled round opens on the server at its time: look again just after it.
  function schedulePatrolRefresh() {
    if (patrolTimer) { window.clearTimeout(patrolTimer); patrolTimer = null; }
    if (!patrols || !Array.isArray(patrols.scheduled)) return;
    var now = hallNow().getTime();
    var speed = hallClock.speed > 0 ? hallClock.speed : 1;
    var soonest = null;
    patrols.scheduled.forEach(function (s) {
      if (scheduledState(s) !== "upcoming") return;
      var wait = (parseTime(s.at).getTime() - now) / speed;
      if (soonest === null || wait < soonest) soonest = wait;
    });
    if (soonest !== null && soonest < PATROL_REFRESH_MS) {
      patrolTimer = window.setTimeout(function () {
        patrolTimer = null;
        refreshPatrols();
      }, Math.max(1000, soonest + 3000));
    }
  }

  // Replace a finding in the loaded rounds by the server's answer to an action.
  function putFinding(f) {
    Object.keys(patrolRounds).forEach(function (id) {
      var view = patrolRounds[id];
      if (!view || !Array.isArray(view.checklist)) return;
      view.checklist.forEach(function (entry) {
        if (!entry || !Array.isArray(entry.findings)) return;
        for (var i = 0; i < entry.findings.length; i++) {
          if (entry.findings[i] && entry.findings[i].id === f.id) entry.findings[i] = f;
        }
      });
    });
  }

  function findFinding(id) {
    var list = allFindings();
    for (var i = 0; i < list.length; i++) if (String(list[i].id) === String(id)) return list[i];
    return null;
  }

  function announcePatrol(text) {
    var live = $("patrols-live");
    live.textContent = "";
    live.textContent = text;
  }

  // The server's reason: 409 {"detail": "cannot confirm: …"}, 422 {"detail": [{msg, loc}]}.
  function errorDetail(body) {
    if (!body) return null;
    var d = body.detail;
    if (typeof d === "string" && d) return d;
    if (Array.isArray(d)) {
      var parts = d.map(function (x) {
        if (!x || typeof x !== "object") return String(x);
        var loc = Array.isArray(x.loc) && x.loc.length ? x.loc[x.loc.length - 1] + ": " : "";
        return loc + (x.msg || "");
      }).filter(Boolean);
      if (parts.length) return parts.join("; ");
    }
    return null;
  }

  // body null: a POST without a body (the server takes the actor from the session).
  function postJSON(url, body) {
    var init = { method: "POST", cache: "no-store", headers: { "Accept": "application/json" } };
    if (body !== null) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.status === 401) sessionEnded();
      return r.json().catch(function () { return null; }).then(function (data) {
        if (!r.ok) {
          var e = new Error(url + " -> HTTP " + r.status);
          e.status = r.status;
          e.detail = errorDetail(data);
          throw e;
        }
        return data;
      });
    });
  }

  // action: "confirm" | "dismiss" (with a reason).
  function actOnFinding(id, action, reason) {
    if (findingPending[id]) return;
    var f = findFinding(id);
    var body = {};
    if (action === "dismiss") {
      reason = (reason || "").trim();
      if (!reason) {
        findingErrors[id] = { key: "finding.needReason" };
        renderPatrols(true);
        announcePatrol(t("finding.needReason"));
        focusFinding(id, "reason");
        return;
      }
      body.reason = reason;
    }
    findingPending[id] = action;
    delete findingErrors[id];
    renderPatrols(true);
    postJSON(HALL + "/api/findings/" + encodeURIComponent(id) + "/" + action, body).then(function (updated) {
      delete findingPending[id];
      if (action === "dismiss") delete dismissOpen[id];
      if (updated && updated.id !== undefined) putFinding(updated);
      renderPatrols(true);
      focusFinding(id, "row");
      var what = findingWhat(updated || f || {});
      announcePatrol(tf(action === "confirm" ? "finding.confirmed" : "finding.dismissed", { what: what }));
      refreshPatrols();
    }).catch(function (err) {
      delete findingPending[id];
      if (err && err.status === 403) findingErrors[id] = { key: "finding.forbidden" };
      else if (err && err.detail) findingErrors[id] = { text: err.detail };
      else findingErrors[id] = { key: err && err.status === 404 ? "finding.notFound" : "finding.failed" };
      renderPatrols(true);
      var e = findingErrors[id];
      announcePatrol(tf("finding.error", { what: f ? findingWhat(f) : "#" + id, msg: e.text || t(e.key) }));
      if (err && (err.status === 409 || err.status === 404)) refreshPatrols();  // someone else acted on it
      if (window.console) console.warn("HallWatch: finding " + action + " failed", err);
    });
  }

  function buildFinding(f) {
    var id = String(f.id);
    var st = findingStatusOf(f);
    var li = el("li", "finding fstatus-" + st.replace(/[^a-z_]/gi, ""));
    li.tabIndex = -1;
    li.setAttribute("data-finding-id", id);
    li.setAttribute("data-finding-status", st);

    var head = el("div", "finding-head");
    var title = el("h4", "finding-title");
    title.id = "finding-title-" + id;
    title.appendChild(el("span", "finding-window", f.window_name || f.window_id || "—"));
    title.appendChild(el("span", "finding-category", categoryName(f)));
    head.appendChild(title);
    var status = el("span", "finding-status fstatus-" + st.replace(/[^a-z_]/gi, ""));
    var icon = el("span", "fstatus-icon", FINDING_STATUS_ICONS[st] || "·");
    icon.setAttribute("aria-hidden", "true");
    status.appendChild(icon);
    status.appendChild(el("span", null, findingStatusText(f)));
    head.appendChild(status);
    li.appendChild(head);
    li.setAttribute("aria-labelledby", title.id);

    var facts = el("div", "finding-facts");
    facts.appendChild(el("span", "finding-span", findingSpan(f)));
    findingFacts(f).forEach(function (x) { facts.appendChild(el("span", "finding-fact", x)); });
    if (f.facts && f.facts.live === "no") facts.appendChild(el("span", "badge-historical", t("finding.historical")));
    li.appendChild(facts);
    if (f.origin !== "device" && f.note) li.appendChild(el("div", "finding-note", f.note));

    // Who took the last step (confirmed / dismissed …) and why.
    var steps = Array.isArray(f.history) ? f.history : [];
    var last = steps.length ? steps[steps.length - 1] : null;
    if (st !== "draft" && last) {
      var text = (last.actor || "—") + " " + shortHM(last.at);
      if (last.reason) text += t("colon") + last.reason;
      li.appendChild(el("div", "finding-step", text));
    }

    var actions = can("patrols.run") && Array.isArray(f.actions) ? f.actions : [];
    var pending = findingPending[id];
    var label = findingWhat(f);
    var row = el("div", "finding-actions");
    if (actions.indexOf("confirm") >= 0) {
      var ok = el("button", "finding-button finding-confirm", pending === "confirm" ? t("finding.working") : t("finding.confirm"));
      ok.type = "button";
      ok.setAttribute("aria-label", t("finding.confirm") + t("colon") + label);
      if (pending) ok.setAttribute("aria-disabled", "true");
      row.appendChild(ok);
    }
    if (actions.indexOf("dismiss") >= 0) {
      var no = el("button", "finding-button finding-dismiss", t("finding.dismiss"));
      no.type = "button";
      no.setAttribute("aria-label", t("finding.dismiss") + t("colon") + label);
      no.setAttribute("aria-expanded", Object.prototype.hasOwnProperty.call(dismissOpen, id) ? "true" : "false");
      no.setAttribute("aria-controls", "dismiss-form-" + id);
      if (pending) no.setAttribute("aria-disabled", "true");
      row.appendChild(no);
    }
    if (row.firstChild) head.appendChild(row);

    if (actions.indexOf("dismiss") >= 0 && Object.prototype.hasOwnProperty.call(dismissOpen, id)) {
      var form = el("form", "dismiss-form");
      form.id = "dismiss-form-" + id;
      form.noValidate = true;
      var inputId = "dismiss-reason-" + id;
      var lab = el("label", "dismiss-label", t("finding.reason"));
      lab.htmlFor = inputId;
      form.appendChild(lab);
      var input = el("input", "dismiss-reason");
      input.id = inputId;
      input.type = "text";
      input.maxLength = 1000;
      input.autocomplete = "off";
      input.value = dismissOpen[id];
      if (findingErrors[id]) input.setAttribute("aria-describedby", "finding-error-" + id);
      if (findingErrors[id] && findingErrors[id].key === "finding.needReason") input.setAttribute("aria-invalid", "true");
      form.appendChild(input);
      var send = el("button", "finding-button finding-submit", pending === "dismiss" ? t("finding.working") : t("finding.submitDismiss"));
      send.type = "submit";
      if (pending) send.setAttribute("aria-disabled", "true");
      form.appendChild(send);
      var cancel = el("button", "finding-button finding-cancel", t("finding.cancel"));
      cancel.type = "button";
      form.appendChild(cancel);
      li.appendChild(form);
    }

    var e = findingErrors[id];
    if (e) {
      var err = el("p", "finding-error", e.text || t(e.key));
      err.id = "finding-error-" + id;
      li.appendChild(err);
    }
    return li;
  }

  function roundMark(state, text) {
    var mark = el("span", "round-mark rstate-" + state);
    var icon = el("span", "rstate-icon", ROUND_STATE_ICONS[state] || "·");
    icon.setAttribute("aria-hidden", "true");
    mark.appendChild(icon);
    mark.appendChild(el("span", null, text));
    return mark;
  }

  // One round: a scheduled entry (s) and/or the round itself (r, with its findings).
  function buildRound(s, r) {
    var state = s ? scheduledState(s) : "done";
    var li = el("li", "patrol-round rstate-" + state);
    li.setAttribute("data-round-state", state);
    if (s) li.setAttribute("data-round-name", s.name);
    if (r) li.setAttribute("data-round-id", String(r.id));

    var head = el("div", "round-head");
    head.appendChild(roundMark(state, t("round." + state)));
    var name = s ? s.name : (r.name || labelOr("round.kind", r.kind) + (lang === "zh" ? "（" : " (") +
      t("round.unscheduled") + (lang === "zh" ? "）" : ")"));
    head.appendChild(el("h3", "round-name", name));
    if (s) head.appendChild(el("time", "round-at", t("round.at") + " " + shortHM(s.at)));
    li.appendChild(head);

    if (r) {
      var meta = [t("round.started") + " " + shortHM(r.started_at)];
      if (r.officer) meta.push(r.officer);
      li.appendChild(el("div", "round-meta", meta.join(" · ")));
      var list = roundFindings(r.id);
      if (list === null) {
        li.appendChild(el("p", "round-note", t(patrolRounds[r.id] === null ? "round.findingsFailed" : "round.loadingFindings")));
      } else if (!list.length) {
        li.appendChild(el("p", "round-note", t("round.noFindings")));
      } else {
        var drafts = list.filter(function (f) { return findingStatusOf(f) === "draft"; }).length;
        var det = el("details", "round-findings");
        det.setAttribute("data-round-id", String(r.id));
        det.open = Object.prototype.hasOwnProperty.call(roundOpen, r.id) ? roundOpen[r.id] : drafts > 0;
        det.appendChild(el("summary", "round-summary", drafts ?
          tf("round.findingsPending", { n: list.length, p: drafts }) : tf("round.findings", { n: list.length })));
        var ul = el("ul", "finding-list");
        ul.setAttribute("role", "list");
        list.forEach(function (f) { ul.appendChild(buildFinding(f)); });
        det.appendChild(ul);
        li.appendChild(det);
      }
    }
    return li;
  }

  // Where focus is inside the patrol panel, so a re-render can put it back.
  function patrolFocus() {
    var a = document.activeElement;
    if (!a || !a.closest || !$("patrols").contains(a)) return null;
    var row = a.closest(".finding[data-finding-id]");
    if (!row) {
      var det = a.closest("details.round-findings");
      return det ? { round: det.getAttribute("data-round-id") } : null;
    }
    var what = "row";
    if (a.classList.contains("finding-confirm")) what = "confirm";
    else if (a.classList.contains("finding-dismiss")) what = "dismiss";
    else if (a.classList.contains("dismiss-reason")) what = "reason";
    else if (a.classList.contains("finding-submit")) what = "submit";
    else if (a.classList.contains("finding-cancel")) what = "cancel";
    var f = { id: row.getAttribute("data-finding-id"), what: what };
    if (what === "reason") { f.start = a.selectionStart; f.end = a.selectionEnd; }
    return f;
  }

  function focusFinding(id, what, start, end) {
    var row = $("patrol-rounds").querySelector('.finding[data-finding-id="' + cssEscape(String(id)) + '"]');
    if (!row) return;
    var sel = { confirm: ".finding-confirm", dismiss: ".finding-dismiss", reason: ".dismiss-reason",
      submit: ".finding-submit", cancel: ".finding-cancel" }[what];
    var target = (sel && row.querySelector(sel)) || row;
    var det = row.closest("details");
    if (det && !det.open) return;
    target.focus();
    if (what === "reason" && typeof start === "number") {
      try { target.setSelectionRange(start, typeof end === "number" ? end : start); } catch (e) { /* ignore */ }
    }
  }

  // force: re-render even while a reason box has focus (after the user's own action).
  function renderPatrols(force) {
    var panel = $("patrols");
    var active = document.activeElement;
    // A refresh never replaces the reason box while it is being typed in (an IME
    // composition would be lost); it is applied once focus leaves the panel.
    if (!force && active && active.classList && active.classList.contains("dismiss-reason") && panel.contains(active)) {
      patrolRenderDeferred = true;
      return;
    }
    patrolRenderDeferred = false;
    var focus = patrolFocus();
    var list = $("patrol-rounds");
    var scroll = list.scrollTop;
    var panelScroll = panel.scrollTop;
    clear(list);

    var day = patrols && patrols.day ? patrols.day : hallDay();
    panel.setAttribute("data-day", day || "");
    $("patrols-day").textContent = day || "";

    var rounds = patrols && Array.isArray(patrols.rounds) ? patrols.rounds : [];
    var byId = {};
    rounds.forEach(function (r) { if (r) byId[r.id] = r; });
    var used = {};
    var scheduled = patrols && Array.isArray(patrols.scheduled) ? patrols.scheduled : [];
    scheduled.forEach(function (s) {
      var r = s.round_id !== null && s.round_id !== undefined ? byId[s.round_id] : null;
      if (r) used[r.id] = true;
      list.appendChild(buildRound(s, r || null));
    });
    rounds.forEach(function (r) {     // unscheduled rounds and CCTV sessions of the day
      if (r && !used[r.id]) list.appendChild(buildRound(null, r));
    });

    var drafts = allFindings().filter(function (f) { return findingStatusOf(f) === "draft"; }).length;
    var badge = $("patrols-pending");
    badge.hidden = drafts === 0;
    badge.textContent = tf("patrols.pending", { n: drafts });
    panel.setAttribute("data-pending", String(drafts));

    var msg = $("patrols-message");
    var key = null;
    if (!patrolsLoaded) key = patrolsFailed ? null : "patrols.loading";
    else if (!list.firstChild) key = patrols && patrols.working_day === false ? "patrols.notWorkingDay" : "patrols.none";
    msg.hidden = key === null;
    if (key) { msg.setAttribute("data-i18n", key); msg.textContent = t(key); }

    var errNode = $("patrols-error");
    var errText = patrolsFailed ? t("patrols.loadFailed") : (patrols && patrols.calendar_error) || "";
    errNode.hidden = !errText;
    errNode.textContent = errText;

    list.scrollTop = scroll;
    panel.scrollTop = panelScroll;
    if (focus && focus.id) focusFinding(focus.id, focus.what, focus.start, focus.end);
    else if (focus && focus.round) {
      var sum = list.querySelector('details.round-findings[data-round-id="' + cssEscape(focus.round) + '"] > summary');
      if (sum) sum.focus();
    }
  }

  function initPatrolControls() {
    var panel = $("patrols");
    panel.addEventListener("click", function (e) {
      var btn = e.target && e.target.closest ? e.target.closest(".finding-button") : null;
      var row = btn && btn.closest(".finding[data-finding-id]");
      if (!row) return;
      var id = row.getAttribute("data-finding-id");
      if (btn.classList.contains("finding-confirm")) {
        actOnFinding(id, "confirm");
      } else if (btn.classList.contains("finding-dismiss")) {
        if (findingPending[id]) return;
        if (Object.prototype.hasOwnProperty.call(dismissOpen, id)) {
          focusFinding(id, "reason");
          return;
        }
        dismissOpen[id] = "";
        if (findingErrors[id] && findingErrors[id].key === "finding.needReason") delete findingErrors[id];
        renderPatrols(true);
        focusFinding(id, "reason");
      } else if (btn.classList.contains("finding-cancel")) {
        delete dismissOpen[id];
        delete findingErrors[id];
        renderPatrols(true);
        focusFinding(id, "dismiss");
      }
    });
    panel.addEventListener("submit", function (e) {
      var form = e.target;
      if (!form || !form.classList || !form.classList.contains("dismiss-form")) return;
      e.preventDefault();
      var row = form.closest(".finding[data-finding-id]");
      if (!row) return;
      var id = row.getAttribute("data-finding-id");
      var input = form.querySelector(".dismiss-reason");
      dismissOpen[id] = input ? input.value : "";
      actOnFinding(id, "dismiss", dismissOpen[id]);
    });
    panel.addEventListener("input", function (e) {
      var input = e.target;
      if (!input || !input.classList || !input.classList.contains("dismiss-reason")) return;
      var row = input.closest(".finding[data-finding-id]");
      if (row) dismissOpen[row.getAttribute("data-finding-id")] = input.value;
    });
    panel.addEventListener("keydown", function (e) {
      if (e.key !== "Escape" || !e.target || !e.target.closest) return;
      var form = e.target.closest(".dismiss-form");
      var row = form && form.closest(".finding[data-finding-id]");
      if (!row) return;
      e.preventDefault();
      var id = row.getAttribute("data-finding-id");
      delete dismissOpen[id];
      delete findingErrors[id];
      renderPatrols(true);
      focusFinding(id, "dismiss");
    });
    // A refresh that came while the reason was being typed: apply it once focus leaves the panel.
    panel.addEventListener("focusout", function (e) {
      if (!patrolRenderDeferred) return;
      if (e.relatedTarget && panel.contains(e.relatedTarget)) return;
      window.setTimeout(function () { if (patrolRenderDeferred) renderPatrols(); }, 0);
    });
    // Remember which rounds' findings are open across re-renders ("toggle" does not bubble).
    panel.addEventListener("toggle", function (e) {
      var d = e.target;
      if (!d || !d.classList || !d.classList.contains("round-findings")) return;
      roundOpen[d.getAttribute("data-round-id")] = d.open;
    }, true);
    window.setInterval(refreshPatrols, PATROL_REFRESH_MS);
  }

  function renderAll() {
    renderClock();
    renderConn();
    renderSummary();
    renderWindows();
    renderDevices();
    renderEvents();
    renderStats();
    renderAlerts();
    renderMute();
    renderPatrols();
    renderToday();
  }

  // ---------------------------------------------------------------- data updates
  function upsertWindow(w) {
    if (!w || !w.id) return;
    var isNew = !windows[w.id];
    windows[w.id] = w;
    if (isNew) windowOrder.push(w.id);
    renderWindow(w.id);
    renderSummary();
    $("windows-empty").hidden = windowOrder.length > 0;
  }

  function upsertDevice(d) {
    if (!d || !d.id) return;
    devices[d.id] = d;
    renderDevices();
  }

  function visibleEvent(ev) {
    return ev && !HIDDEN_EVENT_TYPES[ev.type];
  }

  function addEvent(ev) {
    if (!visibleEvent(ev)) return;
    for (var i = 0; i < events.length; i++) {
      if (events[i].msg_id === ev.msg_id) return;
    }
    events.unshift(ev);
    if (events.length > EVENT_LIMIT) events.length = EVENT_LIMIT;
    var list = $("event-list");
    list.insertBefore(buildEvent(ev), list.firstChild);
    while (list.children.length > EVENT_LIMIT) list.removeChild(list.lastChild);
    $("events-empty").hidden = true;
  }

  function handleMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.kind) {
      case "window":
        wsTouchedWindow[msg.window && msg.window.id] = fetchGen;
        upsertWindow(msg.window);
        break;
      case "device":
        wsTouchedDevice[msg.device && msg.device.id] = fetchGen;
        upsertDevice(msg.device);
        break;
      case "event":
        if (fetchInFlight) wsEventsDuringFetch.push(msg.event);
        addEvent(msg.event);
        break;
      case "alert":
        if (msg.alert && msg.alert.id !== undefined) wsTouchedAlert[msg.alert.id] = alertFetchGen;
        upsertAlert(msg.alert, true);
        break;
      case "stats":
        statsTouchedGen = fetchGen;
        stats = msg.stats;
        renderStats();
        break;
      default:
        break;
    }
  }

  function getJSON(url) {
    return fetch(url, { cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) sessionEnded();
        if (!r.ok) throw new Error(url + " -> HTTP " + r.status);
        return r.json();
      });
  }

  var fetchInFlight = false;

  function refetchAll() {
    fetchGen++;
    var gen = fetchGen;
    fetchInFlight = true;
    wsEventsDuringFetch = [];
    refetchAlerts();
    return Promise.all([
      getJSON(HALL + "/api/hall"),
      getJSON(HALL + "/api/windows"),
      getJSON(HALL + "/api/devices"),
      getJSON(HALL + "/api/stats"),
      getJSON(HALL + "/api/events?limit=" + EVENT_LIMIT)
    ]).then(function (r) {
      if (gen !== fetchGen) return;  // a newer refetch superseded this one
      var h = r[0] || {};
      hall.id = h.id || null;
      hall.name = h.name || null;
      hall.timezone = h.timezone || DEFAULT_TZ;
      if (h.clock && !isNaN(Date.parse(h.clock.now))) {
        hallClock = { at: Date.parse(h.clock.now), wallAt: Date.now(), speed: h.clock.speed || 1 };
      }
      if (!formatter(hall.timezone)) hall.timezone = DEFAULT_TZ;

      var nextOrder = [];
      var nextWindows = {};
      (r[1] || []).forEach(function (w) {
        if (!w || !w.id) return;
        nextOrder.push(w.id);
        nextWindows[w.id] = wsTouchedWindow[w.id] === gen && windows[w.id] ? windows[w.id] : w;
      });
      windowOrder.forEach(function (id) {  // keep windows only announced over ws mid-fetch
        if (!nextWindows[id] && wsTouchedWindow[id] === gen) {
          nextOrder.push(id);
          nextWindows[id] = windows[id];
        }
      });
      windowOrder = nextOrder;
      windows = nextWindows;

      var nextDevices = {};
      (r[2] || []).forEach(function (d) {
        if (!d || !d.id) return;
        nextDevices[d.id] = wsTouchedDevice[d.id] === gen && devices[d.id] ? devices[d.id] : d;
      });
      Object.keys(devices).forEach(function (id) {
        if (!nextDevices[id] && wsTouchedDevice[id] === gen) nextDevices[id] = devices[id];
      });
      devices = nextDevices;

      if (statsTouchedGen !== gen) stats = r[3];

      var seen = {};
      var merged = [];
      wsEventsDuringFetch.slice().reverse().concat(r[4] || []).forEach(function (ev) {
        if (!visibleEvent(ev) || seen[ev.msg_id]) return;
        seen[ev.msg_id] = true;
        merged.push(ev);
      });
      events = merged.slice(0, EVENT_LIMIT);

      wsTouchedWindow = {};
      wsTouchedDevice = {};
      loaded = true;
      fetchInFlight = false;
      renderHallName();
      renderAll();
      refreshPatrols();  // after the hall clock is known: "today" is the hall's day
      if (!today) refreshToday();
    }).catch(function (err) {
      if (gen === fetchGen) fetchInFlight = false;
      if (gen === fetchGen && !patrolsLoaded) refreshPatrols();
      if (window.console) console.warn("HallWatch: refetch failed", err);
    });
  }

  // ---------------------------------------------------------------- websocket
  function wsUrl() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + window.location.host + HALL + "/ws";
  }

  function setConn(s) {
    connState = s;
    renderConn();
  }

  function connect() {
    retryTimer = null;
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      retryDelay = 1000;
      setConn("online");
      refetchAll();
    };
    ws.onmessage = function (e) {
      if (socket !== ws) return;
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      (Array.isArray(msg) ? msg : [msg]).forEach(handleMessage);  // a frame is one batch's messages
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      setConn("offline");
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    var delay = retryDelay + Math.floor(Math.random() * 500);
    retryDelay = Math.min(retryDelay * 2, 30000);
    retryTimer = window.setTimeout(connect, delay);
  }

  function initAlertControls() {
    try {
      muted = window.localStorage.getItem("hallwatch.mute") === "1";
    } catch (e) { /* ignore */ }
    $("mute-toggle").addEventListener("click", function () { setMuted(!muted); });

    // One delegated handler for every ack button, now and after re-renders.
    $("alerts").addEventListener("click", function (e) {
      var btn = e.target && e.target.closest ? e.target.closest(".ack-button") : null;
      var row = btn && btn.closest(".alert[data-alert-id]");
      if (row) ackAlert(row.getAttribute("data-alert-id"));
    });
    // Remember which rule <details> are open across re-renders ("toggle" does not bubble).
    $("alerts").addEventListener("toggle", function (e) {
      var d = e.target;
      if (!d || !d.classList || !d.classList.contains("alert-rule")) return;
      var row = d.closest(".alert[data-alert-id]");
      if (!row) return;
      var id = row.getAttribute("data-alert-id");
      if (d.open) openRuleDetails[id] = true; else delete openRuleDetails[id];
    }, true);

    ["pointerdown", "click", "keydown", "touchstart"].forEach(function (type) {
      document.addEventListener(type, unlockAudio, true);
    });
    // Kiosk browsers may allow audio without a gesture: then no hint is needed.
    ensureAudio();
    renderMute();
  }

  // ---------------------------------------------------------------- session
  // me: {username, role, role_zh, permissions} once logged in, else null.
  function can(permission) {
    return !!me && Array.isArray(me.permissions) && me.permissions.indexOf(permission) >= 0;
  }

  function renderUser() {
    $("user").hidden = !me;
    $("logout").hidden = !me;
    if (!me) return;
    $("user-name").textContent = me.username;
    $("user-role").textContent = lang === "zh" ? (me.role_zh || me.role) : me.role;
  }

  function showLogin(messageKey) {
    $("live").hidden = true;
    $("clock").hidden = true;
    $("conn").hidden = true;
    $("login").hidden = false;
    var msg = $("login-error");
    if (messageKey) msg.setAttribute("data-i18n", messageKey); else msg.removeAttribute("data-i18n");
    msg.textContent = messageKey ? t(messageKey) : "";
    msg.hidden = !messageKey;
    $("login-user").focus();
  }

  // A request answered 401: the session ended (idle, expired, logged out elsewhere).
  function sessionEnded() {
    if (!me) return;
    me = null;
    if (socket) { var s = socket; socket = null; s.close(); }
    if (retryTimer) { window.clearTimeout(retryTimer); retryTimer = null; }
    renderUser();
    showLogin("auth.expired");
  }

  function initLogin() {
    $("login-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var button = $("login-submit");
      button.textContent = t("auth.working");
      button.setAttribute("aria-disabled", "true");
      fetch("/api/session", {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ username: $("login-user").value.trim(), password: $("login-password").value })
      }).then(function (r) {
        if (r.ok) {
          window.location.reload();   // one way into the live page: start() with a session
          return;
        }
        $("login-password").value = "";
        button.textContent = t("auth.submit");
        button.removeAttribute("aria-disabled");
        showLogin(r.status === 429 ? "auth.limited" : "auth.failed");
      }).catch(function () {
        button.textContent = t("auth.submit");
        button.removeAttribute("aria-disabled");
        showLogin("auth.unavailable");
      });
    });
    $("logout").addEventListener("click", function () {
      fetch("/api/session", { method: "DELETE", cache: "no-store" }).then(function () {
        window.location.reload();
      });
    });
  }

  // ---------------------------------------------------------------- start
  function start() {
    lang = initialLang();
    applyStaticLabels();
    $("lang-toggle").addEventListener("click", function () {
      setLang(lang === "zh" ? "en" : "zh");
    });
    initLogin();
    fetch("/api/session", { cache: "no-store", headers: { "Accept": "application/json" } }).then(function (r) {
      if (r.status === 401) { showLogin(null); return null; }
      if (!r.ok) throw new Error("session -> HTTP " + r.status);
      return r.json();
    }).then(function (who) {
      if (!who) return;
      me = who;
      renderUser();
      startLive();
    }).catch(function () {
      showLogin("auth.unavailable");
    });
  }

  function startLive() {
    $("login").hidden = true;
    $("live").hidden = false;
    $("clock").hidden = false;
    $("conn").hidden = false;
    renderAll();
    initAlertControls();
    initPatrolControls();
    refetchAll();   // show data even before the socket opens
    connect();
    window.setInterval(function () {
      renderClock();
      tickDurations();
      tickAlerts();
    }, 1000);
    window.setInterval(refetchAlerts, ALERT_REFRESH_MS);
    window.setInterval(refreshToday, TODAY_REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
