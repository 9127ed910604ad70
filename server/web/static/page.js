/*
 * What the review and work pages share: making elements, and calling the
 * API so that a refusal arrives as {status, message}, the message being the
 * server's own words (a 422's fields joined into one line).
 */
var HallWatchPage = (function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function Refused(status, message) { this.status = status; this.message = message; }

  function call(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin" }, options || {})).then(function (answer) {
      if (answer.ok) return answer.json();
      return answer.json().then(function (body) {
        var detail = body && body.detail;
        if (Array.isArray(detail)) detail = detail.map(function (d) { return (d.loc || []).join(".") + ": " + d.msg; }).join("; ");
        throw new Refused(answer.status, detail || answer.statusText);
      }, function () { throw new Refused(answer.status, answer.statusText); });
    });
  }

  return { $: $, el: el, call: call, Refused: Refused };
})();
