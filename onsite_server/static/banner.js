// Refreshes the crisis banner every 20 s without reloading the page, so a crisis raised at a
// kiosk shows on every open dashboard page at once. The fragment's URL is passive on the
// server: polling never keeps a session alive.
(function () {
  "use strict";
  var region = document.getElementById("crisis-region");
  if (!region || !region.dataset.refreshUrl) { return; }
  function keys(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-crisis]"),
      function (el) { return el.dataset.crisis; }).sort().join(",");
  }
  function refresh() {
    var here = encodeURIComponent(window.location.pathname + window.location.search);
    fetch(region.dataset.refreshUrl + "?next=" + here, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var probe = document.createElement("div");
        probe.innerHTML = html;
        // Replace only when the set of crises changed: a screen reader hears it once.
        if (keys(probe) !== keys(region)) { region.innerHTML = html; return; }
        // Same crises: bring only their waiting times up to date (those are aria-live="off"),
        // so an open details list stays open and nothing is announced again.
        Array.prototype.forEach.call(probe.querySelectorAll("[data-waited]"), function (fresh) {
          var shown = region.querySelector('[data-waited="' + fresh.dataset.waited + '"]');
          if (shown && shown.textContent !== fresh.textContent) { shown.textContent = fresh.textContent; }
        });
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }
  setInterval(refresh, 20000);
}());
