// Slipway dashboard: the live rollout and the timeline's change summaries.
// A section with data-events follows the server's event stream; each
// "rollout" event is the section's new HTML, rendered by the server. Rows
// of the timeline whose summary the page left out (data-diff-pending) get
// it from the timeline's data-timeline URL once the page has loaded.
"use strict";
function fillChanges(timeline) {
  var url = timeline && timeline.getAttribute("data-timeline");
  if (!url || !timeline.querySelector("[data-diff-pending]") || !window.fetch) return;
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (byVersion) {
      timeline.querySelectorAll("[data-diff-pending]").forEach(function (cell) {
        var s = byVersion[cell.getAttribute("data-diff-pending")];
        if (!s) return;
        cell.textContent = s;
        cell.removeAttribute("data-diff-pending");
        var link = cell.nextElementSibling;
        if (link && link.tagName === "A") link.remove();
      });
    })
    .catch(function () { /* the rows keep their links to each release's diff */ });
}
document.addEventListener("DOMContentLoaded", function () {
  var timeline = document.querySelector("[data-timeline]");
  fillChanges(timeline);
  document.querySelectorAll("[data-events]").forEach(function (section) {
    if (!window.EventSource) return;
    var live = section.querySelector(".live");
    var es = new EventSource(section.getAttribute("data-events"));
    section.setAttribute("data-live", "connecting");
    es.addEventListener("open", function () { section.setAttribute("data-live", "open"); });
    es.addEventListener("rollout", function (e) { live.innerHTML = e.data; });
    es.addEventListener("timeline", function (e) {
      if (!timeline) return;
      timeline.innerHTML = e.data;
      fillChanges(timeline);
    });
    es.addEventListener("end", function () { es.close(); section.setAttribute("data-live", "ended"); });
    es.addEventListener("failure", function (e) {
      es.close();
      section.setAttribute("data-live", "failed");
      var p = document.createElement("p");
      p.className = "alert";
      p.setAttribute("role", "alert");
      p.textContent = e.data;
      live.appendChild(p);
    });
  });
});
