// ferry's web UI: live updates and the pipeline filter. Pages work without this script;
// it only refreshes what they show as the service's events arrive.
"use strict";

(function () {
  // Regions marked data-live are replaced by the same regions of a fresh copy of the page,
  // unless the person is typing in one of them.
  function busy(region) {
    if (region.contains(document.activeElement) && document.activeElement !== document.body) {
      return true;
    }
    return Array.prototype.some.call(region.querySelectorAll("textarea, input[type=text]"),
      function (field) { return field.value !== ""; });
  }

  var pending = false;
  var running = false;

  function refresh() {
    if (running) { pending = true; return; }
    running = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Ferry-Live": "1" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { return null; }
        return response.text();
      })
      .then(function (text) {
        if (text === null) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var next = fresh.querySelector('[data-live="' + region.getAttribute("data-live") + '"]');
          if (next && !busy(region)) {
            region.replaceWith(document.importNode(next, true));
          }
        });
        applyFilter();
        document.dispatchEvent(new CustomEvent("ferry:refreshed"));
      })
      .catch(function () {})
      .then(function () {
        running = false;
        if (pending) { pending = false; schedule(); }
      });
  }

  var timer = null;
  function schedule() {
    if (timer !== null) { return; }
    timer = setTimeout(function () { timer = null; refresh(); }, 150);
  }

  function listen() {
    var live = document.getElementById("live");
    if (!live || !document.querySelector("[data-live]") || !window.EventSource) { return; }
    var source = new EventSource("/api/v1/events");
    source.addEventListener("ready", function () { live.setAttribute("data-state", "on"); });
    source.onerror = function () { live.setAttribute("data-state", "lost"); };
    source.onmessage = schedule;
    var kinds = ["promotion.requested", "promotion.checking", "promotion.blocked", "promotion.writing",
      "promotion.syncing", "promotion.verifying", "promotion.succeeded", "promotion.failed",
      "promotion.aborted", "release.created", "review.approval", "review.rejection",
      "review.approval.withdrawn", "review.rejection.withdrawn", "stage.paused", "stage.resumed",
      "source.moved", "lagged"];
    kinds.forEach(function (kind) { source.addEventListener(kind, schedule); });
  }

  // The pipeline filter: hides the stages (rows and boxes) whose name does not contain the
  // text as it is typed, the boxes of groups with no such stage, and arrows to hidden boxes.
  function setHidden(el, hide) {
    if (hide) { el.setAttribute("hidden", ""); } else { el.removeAttribute("hidden"); }
  }

  function applyFilter() {
    var input = document.getElementById("q");
    if (!input) { return; }
    var text = input.value.trim().toLowerCase();
    var matches = function (name) { return text === "" || name.indexOf(text) >= 0; };
    var groups = {};
    document.querySelectorAll("tr[data-stage]").forEach(function (row) {
      var show = matches(row.getAttribute("data-stage"));
      setHidden(row, !show);
      var group = row.closest("details");
      if (show && group) { groups[group.getAttribute("data-group")] = true; }
    });
    var shown = {};
    document.querySelectorAll("#graph a.node").forEach(function (node) {
      var show = node.getAttribute("data-kind") === "group"
        ? text === "" || groups[node.getAttribute("data-group")] === true
        : matches(node.getAttribute("data-stage"));
      setHidden(node, !show);
      if (show) { shown[node.getAttribute("data-label")] = true; }
    });
    document.querySelectorAll("#graph .edge").forEach(function (edge) {
      var show = shown[edge.getAttribute("data-from")] === true && shown[edge.getAttribute("data-to")] === true;
      setHidden(edge, !show);
      var label = edge.nextElementSibling;
      if (label && label.classList.contains("any-label")) { setHidden(label, !show); }
    });
    document.querySelectorAll("details.group").forEach(function (group) {
      var any = groups[group.getAttribute("data-group")] === true;
      setHidden(group, !any);
      if (text !== "" && any) { group.open = true; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("q");
    if (input) { input.addEventListener("input", applyFilter); }
    listen();
  });
})();
