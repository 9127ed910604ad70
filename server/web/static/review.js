/*
 * HallWatch review (回看): a day's state bands per window with alerts, ratings
 * and punches on the same axis, a replay cursor, and occupancy per hour.
 *
 * Data: GET /api/windows, GET /api/review/day?day=&window=,
 * GET /api/review/occupancy?from=&to=, GET /api/ratings/stats?by=window&period=day&from=&to=
 * (rating trends), GET /api/attendance/{year}/{month} (attendance calendar). Chinese first; ?lang=en or the
 * button switches to English. Every state has a text label and a pattern,
 * never colour alone; everything is reachable with the keyboard.
 */
(function () {
  "use strict";
  // A hall's page is served under /halls/<id>/ and calls that hall's API there; at / it is the district centre's.
  var HALL = (window.location.pathname.match(/^\/halls\/[a-z0-9][a-z0-9_-]*/) || [""])[0];

  var TEXT = {
    zh: {
      title: "窗口值守回看", back: "返回实时监控", day: "日期", window: "窗口", all: "全部窗口", show: "查看",
      speed: "回放速度", play: "回放", stop: "停止", timeline: "当日时间线", marks: "告警、评价与打卡",
      time: "时间", what: "事项", heat: "每小时在岗率", from: "从", to: "到", loading: "加载中…",
      login: "请先在实时监控页面登录。", failed: "加载失败：", empty: "这一天没有数据。",
      staffed: "在岗", vacant: "空岗", paused: "暂停", unknown: "未知", closed: "关闭",
      alert: "告警", rating: "评价", punch: "打卡", acked: "已确认", stars: "星", hour: "时", nodata: "—",
      at: "时刻",
      trend: "评价趋势", trendTable: "每日评价", hallAll: "全大厅", rated: "有效评价", satisfied: "满意", satRate: "满意率",
      bad: "差评", badRate: "差评率", noRatings: "这段时间没有评价。", trendChart: "评价趋势图",
      calendar: "考勤日历", month: "月份", clerk: "工作人员", noClerk: "这个月没有考勤数据。",
      am: "上午", pm: "下午", weekdays: "一二三四五六日",
      normal: "正常", late: "迟到", early_leave: "早退", late_and_early_leave: "迟到、早退", missing_punch: "缺卡",
      absent: "旷工", on_leave: "请假", non_working: "休息日", pending: "未结束",
      sumLate: "迟到", sumEarly: "早退", sumAbsent: "旷工（半天）", times: "次"
    },
    en: {
      title: "Window review", back: "Back to live", day: "Day", window: "Window", all: "All windows", show: "Show",
      speed: "Replay speed", play: "Replay", stop: "Stop", timeline: "The day's timeline", marks: "Alerts, ratings and punches",
      time: "Time", what: "What", heat: "Occupancy per hour", from: "From", to: "To", loading: "Loading…",
      login: "Log in on the live page first.", failed: "Could not load: ", empty: "No data for this day.",
      staffed: "staffed", vacant: "vacant", paused: "paused", unknown: "unknown", closed: "closed",
      alert: "alert", rating: "rating", punch: "punch", acked: "acknowledged", stars: "★", hour: "h", nodata: "—",
      at: "At",
      trend: "Rating trends", trendTable: "Ratings per day", hallAll: "Whole hall", rated: "Counted", satisfied: "Satisfied", satRate: "Satisfaction",
      bad: "Bad", badRate: "Bad rate", noRatings: "No ratings in this range.", trendChart: "Rating trend chart",
      calendar: "Attendance calendar", month: "Month", clerk: "Clerk", noClerk: "No attendance for this month.",
      am: "AM", pm: "PM", weekdays: "MTWTFSS",
      normal: "normal", late: "late", early_leave: "left early", late_and_early_leave: "late, left early", missing_punch: "missing punch",
      absent: "absent", on_leave: "on leave", non_working: "rest day", pending: "not over",
      sumLate: "late", sumEarly: "early", sumAbsent: "absent half-days", times: "×"
    }
  };
  var STATES = ["staffed", "vacant", "paused", "unknown", "closed"];
  var ATTENDANCE = ["normal", "late", "early_leave", "late_and_early_leave", "missing_punch", "absent", "on_leave", "non_working", "pending"];
  var ATT_ICONS = { normal: "✓", late: "迟", early_leave: "早", late_and_early_leave: "迟早", missing_punch: "缺", absent: "旷", on_leave: "假", non_working: "休", pending: "…" };
  var trendLoaded = null, monthLoaded = null;
  var DAY_START = 7, DAY_END = 19; // hours shown on the axis
  var lang = /[?&]lang=en/.test(location.search) ? "en" : "zh";
  var loaded = null, timer = null;

  function t(key) { return TEXT[lang][key] || key; }
  var $ = HallWatchPage.$, el = HallWatchPage.el;
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
    var calLegend = $("cal-legend");
    calLegend.textContent = "";
    ATTENDANCE.forEach(function (status) {
      var item = el("li");
      item.appendChild(el("span", "att-icon att-" + status, ATT_ICONS[status]));
      item.appendChild(el("span", null, t(status)));
      calLegend.appendChild(item);
    });
    var trendLegend = $("trend-legend");
    trendLegend.textContent = "";
    [["line-sat", "●", "satRate"], ["line-bad", "■", "badRate"]].forEach(function (l) {
      var item = el("li");
      item.appendChild(el("span", "line-key " + l[0], "—" + l[1] + "—"));
      item.appendChild(el("span", null, t(l[2])));
      trendLegend.appendChild(item);
    });
  }

  function get(url) {
    return HallWatchPage.call(url).catch(function (error) {
      if (error.status === 401) error.message = t("login");
      throw error;
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
    get(HALL + "/api/review/day?" + query).then(drawDay, function (error) { status(t("failed") + error.message); });
  }

  function loadHeat(event) {
    if (event) event.preventDefault();
    get(HALL + "/api/review/occupancy?from=" + encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value)).then(drawHeat, function (error) { status(t("failed") + error.message); });
  }

  // ---------------------------------------------------------------- rating trends (评价趋势)
  function percent(rate) { return rate === null || rate === undefined ? t("nodata") : (Math.round(rate * 1000) / 10) + "%"; }

  function trendDays(data, windowId) {
    var byDay = {};
    data.rows.forEach(function (row) {
      if (windowId && row.key !== windowId) return;
      var d = byDay[row.period] || (byDay[row.period] = { day: row.period, rated: 0, satisfied: 0, bad: 0 });
      d.rated += row.rated; d.satisfied += row.satisfied; d.bad += row.bad;
    });
    var days = [], day = new Date(data.from + "T00:00:00Z"), last = new Date(data.to + "T00:00:00Z");
    for (; day <= last; day = new Date(day.getTime() + 86400000)) {
      var key = day.toISOString().slice(0, 10);
      var d = byDay[key] || { day: key, rated: 0, satisfied: 0, bad: 0 };
      d.satisfaction = d.rated ? d.satisfied / d.rated : null;
      d.badRate = d.rated ? d.bad / d.rated : null;
      days.push(d);
    }
    return days;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawTrend() {
    if (!trendLoaded) return;
    var days = trendDays(trendLoaded, $("trend-window").value);
    var rows = $("trend-table").querySelector("tbody"), chart = $("trend-chart");
    rows.textContent = "";
    chart.textContent = "";
    days.forEach(function (d) {
      var tr = el("tr");
      tr.setAttribute("data-day", d.day);
      tr.appendChild(el("th", null, d.day)).setAttribute("scope", "row");
      [d.rated, d.satisfied, percent(d.satisfaction), d.bad, percent(d.badRate)].forEach(function (v) { tr.appendChild(el("td", "num", String(v))); });
      rows.appendChild(tr);
    });
    var any = days.some(function (d) { return d.rated > 0; });
    $("trend-status").textContent = any ? "" : t("noRatings");
    var W = 640, H = 200, L = 44, R = 12, T = 12, B = 28, n = days.length;
    var x = function (i) { return L + (n > 1 ? (i * (W - L - R)) / (n - 1) : (W - L - R) / 2); };
    var y = function (rate) { return T + (1 - rate) * (H - T - B); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "trend-svg", role: "img" });
    root.setAttribute("aria-label", t("trendChart") + "：" + days.filter(function (d) { return d.rated; }).map(function (d) {
      return d.day + " " + t("rated") + " " + d.rated + "，" + t("satRate") + " " + percent(d.satisfaction) + "，" + t("badRate") + " " + percent(d.badRate);
    }).join("；"));
    [0, 0.5, 1].forEach(function (g) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(g), y2: y(g), class: "grid" }));
      root.appendChild(svg("text", { x: L - 6, y: y(g) + 4, "text-anchor": "end", class: "axis" }, Math.round(g * 100) + "%"));
    });
    var step = Math.max(1, Math.ceil(n / 10));
    days.forEach(function (d, i) {
      if (i % step === 0 || i === n - 1) root.appendChild(svg("text", { x: x(i), y: H - 8, "text-anchor": "middle", class: "axis" }, d.day.slice(5)));
    });
    [["satisfaction", "line-sat"], ["badRate", "line-bad"]].forEach(function (series) {
      var points = [];
      days.forEach(function (d, i) { if (d[series[0]] !== null) points.push([x(i), y(d[series[0]]), d]); });
      if (points.length > 1) root.appendChild(svg("polyline", { points: points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" "), class: series[1] }));
      points.forEach(function (p) {
        var mark = series[1] === "line-sat" ? svg("circle", { cx: p[0], cy: p[1], r: 4, class: series[1] + " dot" }) : svg("rect", { x: p[0] - 4, y: p[1] - 4, width: 8, height: 8, class: series[1] + " dot" });
        mark.appendChild(svg("title", {}, p[2].day + " " + t(series[1] === "line-sat" ? "satRate" : "badRate") + " " + percent(p[2][series[0]])));
        root.appendChild(mark);
      });
    });
    chart.appendChild(root);
  }

  function loadTrend(event) {
    if (event) event.preventDefault();
    $("trend-status").textContent = t("loading");
    get(HALL + "/api/ratings/stats?by=window&period=day&from=" + encodeURIComponent($("trend-from").value) + "&to=" + encodeURIComponent($("trend-to").value)).then(function (data) {
      trendLoaded = data;
      drawTrend();
    }, function (error) { $("trend-status").textContent = t("failed") + error.message; });
  }

  // ---------------------------------------------------------------- attendance calendar (考勤日历)
  function halfText(h) { return (h.session ? h.session + " " : "") + t(h.status); }

  function drawCalendar() {
    var box = $("calendar");
    box.textContent = "";
    if (!monthLoaded) return;
    var person = null;
    monthLoaded.people.forEach(function (p) { if (p.person_id === $("cal-clerk").value) person = p; });
    if (!person) { $("cal-status").textContent = t("noClerk"); return; }
    $("cal-status").textContent = "";
    var table = el("table", "cal-table");
    table.setAttribute("data-person", person.person_id);
    table.appendChild(el("caption", null, (person.name === person.person_id ? person.name : person.name + "（" + person.person_id + "）") + " " + monthLoaded.year + "-" + ("0" + monthLoaded.month).slice(-2) + " · " +
      t("sumLate") + " " + person.summary.late + t("times") + "，" + t("sumEarly") + " " + person.summary.early + t("times") + "，" + t("sumAbsent") + " " + person.summary.absent_halfdays));
    var head = el("tr");
    t("weekdays").split("").forEach(function (w) { head.appendChild(el("th", null, w)).setAttribute("scope", "col"); });
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody"), tr = el("tr");
    var first = new Date(person.days.length ? person.days[0].day + "T00:00:00Z" : Date.UTC(monthLoaded.year, monthLoaded.month - 1, 1));
    var lead = (first.getUTCDay() + 6) % 7;
    for (var i = 0; i < lead; i++) tr.appendChild(el("td", "cal-blank"));
    person.days.forEach(function (d) {
      if (tr.children.length === 7) { body.appendChild(tr); tr = el("tr"); }
      var statuses = d.working ? d.halves.map(function (h) { return h.status; }) : ["non_working"];
      var td = el("td", "cal-day" + (d.working ? "" : " cal-rest"));
      td.setAttribute("data-day", d.day);
      td.setAttribute("data-status", statuses.join(" "));
      td.appendChild(el("span", "cal-num", String(Number(d.day.slice(8)))));
      if (!d.working) {
        td.appendChild(el("span", "cal-half att-non_working", ATT_ICONS.non_working + " " + t("non_working")));
      } else {
        d.halves.forEach(function (h, k) {
          var line = el("span", "cal-half att-" + h.status);
          line.appendChild(el("span", "att-icon", ATT_ICONS[h.status] || "?"));
          line.appendChild(document.createTextNode(" " + (d.halves.length === 2 ? t(k ? "pm" : "am") + " " : "") + t(h.status) +
            (h.late_s ? " " + Math.ceil(h.late_s / 60) + "′" : "")));
          line.title = halfText(h) + (h.clock_in ? " ↦" + hhmm(h.clock_in) : "") + (h.clock_out ? " ↤" + hhmm(h.clock_out) : "");
          td.appendChild(line);
        });
      }
      td.setAttribute("aria-label", d.day + " " + (d.working ? d.halves.map(halfText).join("，") : t("non_working")));
      tr.appendChild(td);
    });
    while (tr.children.length < 7) tr.appendChild(el("td", "cal-blank"));
    body.appendChild(tr);
    table.appendChild(body);
    box.appendChild(table);
  }

  function loadCalendar(event) {
    if (event) event.preventDefault();
    var parts = $("cal-month").value.split("-"), year = Number(parts[0]), month = Number(parts[1]);
    $("cal-status").textContent = t("loading");
    get(HALL + "/api/attendance/" + year + "/" + month).then(function (people) {
      monthLoaded = { year: year, month: month, people: people };
      var select = $("cal-clerk"), chosen = select.value || new URLSearchParams(location.search).get("clerk");
      select.textContent = "";
      people.forEach(function (p) {
        var option = el("option", null, p.name === p.person_id ? p.name : p.name + "（" + p.person_id + "）");
        option.value = p.person_id;
        select.appendChild(option);
      });
      if (chosen && people.some(function (p) { return p.person_id === chosen; })) select.value = chosen;
      drawCalendar();
    }, function (error) { $("cal-status").textContent = t("failed") + error.message; });
  }

  function start() {
    var today = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10); // hall time, Asia/Shanghai
    var params = new URLSearchParams(location.search);
    $("day").value = params.get("day") || today;
    $("from").value = params.get("from") || $("day").value;
    $("to").value = params.get("to") || $("day").value;
    var weekAgo = new Date(Date.parse($("day").value + "T00:00:00Z") - 6 * 86400000).toISOString().slice(0, 10);
    $("trend-from").value = params.get("from") || weekAgo;
    $("trend-to").value = params.get("to") || $("day").value;
    $("cal-month").value = params.get("month") || $("day").value.slice(0, 7);
    translate();
    $("lang-toggle").addEventListener("click", function () { lang = lang === "zh" ? "en" : "zh"; translate(); if (loaded) drawDay(loaded); drawTrend(); drawCalendar(); });
    $("pick").addEventListener("submit", loadDay);
    $("range").addEventListener("submit", loadHeat);
    $("play").addEventListener("click", replay);
    $("trend-pick").addEventListener("submit", loadTrend);
    $("trend-window").addEventListener("change", drawTrend);
    $("cal-pick").addEventListener("submit", loadCalendar);
    $("cal-clerk").addEventListener("change", drawCalendar);
    get(HALL + "/api/windows").then(function (windows) {
      windows.forEach(function (w) {
        var option = el("option", null, w.name);
        option.value = w.id;
        $("window").appendChild(option);
        var again = el("option", null, w.name);
        again.value = w.id;
        $("trend-window").appendChild(again);
      });
      if (params.get("window")) $("window").value = params.get("window");
      loadDay();
      loadHeat();
      loadTrend();
      loadCalendar();
    }, function (error) { status(t("failed") + error.message); });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
