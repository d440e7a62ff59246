// Warns two minutes before the dashboard's idle timeout; one tap extends the session. The
// probe (GET /session) is passive: it never counts as activity, so a page that only polls
// still times out. Served as a file because the CSP allows no inline script.
(function () {
  "use strict";
  var body = document.body;
  if (!body.dataset.idleLeft) { return; }
  var warnBox = document.getElementById("session-warning");
  var extendButton = document.getElementById("session-extend");
  var warnSeconds = parseInt(body.dataset.warn, 10) || 120;
  var deadline = 0;
  var timer = null;
  var csrf = document.querySelector('meta[name="csrf-token"]');

  function schedule(data) {
    if (!data.logged_in) { window.location.assign(body.dataset.loginUrl); return; }
    var left = Math.min(data.idle_seconds_left, data.absolute_seconds_left);
    deadline = Date.now() + left * 1000;
    warnBox.hidden = true;
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(0, (left - warnSeconds) * 1000));
  }

  function check() {
    // Another tab may have kept the session alive: ask before warning.
    fetch(body.dataset.sessionUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.logged_in) { window.location.assign(body.dataset.loginUrl); return; }
        var left = Math.min(data.idle_seconds_left, data.absolute_seconds_left);
        if (left > warnSeconds + 5) { schedule(data); return; }
        deadline = Date.now() + left * 1000;
        warnBox.hidden = false;
        extendButton.focus();
        clearTimeout(timer);
        timer = setTimeout(function () { window.location.assign(body.dataset.loginUrl); },
                           Math.max(0, deadline - Date.now()) + 1000);
      })
      .catch(function () { timer = setTimeout(check, 15000); });
  }

  extendButton.addEventListener("click", function () {
    fetch(body.dataset.extendUrl, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf ? csrf.content : "" }
    }).then(function (r) { return r.json(); }).then(schedule)
      .catch(function () { window.location.assign(body.dataset.loginUrl); });
  });

  schedule({
    logged_in: true,
    idle_seconds_left: parseInt(body.dataset.idleLeft, 10),
    absolute_seconds_left: parseInt(body.dataset.absoluteLeft, 10)
  });
}());
