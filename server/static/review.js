/*
 * HallWatch review (回看): a day's state bands per window with alerts, ratings
 * and punches on the same axis, a replay cursor, and occupancy per hour.
 *
 * Data: GET /api/windows, GET /api/review/day?day=&window=,
 * GET /api/review/occupancy?from=&to=. Chinese first; ?lang=en or the
 * button switches to English. Every state has a text label and a pattern,
 * never colour alone; everything is reachable with the keyboard.
 */
(function () {
  "use strict";

  var TEXT = {
    zh: {
      title: "窗口值守回看", back: "返回实时监控", day: "日期", window: "窗口", all: "全部窗口", show: "查看",
      speed: "回放速度", play: "回放", stop: "停止", timeline: "当日时间线", marks: "告警、评价与打卡",
      time: "时间", what: "事项", heat: "每小时在岗率", from: "从", to: "到", loading: "加载中…",
      login: "请先在实时监控页面登录。", failed: "加载失败：", empty: "这一天没有数据。",
      staffed: "在岗", vacant: "空岗", paused: "暂停", unknown: "未知", closed: "关闭",
      alert: "告警", rating: "评价", punch: "打卡", acked: "已确认", stars: "星", hour: "时", nodata: "—",
      at: "时刻"
    },
    en: {
      title: "Window review", back: "Back to live", day: "Day", window: "Window", all: "All windows", show: "Show",
      speed: "Replay speed", play: "Replay", stop: "Stop", timeline: "The day's timeline", marks: "Alerts, ratings and punches",
      time: "Time", what: "What", heat: "Occupancy per hour", from: "From", to: "To", loading: "Loading…",
      login: "Log in on the live page first.", failed: "Could not load: ", empty: "No data for this day.",
      staffed: "staffed", vacant: "vacant", paused: "paused", unknown: "unknown", closed: "closed",
      alert: "alert", rating: "rating", punch: "punch", acked: "acknowledged", stars: "★", hour: "h", nodata: "—",
      at: "At"
    }
  };
  var STATES = ["staffed", "vacant", "paused", "unknown", "closed"];
  var DAY_START = 7, DAY_END = 19; // hours shown on the axis
  var lang = /[?&]lang=en/.test(location.search) ? "en" : "zh";
  var loaded = null, timer = null;

  function t(key) { return TEXT[lang][key] || key; }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function hhmm(iso) { return iso ? iso.slice(11, 16) : ""; }
  function minutes(iso) { return Number(iso.slice(11, 13)) * 60 + Number(iso.slice(14, 16)) + Number(iso.slice(17, 19)) / 60; }
  function pct(iso) {
    var m = Math.min(Math.max(minutes(iso), DAY_START * 60), DAY_END * 60);
    return (100 * (m - DAY_START * 60)) / ((DAY_END - DAY_START) * 60);
  }

  function translate() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) { node.textContent = t(node.getAttribute("data-i18n")); });
    $("lang-toggle").textContent = lang === "zh" ? "English" : "中文";
    $("lang-toggle").setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
    var legend = $("legend");
    legend.textContent = "";
    STATES.forEach(function (state) {
      var item = el("li");
      item.appendChild(el("span", "swatch band-" + state));
      item.appendChild(el("span", null, t(state)));
      legend.appendChild(item);
    });
  }

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (answer) {
      if (answer.status === 401) throw new Error(t("login"));
      if (!answer.ok) return answer.json().then(function (body) { throw new Error(body.detail || answer.statusText); }, function () { throw new Error(answer.statusText); });
      return answer.json();
    });
  }

  function status(text) { $("status").textContent = text || ""; }

  function drawDay(data) {
    loaded = data;
    var box = $("timeline"), rows = $("marks").querySelector("tbody");
    box.textContent = "";
    rows.textContent = "";
    var marks = [];
    data.windows.forEach(function (w) {
      var row = el("div", "trow");
      row.appendChild(el("span", "tname", w.name));
      var bar = el("div", "tbar");
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", w.name + ": " + w.bands.filter(function (b) { return b.state !== "closed"; }).map(function (b) {
        return hhmm(b.from) + "–" + hhmm(b.to) + " " + t(b.state);
      }).join("，"));
      w.bands.forEach(function (b) {
        var left = pct(b.from), width = pct(b.to) - left;
        if (width <= 0) return;
        var band = el("div", "band band-" + b.state, width > 4 ? t(b.state) : "");
        band.style.left = left + "%";
        band.style.width = width + "%";
        band.title = t(b.state) + " " + hhmm(b.from) + "–" + hhmm(b.to);
        bar.appendChild(band);
      });
      w.alerts.forEach(function (a) { place(bar, a.raised_at, "▲", t("alert") + " " + a.type); marks.push([a.raised_at, w.name, t("alert") + " " + a.type + (a.acknowledged_by ? "（" + t("acked") + "：" + a.acknowledged_by + "）" : "")]); });
      w.ratings.forEach(function (r) { place(bar, r.at, "★" + r.level, t("rating") + " " + r.level); marks.push([r.at, w.name, t("rating") + " ★" + r.level + (r.clerk_id ? " " + r.clerk_id : "")]); });
      w.punches.forEach(function (p) { place(bar, p.at, "●", t("punch") + " " + p.person_id); marks.push([p.at, w.name, t("punch") + " " + p.person_id + " (" + p.method + ")"]); });
      bar.appendChild(el("div", "playhead")).hidden = true;
      row.appendChild(bar);
      box.appendChild(row);
    });
    marks.sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; });
    marks.forEach(function (m) {
      var tr = el("tr");
      tr.appendChild(el("td", null, hhmm(m[0])));
      tr.appendChild(el("td", null, m[1]));
      tr.appendChild(el("td", null, m[2]));
      rows.appendChild(tr);
    });
    status(data.windows.length ? "" : t("empty"));
  }

  function place(bar, iso, symbol, label) {
    var mark = el("span", "mark", symbol);
    mark.style.left = pct(iso) + "%";
    mark.title = hhmm(iso) + " " + label;
    bar.appendChild(mark);
  }

  function stateAt(w, minute) {
    for (var i = 0; i < w.bands.length; i++) {
      var b = w.bands[i];
      if (minutes(b.from) <= minute && minute < (b.to.slice(0, 10) > b.from.slice(0, 10) ? 24 * 60 : minutes(b.to))) return b.state;
    }
    return "closed";
  }

  function replay() {
    if (timer) { stopReplay(); return; }
    if (!loaded) return;
    var speed = Number($("speed").value), minute = DAY_START * 60, step = 100;
    $("play").textContent = t("stop");
    var heads = document.querySelectorAll(".playhead");
    timer = setInterval(function () {
      minute += (speed * step) / 60000;
      if (minute >= DAY_END * 60) { stopReplay(); return; }
      var left = (100 * (minute - DAY_START * 60)) / ((DAY_END - DAY_START) * 60);
      Array.prototype.forEach.call(heads, function (h) { h.hidden = false; h.style.left = left + "%"; });
      var clock = ("0" + Math.floor(minute / 60)).slice(-2) + ":" + ("0" + Math.floor(minute % 60)).slice(-2);
      $("cursor").textContent = t("at") + " " + clock + " — " + loaded.windows.map(function (w) { return w.name + " " + t(stateAt(w, minute)); }).join("，");
    }, step);
  }

  function stopReplay() {
    clearInterval(timer);
    timer = null;
    $("play").textContent = t("play");
  }

  function drawHeat(data) {
    var box = $("heat");
    box.textContent = "";
    var table = el("table");
    var head = el("tr");
    head.appendChild(el("th", null, t("day")));
    head.appendChild(el("th", null, t("window")));
    for (var h = DAY_START; h < DAY_END; h++) head.appendChild(el("th", null, h + t("hour")));
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    data.days.forEach(function (day) {
      data.windows.forEach(function (w) {
        var tr = el("tr");
        tr.appendChild(el("th", null, day.day.slice(5)));
        tr.appendChild(el("th", null, w.name));
        var hours = {};
        (day.windows[w.id] || []).forEach(function (cell) { hours[cell.hour] = cell; });
        for (var h = DAY_START; h < DAY_END; h++) {
          var cell = hours[h];
          if (!cell || cell.occupancy === null) { tr.appendChild(el("td", "none", t("nodata"))); continue; }
          var share = Math.round(cell.occupancy * 100);
          var td = el("td", null, share + "%");
          td.style.background = "rgba(23,105,47," + (0.08 + 0.6 * cell.occupancy).toFixed(2) + ")";
          if (share < 50) td.style.fontWeight = "700";
          tr.appendChild(td);
        }
        body.appendChild(tr);
      });
    });
    table.appendChild(body);
    box.appendChild(table);
  }

  function loadDay(event) {
    if (event) event.preventDefault();
    stopReplay();
    status(t("loading"));
    var query = "day=" + encodeURIComponent($("day").value) + ($("window").value ? "&window=" + encodeURIComponent($("window").value) : "");
    get("/api/review/day?" + query).then(drawDay, function (error) { status(t("failed") + error.message); });
  }

  function loadHeat(event) {
    if (event) event.preventDefault();
    get("/api/review/occupancy?from=" + encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value)).then(drawHeat, function (error) { status(t("failed") + error.message); });
  }

  function start() {
    var today = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10); // hall time, Asia/Shanghai
    var params = new URLSearchParams(location.search);
    $("day").value = params.get("day") || today;
    $("from").value = params.get("from") || $("day").value;
    $("to").value = params.get("to") || $("day").value;
    translate();
    $("lang-toggle").addEventListener("click", function () { lang = lang === "zh" ? "en" : "zh"; translate(); if (loaded) drawDay(loaded); });
    $("pick").addEventListener("submit", loadDay);
    $("range").addEventListener("submit", loadHeat);
    $("play").addEventListener("click", replay);
    get("/api/windows").then(function (windows) {
      windows.forEach(function (w) {
        var option = el("option", null, w.name);
        option.value = w.id;
        $("window").appendChild(option);
      });
      if (params.get("window")) $("window").value = params.get("window");
      loadDay();
      loadHeat();
    }, function (error) { status(t("failed") + error.message); });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
