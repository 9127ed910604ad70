/*
 * HallWatch 区级总览 (district overview): one row per hall, the worst on top
 * (most active alerts, then vacant windows, then people absent so far, then
 * devices not online), each linking to that hall's live page.
 *
 * Data: GET /api/halls (the district's name), GET /api/district/overview
 * (the halls the logged-in user may see). Refreshed every 30 s.
 */
(function () {
  "use strict";

  var P = HallWatchPage;
  var REFRESH_MS = 30000;

  function cell(row, text, cls) {
    var td = P.el("td", cls || "", String(text));
    row.appendChild(td);
    return td;
  }

  function draw(data) {
    var body = P.$("district-halls").querySelector("tbody");
    body.textContent = "";
    data.halls.forEach(function (h) {
      var row = P.el("tr");
      row.setAttribute("data-hall", h.id);
      var name = P.el("th");
      name.setAttribute("scope", "row");
      var link = P.el("a", "", h.name);
      link.href = h.page;
      name.appendChild(link);
      row.appendChild(name);
      ["staffed", "paused", "vacant", "unknown"].forEach(function (s) { cell(row, h.windows[s], s === "vacant" && h.windows[s] ? "bad" : ""); });
      cell(row, h.active_alerts, h.active_alerts ? "bad" : "");
      var a = h.attendance;
      cell(row, a.arrived + "/" + a.expected);
      cell(row, a.late, a.late ? "bad" : "");
      cell(row, a.absent, a.absent ? "bad" : "");
      cell(row, h.ratings.rated);
      cell(row, h.ratings.bad, h.ratings.bad ? "bad" : "");
      cell(row, h.ratings.open_orders);
      cell(row, h.devices.online);
      var down = h.devices.offline + h.devices.stale;
      cell(row, down, down ? "bad" : "");
      body.appendChild(row);
    });
    P.$("district-day").textContent = data.day;
    P.$("district-halls").hidden = false;
    P.$("district-status").textContent = "";
  }

  function refresh() {
    P.call("/api/district/overview").then(draw, function (error) {
      P.$("district-status").textContent = error.status === 401 ? "请先在实时监控页面登录" : "区级总览加载失败：" + error.message;
    });
  }

  P.call("/api/halls").then(function (d) {
    P.$("district-name").textContent = d.district.name + " · 区级总览";
    document.title = d.district.name + " · 区级总览 · HallWatch";
  }, function () { /* the overview says why */ });
  refresh();
  window.setInterval(refresh, REFRESH_MS);
})();
