/*
 * HallWatch work page (工单、巡查与证据): bad-rating work orders with their
 * deadlines and the steps the user may take, the day's patrol rounds and
 * findings, and the evidence pictures.
 *
 * Data: GET /api/session (permissions), GET /api/work-orders,
 * POST /api/work-orders/{id}/{action} {note}, GET /api/findings,
 * POST /api/findings/{id}/{action} {reason}, GET /api/finding-categories,
 * POST /api/findings (an officer's own), POST /api/patrols (start a round),
 * POST /api/patrols/{id}/finish, GET /api/patrols?day=,
 * GET /api/patrols/{id}, /api/bulletins/{monday}.xlsx, GET /api/evidence,
 * GET /api/evidence/{id}. Chinese first; ?lang=en or the button switches to
 * English. Status is always a word, overdue a word and an icon. A window
 * lead is offered steps only on their own department's records.
 */
(function () {
  "use strict";
  // A hall's page is served under /halls/<id>/ and calls that hall's API there; at / it is the district centre's.
  var HALL = (window.location.pathname.match(/^\/halls\/[a-z0-9][a-z0-9_-]*/) || [""])[0];

  var TEXT = {
    zh: {
      title: "工单、巡查与证据", back: "返回实时监控", review: "回看", orders: "差评工单", patrols: "巡查记录", evidence: "证据",
      login: "请先在实时监控页面登录", status: "状态", allStatus: "全部", onlyOverdue: "只看超期", show: "查看", day: "日期",
      window: "窗口", allWindows: "全部窗口", bulletin: "本周巡查通报（xlsx）", loading: "加载中…", failed: "加载失败：",
      noOrders: "没有工单。", noRounds: "这一天没有巡查记录。", noEvidence: "没有证据照片。",
      clerk: "工作人员", level: "评价", created: "评价时间", callbackDue: "回访期限", rectifyDue: "整改期限", ticket: "票号",
      overdue: "已超期", overdue_callback: "回访超期", overdue_rectify: "整改超期", note: "处理说明", needNote: "请先填写处理说明。",
      done: "已完成：", noActions: "（无可执行的操作）", history: "经过",
      kind: "类型", name: "轮次", officer: "巡查人", started: "开始", ended: "结束", minutes: "分钟", details: "详情",
      scheduled: "应巡查轮次", doneRound: "已巡", missing: "未巡", finding: "问题", category: "类别", observed: "时间",
      noFindings: "本轮未发现问题。", checklist: "检查清单", state: "状态", inProgress: "进行中",
      cause: "原因", taken: "拍摄时间", vacancy: "空岗", request: "调取", picture: "证据照片", of: "的",
      role: "角色", findings: "巡查发现", noFindingsAll: "没有巡查发现。", origin: "来源", origin_device: "设备告警", origin_officer: "巡查员记录",
      basis: "依据", disputeBy: "异议期限", needReason: "请先填写理由。", otherDepartment: "（其他部门的事项，只能查看）", noDepartment: "（您的账号尚未设置所属部门，请联系系统管理员）",
      recordTitle: "记录问题", newNote: "情况描述", round: "巡查轮次", noRound: "（不属于某一轮）", record: "记录", recorded: "已记录：",
      kindHall: "大厅巡查", kindCctv: "监控巡查", unscheduled: "计划外", startRound: "开始巡查", started_: "已开始：", finish: "结束", finished: "已结束：",
      st_draft: "待确认", st_confirmed: "已确认", st_disputed: "异议核实中", st_upheld: "异议不成立", st_overturned: "异议成立，已撤销", st_rectified: "已整改", st_dismissed: "已排除",
      os_assigned: "待回访", os_called_back: "已回访核实", os_rectified: "已整改", os_closed: "已办结", os_appealed: "申诉中", os_upheld: "申诉不成立", os_overturned: "申诉成立", os_withdrawn: "已撤销"
    },
    en: {
      title: "Work orders, patrols and evidence", back: "Back to live", review: "Review", orders: "Work orders", patrols: "Patrol records", evidence: "Evidence",
      login: "Log in on the live page first", status: "Status", allStatus: "All", onlyOverdue: "Overdue only", show: "Show", day: "Day",
      window: "Window", allWindows: "All windows", bulletin: "This week's patrol bulletin (xlsx)", loading: "Loading…", failed: "Could not load: ",
      noOrders: "No work orders.", noRounds: "No patrol rounds on this day.", noEvidence: "No evidence pictures.",
      clerk: "Clerk", level: "Rating", created: "Rated at", callbackDue: "Call back by", rectifyDue: "Rectify by", ticket: "Ticket",
      overdue: "Overdue", overdue_callback: "call-back overdue", overdue_rectify: "rectification overdue", note: "Note", needNote: "Write a note first.",
      done: "Done: ", noActions: "(no step you may take)", history: "History",
      kind: "Kind", name: "Round", officer: "Officer", started: "Started", ended: "Ended", minutes: "min", details: "Details",
      scheduled: "Scheduled rounds", doneRound: "done", missing: "not done", finding: "Finding", category: "Category", observed: "Time",
      noFindings: "No findings in this round.", checklist: "Checklist", state: "State", inProgress: "in progress",
      cause: "Cause", taken: "Taken at", vacancy: "vacancy", request: "requested", picture: "Evidence picture", of: "",
      role: "Role", findings: "Findings", noFindingsAll: "No findings.", origin: "Source", origin_device: "device alert", origin_officer: "recorded by an officer",
      basis: "Rule", disputeBy: "Dispute by", needReason: "Write the reason first.", otherDepartment: "(another department's: read only)", noDepartment: "(your account has no department yet: ask the administrator)",
      recordTitle: "Record a finding", newNote: "What was seen", round: "Round", noRound: "(no round)", record: "Record", recorded: "Recorded: ",
      kindHall: "Hall patrol", kindCctv: "CCTV patrol", unscheduled: "unscheduled", startRound: "Start a round", started_: "Started: ", finish: "Finish", finished: "Finished: ",
      st_draft: "draft", st_confirmed: "confirmed", st_disputed: "disputed (re-check)", st_upheld: "dispute rejected", st_overturned: "dispute accepted (withdrawn)", st_rectified: "rectified", st_dismissed: "dismissed",
      os_assigned: "assigned (awaiting call-back)", os_called_back: "called back", os_rectified: "rectified", os_closed: "closed", os_appealed: "under appeal", os_upheld: "appeal rejected", os_overturned: "appeal accepted (not counted)", os_withdrawn: "withdrawn (duplicate)"
    }
  };
  var ACTION_EN = { call_back: "Call back", rectify: "Rectify", close: "Close", appeal: "Appeal", uphold: "Reject appeal", overturn: "Accept appeal" };
  var STEP_PERMISSIONS = {
    call_back: "work_orders.handle", rectify: "work_orders.handle", appeal: "work_orders.handle",
    close: "work_orders.decide", uphold: "work_orders.decide", overturn: "work_orders.decide"
  };
  var FINDING_ACTIONS = {
    confirm: { permission: "patrols.run", zh: "确认", en: "Confirm" },
    dismiss: { permission: "patrols.run", zh: "排除", en: "Dismiss" },
    dispute: { permission: "findings.dispute", zh: "提出异议", en: "Dispute" },
    uphold: { permission: "findings.decide", zh: "异议不成立", en: "Reject dispute" },
    overturn: { permission: "findings.decide", zh: "异议成立", en: "Accept dispute" },
    rectify: { permission: "findings.rectify", zh: "已整改", en: "Rectified" }
  };
  var lang = /[?&]lang=en/.test(location.search) ? "en" : "zh";
  var permissions = [], session = null, orders = null, findings = null, rounds = null, round = null, pictures = null, errors = {};
  var categories = [];

  function t(key) { return TEXT[lang][key] || key; }
  var $ = HallWatchPage.$, el = HallWatchPage.el;
  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "—"; }
  function hhmm(iso) { return iso ? iso.slice(11, 16) : "—"; }
  // A work order's (os_) or a finding's (st_) status: the server's Chinese, or the page's English.
  function statusText(code, zh) { return lang === "zh" ? zh : t("os_" + code); }
  function findingStatusText(code, zh) { return lang === "zh" ? zh : t("st_" + code); }

  // Logged out (the session ended): say where to log in.
  function call(url, options) {
    return HallWatchPage.call(url, options).catch(function (error) {
      if (error.status === 401) { $("login-needed").hidden = false; error.message = t("login"); }
      throw error;
    });
  }
  function get(url) { return call(url); }
  function post(url, body) { return call(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }); }

  function say(id, text, error) {
    var node = $(id);
    node.textContent = text || "";
    node.className = "work-status" + (error ? " work-error" : "");
  }

  function translate() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) { node.textContent = t(node.getAttribute("data-i18n")); });
    $("lang-toggle").textContent = lang === "zh" ? "English" : "中文";
    $("lang-toggle").setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
    drawWho();
    if (orders) drawOrders(orders);
    fillCategories();
    if (findings) drawFindings(findings);
    if (rounds) drawRounds(rounds);
    if (round) drawRound(round);
    if (pictures) drawEvidence(pictures);
  }

  function drawWho() {
    $("who").textContent = session ? session.username + "（" + (lang === "zh" ? session.role_zh : session.role) + "）" : "";
  }

  // ------------------------------------------------------------ work orders

  function field(dl, label, value, cls) {
    dl.appendChild(el("dt", null, label));
    dl.appendChild(el("dd", cls, value));
  }

  // A window lead changes only their own department's records (the API refuses the rest too).
  function mayChange(department) {
    return !session || session.role !== "lead" || session.department === department;
  }

  // The note, one button per step the user may take, and a line for the API's refusal: for work orders and findings alike.
  // ``steps`` are those the role allows; a window lead sees them only on their own department's records.
  function stepBox(card, key, department, steps, onStep) {
    if (steps.length && !mayChange(department)) { card.appendChild(el("p", "order-none", t(session.department ? "otherDepartment" : "noDepartment"))); return; }
    if (!steps.length) { card.appendChild(el("p", "order-none", t("noActions"))); return; }
    var actions = el("div", "order-actions");
    var label = el("label", null, t("note"));
    label.setAttribute("for", key + "-note");
    var note = el("textarea", "order-note");
    note.id = key + "-note";
    actions.appendChild(label);
    actions.appendChild(note);
    var problem = el("p", "order-error", errors[key] || "");
    problem.setAttribute("role", "alert");
    steps.forEach(function (s) {
      var button = el("button", "order-action", s.label);
      button.type = "button";
      button.setAttribute("data-action", s.name);
      button.addEventListener("click", function () { onStep(s.name, note, problem); });
      actions.appendChild(button);
    });
    card.appendChild(actions);
    card.appendChild(problem);
  }

  // One request at a time per card: its buttons wait for the answer (a double press would meet a 409).
  function take(key, url, body, problem, done) {
    var buttons = problem.parentNode.querySelectorAll(".order-action");
    function enable(on) { Array.prototype.forEach.call(buttons, function (b) { b.disabled = !on; }); }
    enable(false);
    problem.textContent = "";
    post(url, body).then(function (changed) { delete errors[key]; done(changed); }, function (error) {
      enable(true);
      errors[key] = error.status + " " + error.message;
      problem.textContent = errors[key];
    });
  }

  // After a step the card is drawn anew: focus its next step, or its title when none is left.
  function focusCard(selector) {
    var card = document.querySelector(selector);
    var next = card && (card.querySelector(".order-action") || card.querySelector("h3"));
    if (!next) return;
    if (!next.matches("button")) next.tabIndex = -1;
    next.focus();
  }

  function drawOrders(list) {
    orders = list;
    var box = $("order-list");
    box.textContent = "";
    say("orders-status", list.length ? "" : t("noOrders"));
    list.forEach(function (o) { box.appendChild(orderCard(o)); });
  }

  // A card drawn anew after its step replaces only itself: notes being written on the others stay.
  function redraw(selector, card) {
    var old = document.querySelector(selector);
    if (old) old.parentNode.replaceChild(card, old);
    focusCard(selector);
  }

  function orderCard(o) {
    var card = el("article", "order" + (o.overdue.length ? " is-overdue" : ""));
    card.setAttribute("data-order-id", o.id);
    card.setAttribute("data-status", o.status);
    card.setAttribute("aria-labelledby", "order-" + o.id + "-title");
    var title = el("h3");
    title.id = "order-" + o.id + "-title";
    title.appendChild(document.createTextNode("#" + o.id + " " + o.window_name + (o.department ? "（" + o.department + "）" : "") + " "));
    title.appendChild(el("span", "order-status", statusText(o.status, o.status_zh)));
    if (o.overdue.length) {
      var late = el("span", "overdue", " ⚠ " + t("overdue") + "：" + o.overdue.map(function (k) { return t("overdue_" + k); }).join("、"));
      title.appendChild(late);
    }
    card.appendChild(title);
    var dl = el("dl");
    field(dl, t("clerk"), o.clerk_id || "—");
    field(dl, t("level"), (lang === "zh" ? o.level_zh : "★" + o.level) + "（" + o.level + "）");
    field(dl, t("created"), when(o.rated_at));
    field(dl, t("ticket"), o.ticket || "—");
    field(dl, t("callbackDue"), o.callback_due || o.deadline_error || "—", o.overdue.indexOf("callback") >= 0 ? "overdue" : null);
    field(dl, t("rectifyDue"), o.rectify_due || o.deadline_error || "—", o.overdue.indexOf("rectify") >= 0 ? "overdue" : null);
    card.appendChild(dl);
    if (o.history && o.history.length) {
      var steps = o.history.map(function (s) { return when(s.at) + " " + statusText(s.status, s.status_zh) + (s.actor ? " · " + s.actor : "") + (s.note ? " · " + s.note : ""); });
      card.appendChild(el("p", "order-history", t("history") + "：" + steps.join("；")));
    }
    var allowed = o.actions.filter(function (a) { return permissions.indexOf(STEP_PERMISSIONS[a.name]) >= 0; });
    stepBox(card, "order-" + o.id, o.department, allowed.map(function (a) { return { name: a.name, label: lang === "zh" ? a.name_zh : ACTION_EN[a.name] || a.name }; }),
      function (action, note, problem) { step(o, action, note, problem); });
    return card;
  }

  function step(order, action, note, problem) {
    var text = note.value.trim();
    if (!text) { problem.textContent = t("needNote"); note.focus(); return; }
    take("order-" + order.id, HALL + "/api/work-orders/" + order.id + "/" + action, { note: text }, problem, function (changed) {
      orders = orders.map(function (o) { return o.id === changed.id ? changed : o; });
      say("orders-status", t("done") + "#" + changed.id + " " + statusText(changed.status, changed.status_zh));
      redraw('[data-order-id="' + changed.id + '"]', orderCard(changed));
    });
  }

  function loadOrders(event) {
    if (event) event.preventDefault();
    say("orders-status", t("loading"));
    var query = [];
    if ($("order-status").value) query.push("status=" + encodeURIComponent($("order-status").value));
    if ($("order-overdue").checked) query.push("overdue=true");
    get(HALL + "/api/work-orders" + (query.length ? "?" + query.join("&") : "")).then(drawOrders, function (error) { say("orders-status", t("failed") + error.message, true); });
  }

  // ------------------------------------------------------------ findings

  function findingStatus(f) { return findingStatusText(f.status, f.status_zh); }
  function findingCategory(f) { return lang === "zh" ? f.category_zh : f.category_en || f.category; }

  function drawFindings(list) {
    findings = list;
    var box = $("finding-list");
    box.textContent = "";
    say("findings-status", list.length ? "" : t("noFindingsAll"));
    list.forEach(function (f) { box.appendChild(findingCard(f)); });
  }

  function findingCard(f) {
    var card = el("article", "order finding");
    card.setAttribute("data-finding-id", f.id);
    card.setAttribute("data-status", f.status);
    card.setAttribute("aria-labelledby", "finding-" + f.id + "-title");
    var title = el("h3");
    title.id = "finding-" + f.id + "-title";
    title.appendChild(document.createTextNode("#" + f.id + " " + f.window_name + (f.department ? "（" + f.department + "）" : "") + " " + findingCategory(f) + " "));
    title.appendChild(el("span", "order-status", findingStatus(f)));
    card.appendChild(title);
    var dl = el("dl");
    field(dl, t("observed"), when(f.observed_at) + (f.observed_until ? " – " + hhmm(f.observed_until) : ""));
    field(dl, t("origin"), t("origin_" + f.origin));
    field(dl, t("finding"), f.note || "—");
    field(dl, t("basis"), f.basis || "—");
    if (f.confirmed_at) field(dl, t("disputeBy"), f.dispute_deadline || f.dispute_deadline_error || "—");
    card.appendChild(dl);
    if (f.history.length) {
      var steps = f.history.map(function (s) { return when(s.at) + " " + findingStatusText(s.status, s.status_zh) + " · " + s.actor + (s.reason ? " · " + s.reason : ""); });
      card.appendChild(el("p", "order-history", t("history") + "：" + steps.join("；")));
    }
    var allowed = f.actions.filter(function (a) { return FINDING_ACTIONS[a] && permissions.indexOf(FINDING_ACTIONS[a].permission) >= 0; });
    stepBox(card, "finding-" + f.id, f.department, allowed.map(function (a) { return { name: a, label: FINDING_ACTIONS[a][lang] }; }),
      function (action, note, problem) { findingStep(f, action, note, problem); });
    return card;
  }

  function findingStep(finding, action, note, problem) {
    var text = note.value.trim();
    if (!text && action !== "confirm") { problem.textContent = t("needReason"); note.focus(); return; }
    var body = action === "confirm" ? { note: text } : { reason: text };
    take("finding-" + finding.id, HALL + "/api/findings/" + finding.id + "/" + action, body, problem, function (changed) {
      findings = findings.map(function (f) { return f.id === changed.id ? changed : f; });
      say("findings-status", t("done") + "#" + changed.id + " " + findingStatus(changed));
      redraw('[data-finding-id="' + changed.id + '"]', findingCard(changed));
    });
  }

  function loadFindings(event) {
    if (event) event.preventDefault();
    say("findings-status", t("loading"));
    var query = ["limit=200"];
    if ($("finding-status").value) query.push("status=" + encodeURIComponent($("finding-status").value));
    if ($("finding-window").value) query.push("window=" + encodeURIComponent($("finding-window").value));
    get(HALL + "/api/findings?" + query.join("&")).then(drawFindings, function (error) { say("findings-status", t("failed") + error.message, true); });
  }

  // ------------------------------------------------------------ patrols

  function monday(day) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    return d.toISOString().slice(0, 10);
  }

  function drawRounds(data) {
    rounds = data;
    fillRoundChoices(data);
    var box = $("patrol-list");
    box.textContent = "";
    if (data.calendar_error) box.appendChild(el("p", "work-error", data.calendar_error));
    if (data.scheduled.length) {
      var due = el("p", null, t("scheduled") + "：" + data.scheduled.map(function (s) {
        return s.name + " " + hhmm(s.at) + " " + (s.round_id ? "✔ " + t("doneRound") : "✘ " + t("missing"));
      }).join("；"));
      box.appendChild(due);
    }
    if (!data.rounds.length) { say("patrols-status", t("noRounds")); return; }
    say("patrols-status", "");
    var table = el("table");
    var head = el("tr");
    ["kind", "name", "officer", "started", "ended", "minutes", "details"].forEach(function (k) { var th = el("th", null, t(k)); th.scope = "col"; head.appendChild(th); });
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    data.rounds.forEach(function (r) {
      var tr = el("tr");
      tr.setAttribute("data-round-id", r.id);
      tr.appendChild(el("td", null, lang === "zh" ? r.kind_zh : r.kind));
      tr.appendChild(el("td", null, r.name || "—"));
      tr.appendChild(el("td", null, r.officer));
      tr.appendChild(el("td", null, hhmm(r.started_at)));
      tr.appendChild(el("td", null, r.ended_at ? hhmm(r.ended_at) : t("inProgress")));
      tr.appendChild(el("td", null, r.minutes === null ? "—" : String(r.minutes)));
      var cell = el("td");
      if (!r.ended_at && permissions.indexOf("patrols.run") >= 0) {
        var finish = el("button", "round-finish", t("finish"));
        finish.type = "button";
        finish.addEventListener("click", function () {
          finish.disabled = true;
          post(HALL + "/api/patrols/" + r.id + "/finish", {}).then(function (view) {
            loadPatrols(null, t("finished") + (lang === "zh" ? view.kind_zh : view.kind) + " " + (view.name || "") + " " + hhmm(view.ended_at));
          }, function (error) { finish.disabled = false; say("patrols-status", error.status + " " + error.message, true); });
        });
        cell.appendChild(finish);
      }
      var open = el("button", "round-open", t("details"));
      open.type = "button";
      open.addEventListener("click", function () { get(HALL + "/api/patrols/" + r.id).then(drawRound, function (error) { say("patrols-status", t("failed") + error.message, true); }); });
      cell.appendChild(open);
      tr.appendChild(cell);
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.appendChild(table);
  }

  function drawRound(view) {
    round = view;
    var box = $("round-detail");
    box.textContent = "";
    box.appendChild(el("h3", null, t("checklist") + " · " + (lang === "zh" ? view.kind_zh : view.kind) + " " + (view.name || "") + " " + hhmm(view.started_at)));
    var findings = [];
    var table = el("table");
    var head = el("tr");
    ["window", "state", "finding"].forEach(function (k) { var th = el("th", null, t(k)); th.scope = "col"; head.appendChild(th); });
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    view.checklist.forEach(function (e) {
      var tr = el("tr");
      tr.appendChild(el("td", null, e.window_name));
      tr.appendChild(el("td", null, lang === "zh" ? e.state_zh : e.state));
      tr.appendChild(el("td", null, e.findings.length ? e.findings.map(function (f) {
        findings.push(f);
        return "#" + f.id + " " + findingCategory(f) + " · " + findingStatus(f) + " · " + hhmm(f.observed_at);
      }).join("；") : "—"));
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.appendChild(table);
    if (!findings.length) box.appendChild(el("p", null, t("noFindings")));
  }

  // ``message``: what to say once the rounds are drawn (the step that made the reload).
  function loadPatrols(event, message) {
    if (event && event.preventDefault) event.preventDefault();
    var day = $("patrol-day").value; // empty at first: the server answers with the hall's today
    $("round-detail").textContent = "";
    round = null;
    say("patrols-status", t("loading"));
    get(HALL + "/api/patrols" + (day ? "?day=" + encodeURIComponent(day) : "")).then(function (data) {
      $("patrol-day").value = data.day;
      $("bulletin-link").href = HALL + "/api/bulletins/" + monday(data.day) + ".xlsx";
      drawRounds(data);
      if (message) say("patrols-status", message);
    }, function (error) { say("patrols-status", t("failed") + error.message, true); });
  }

  // The officer's forms: start a round (a scheduled one or not) and record what is seen.
  function fillRoundChoices(data) {
    var names = $("round-name"), open = $("new-round");
    while (names.options.length > 1) names.remove(1);
    data.scheduled.forEach(function (s) {
      if (s.round_id) return; // done already
      var option = el("option", null, s.name + " " + hhmm(s.at));
      option.value = s.name;
      names.appendChild(option);
    });
    var chosen = open.value;
    while (open.options.length > 1) open.remove(1);
    data.rounds.filter(function (r) { return !r.ended_at || r.kind === "hall"; }).forEach(function (r) {
      var option = el("option", null, (lang === "zh" ? r.kind_zh : r.kind) + " " + (r.name || "") + " " + hhmm(r.started_at));
      option.value = String(r.id);
      open.appendChild(option);
    });
    open.value = chosen;
  }

  function fillCategories() {
    var select = $("new-category"), chosen = select.value;
    select.textContent = "";
    categories.forEach(function (c) {
      var option = el("option", null, lang === "zh" ? c.name_zh : c.name_en);
      option.value = c.name;
      option.title = c.basis;
      select.appendChild(option);
    });
    if (chosen) select.value = chosen;
  }

  function startRound(event) {
    event.preventDefault();
    $("round-error").textContent = "";
    var body = { kind: $("round-kind").value };
    if ($("round-name").value) body.round = $("round-name").value;
    post(HALL + "/api/patrols", body).then(function (view) {
      $("patrol-day").value = "";
      loadPatrols(null, t("started_") + (lang === "zh" ? view.kind_zh : view.kind) + " " + (view.name || "") + " " + hhmm(view.started_at));
      drawRound(view);
      loadFindings(); // a round drafts findings from the alerts since the last one
    }, function (error) { $("round-error").textContent = error.status + " " + error.message; });
  }

  function recordFinding(event) {
    event.preventDefault();
    var note = $("new-note"), problem = $("new-error");
    problem.textContent = "";
    if (!note.value.trim()) { problem.textContent = t("needReason"); note.focus(); return; }
    var body = { window: $("new-window").value, category: $("new-category").value, note: note.value.trim() };
    if ($("new-round").value) body.round_id = Number($("new-round").value);
    post(HALL + "/api/findings", body).then(function (made) {
      note.value = "";
      findings = [made].concat(findings || []);
      $("finding-list").insertBefore(findingCard(made), $("finding-list").firstChild);
      say("findings-status", t("recorded") + "#" + made.id + " " + made.window_name + " " + findingCategory(made) + " · " + findingStatus(made));
      focusCard('[data-finding-id="' + made.id + '"]');
    }, function (error) { problem.textContent = error.status + " " + error.message; });
  }

  // ------------------------------------------------------------ evidence

  function evidenceLabel(p) {
    return p.window_id + " · " + t(p.cause) + " · " + when(p.taken_at);
  }

  function drawEvidence(list) {
    pictures = list;
    var box = $("evidence-list");
    box.textContent = "";
    say("evidence-status", list.length ? "" : t("noEvidence"));
    list.forEach(function (p) {
      var item = el("li");
      var open = el("button", "evidence-open", evidenceLabel(p));
      open.type = "button";
      open.setAttribute("data-evidence-id", p.id);
      open.addEventListener("click", function () { showPicture(p); });
      item.appendChild(open);
      box.appendChild(item);
    });
  }

  function showPicture(p) {
    var img = $("evidence-img");
    img.alt = t("picture") + "：" + t("window") + " " + p.window_id + "，" + t(p.cause) + "，" + when(p.taken_at);
    img.onerror = function () { say("evidence-status", t("failed") + p.id, true); };
    img.src = HALL + "/api/evidence/" + encodeURIComponent(p.id);
    $("evidence-caption").textContent = evidenceLabel(p) + " · " + p.device_id;
    $("evidence-figure").hidden = false;
  }

  function loadEvidence(event) {
    if (event) event.preventDefault();
    var windowId = $("evidence-window").value;
    say("evidence-status", t("loading"));
    get(HALL + "/api/evidence?limit=50" + (windowId ? "&window_id=" + encodeURIComponent(windowId) : "")).then(drawEvidence, function (error) {
      $("evidence-list").textContent = "";
      $("evidence-figure").hidden = true;
      say("evidence-status", (error.status === 403 ? "403 " : t("failed")) + error.message, true);
    });
  }

  // ------------------------------------------------------------ start

  function start() {
    var params = new URLSearchParams(location.search);
    $("patrol-day").value = params.get("day") || "";
    translate();
    $("lang-toggle").addEventListener("click", function () { lang = lang === "zh" ? "en" : "zh"; translate(); });
    $("orders-filter").addEventListener("submit", loadOrders);
    $("findings-filter").addEventListener("submit", loadFindings);
    $("finding-new").addEventListener("submit", recordFinding);
    $("round-start").addEventListener("submit", startRound);
    $("patrols-filter").addEventListener("submit", loadPatrols);
    $("evidence-filter").addEventListener("submit", loadEvidence);
    get("/api/session").then(function (who) {
      session = who;
      permissions = who.permissions || [];
      drawWho();
      get(HALL + "/api/windows").then(function (windows) {
        windows.forEach(function (w) {
          ["evidence-window", "finding-window", "new-window"].forEach(function (id) {
            var option = el("option", null, w.name + (id === "new-window" && w.department ? "（" + w.department + "）" : ""));
            option.value = w.id;
            $(id).appendChild(option);
          });
        });
      }, function () {});
      var officer = permissions.indexOf("patrols.run") >= 0;
      $("finding-new").hidden = !officer;
      $("round-start").hidden = !officer;
      if (officer) get(HALL + "/api/finding-categories").then(function (list) { categories = list; fillCategories(); }, function () {});
      loadOrders();
      loadFindings();
      loadPatrols();
      loadEvidence();
    }, function (error) {
      if (error.status !== 401) say("orders-status", t("failed") + error.message, true);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
