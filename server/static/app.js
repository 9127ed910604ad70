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
 *   WebSocket /ws pushes {kind: "window"|"device"|"event"|"stats", window|device|event|stats: {...}}
 *     with the same item shapes as above. On close we reconnect with exponential backoff and
 *     refetch every list once the socket is open again.
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
    return parts.join(t("sep"));
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

  function renderAll() {
    renderClock();
    renderConn();
    renderSummary();
    renderWindows();
    renderDevices();
    renderEvents();
    renderStats();
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

  // ---------------------------------------------------------------- start
  function start() {
    lang = initialLang();
    applyStaticLabels();
    renderAll();
    $("lang-toggle").addEventListener("click", function () {
      setLang(lang === "zh" ? "en" : "zh");
    });
    refetchAll();   // show data even before the socket opens
    connect();
    window.setInterval(function () {
      renderClock();
      tickDurations();
    }, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
