/*
 * HallWatch 窗口值守实时监控页 (live monitoring page). Plain JS, no dependencies.
 *
 * Server contract (same origin):
 *   GET /api/hall           -> {id, name, timezone, clock: {now: ISO-8601, speed}}
 *   GET /api/windows        -> [{id, name, department, state: staffed|paused|vacant|unknown,
 *                                state_since: ISO-8601|null, seat_state: occupied|vacant|null,
 *                                occupant, paused, pause_reason, camera_device,
 *                                camera_status: online|offline|stale|never_seen}]
 *   GET /api/devices        -> [{id, kind, windows: [window ids], status, boot, last_seen}]
 *   GET /api/stats          -> {accepted, duplicates, rejected, historical}
 *   GET /api/events?limit=50 -> newest first [{msg_id, device_id, type, event_time,
 *                                historical, window_id, summary}]
 *   GET /api/alerts?active=true&limit=100 -> newest first, not cleared (active + acknowledged)
 *   GET /api/alerts?limit=50 -> newest first, cleared ones too (we keep the last 20 cleared)
 *       alert = {id: int, window_id, window_name, type: vacant|pause_overrun|unexpected_person|
 *                clerk_mismatch|device_fault|no_substitute, name_zh, name_en,
 *                state: active|acknowledged|cleared, severity: low|medium|high|critical,
 *                condition_since: ISO, raised_at: ISO, cleared_at: ISO|null,
 *                acknowledged_at: ISO|null, acknowledged_by: str|null,
 *                live: bool (false: backfilled data, never sounds), rule: "thresholds.x"|null,
 *                threshold_s: int, source: citation text, facts: {str: str}, evidence: str|null}
 *   POST /api/alerts/{id}/ack  body {"by": "<on-duty name>"} -> the updated alert (404 if unknown)
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
 *
 * Server data is only ever written with textContent (never innerHTML).
 */
(function () {
  "use strict";

  var EVENT_LIMIT = 50;
  var DEFAULT_TZ = "Asia/Shanghai";
  var STATES = ["staffed", "paused", "vacant", "unknown"];
  var STATE_ICONS = { staffed: "✓", paused: "⏸\uFE0E", vacant: "✕", unknown: "?" };
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
      "devices.title": "设备状态",
      "devices.empty": "暂无设备",
      "devices.windows": "窗口",
      "devices.lastSeen": "最后上报",
      "devices.never": "从未上报",
      "devices.boot": "启动 #",
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
      "alerts.duty": "值班人员",
      "alerts.mute": "静音",
      "alerts.soundHint": "点击页面以启用提示音",
      "alerts.soundUnsupported": "此浏览器不支持提示音",
      "alerts.needName": "请先在“值班人员”中填写您的姓名，再确认告警。",
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
      "unit.s": "{n} 秒",
      "unit.min": "{n} 分钟",
      "unit.h": "{n} 小时",
      "lang.switchLabel": "Switch to English",
      "lang.switchText": "English",
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
      "devices.title": "Devices",
      "devices.empty": "No devices",
      "devices.windows": "Windows",
      "devices.lastSeen": "Last seen",
      "devices.never": "never seen",
      "devices.boot": "boot #",
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
      "alerts.duty": "On duty",
      "alerts.mute": "Mute",
      "alerts.soundHint": "Click the page to enable alert sound",
      "alerts.soundUnsupported": "This browser cannot play alert sounds",
      "alerts.needName": "Enter your name under “On duty” first, then acknowledge.",
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
      "unit.s": "{n} s",
      "unit.min": "{n} min",
      "unit.h": "{n} h",
      "lang.switchLabel": "切换到中文",
      "lang.switchText": "中文",
      "sep": ", ",
      "colon": ": "
    }
  };

  var lang = "zh";

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
    var counts = { staffed: 0, paused: 0, vacant: 0, unknown: 0 };
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
    } else if (st === "active") {
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
  function showDutyMessage(key) {
    var m = $("duty-message");
    if (!key) {
      m.hidden = true;
      m.removeAttribute("data-i18n");
      m.textContent = "";
      return;
    }
    m.setAttribute("data-i18n", key);
    m.textContent = t(key);
    m.hidden = false;
  }

  function ackAlert(id) {
    if (pendingAck[id]) return;
    var input = $("duty-name");
    var by = input.value.trim();
    if (!by) {
      showDutyMessage("alerts.needName");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    showDutyMessage(null);
    pendingAck[id] = true;
    delete ackErrors[id];
    renderAlerts();
    fetch("/api/alerts/" + encodeURIComponent(id) + "/ack", {
      method: "POST",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ by: by })
    }).then(function (r) {
      if (!r.ok) {
        var e = new Error("ack -> HTTP " + r.status);
        e.status = r.status;
        throw e;
      }
      return r.json();
    }).then(function (a) {
      delete pendingAck[id];
      if (a && a.id !== undefined) {
        upsertAlert(a);
      } else {
        renderAlerts();
      }
    }).catch(function (err) {
      delete pendingAck[id];
      ackErrors[id] = err && err.status === 404 ? "alerts.ackNotFound" : "alerts.ackFailed";
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
      getJSONOrNull("/api/alerts?active=true&limit=100"),
      getJSONOrNull("/api/alerts?limit=50")
    ]).then(function (r) {
      if (gen !== alertFetchGen) return;
      if (r[0] === null && r[1] === null) return;
      mergeAlerts(Array.isArray(r[0]) ? r[0] : null, Array.isArray(r[1]) ? r[1] : null, gen);
    });
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
      getJSON("/api/hall"),
      getJSON("/api/windows"),
      getJSON("/api/devices"),
      getJSON("/api/stats"),
      getJSON("/api/events?limit=" + EVENT_LIMIT)
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
    }).catch(function (err) {
      if (gen === fetchGen) fetchInFlight = false;
      if (window.console) console.warn("HallWatch: refetch failed", err);
    });
  }

  // ---------------------------------------------------------------- websocket
  function wsUrl() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + window.location.host + "/ws";
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
      handleMessage(msg);
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
    var input = $("duty-name");
    try {
      input.value = window.localStorage.getItem("hallwatch.duty") || "";
      muted = window.localStorage.getItem("hallwatch.mute") === "1";
    } catch (e) { /* ignore */ }
    input.addEventListener("input", function () {
      try { window.localStorage.setItem("hallwatch.duty", input.value.trim()); } catch (e) { /* ignore */ }
      if (input.value.trim()) {
        input.removeAttribute("aria-invalid");
        showDutyMessage(null);
      }
    });
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

  // ---------------------------------------------------------------- start
  function start() {
    lang = initialLang();
    applyStaticLabels();
    renderAll();
    $("lang-toggle").addEventListener("click", function () {
      setLang(lang === "zh" ? "en" : "zh");
    });
    initAlertControls();
    refetchAll();   // show data even before the socket opens
    connect();
    window.setInterval(function () {
      renderClock();
      tickDurations();
      tickAlerts();
    }, 1000);
    window.setInterval(refetchAlerts, ALERT_REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
