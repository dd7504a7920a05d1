// Slipway dashboard: the live rollout. A section with data-events follows
// the server's event stream; each "rollout" event is the section's new
// HTML, rendered by the server.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-events]").forEach(function (section) {
    if (!window.EventSource) return;
    var live = section.querySelector(".live");
    var es = new EventSource(section.getAttribute("data-events"));
    section.setAttribute("data-live", "connecting");
    es.addEventListener("open", function () { section.setAttribute("data-live", "open"); });
    es.addEventListener("rollout", function (e) { live.innerHTML = e.data; });
    es.addEventListener("timeline", function (e) {
      var t = document.querySelector("[data-timeline]");
      if (t) t.innerHTML = e.data;
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
