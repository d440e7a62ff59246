// The check-in desk: scans are posted without reloading (the field stays focused for the next
// person), the camera scans where the browser has BarcodeDetector, and the day's table
// refreshes itself from a passive endpoint that does not count as activity. Without script
// the forms still post and the page reloads. A file, because the CSP allows no inline script.
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var field = document.getElementById("ticket");
  var result = document.getElementById("scan-result");
  var table = document.getElementById("live-table");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var busy = false;

  function show(kind, message) {
    result.className = "scan-result scan-" + kind;
    result.textContent = message;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { Accept: "application/json", "X-CSRFToken": csrf }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: r.statusText }; });
    });
  }

  if (form && field) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (busy || !field.value.trim()) { field.focus(); return; }
      busy = true;
      post(form.action, new FormData(form)).then(function (data) {
        var kind = data.ok ? (data.result && data.result.already ? "warn" : "ok") : "error";
        show(kind, data.message || "");
      }).catch(function () {
        show("error", form.dataset.offline || "No answer from the server; try again.");
      }).then(function () {
        busy = false;
        field.value = "";
        field.focus();
        refresh();
      });
    });
    // A USB scanner types wherever the focus is: if nothing is focused, send it to the field.
    document.addEventListener("keydown", function (e) {
      if (document.activeElement === document.body && e.key.length === 1 &&
          !e.ctrlKey && !e.metaKey && !e.altKey) {
        field.focus();
      }
    });
    var extend = document.getElementById("session-extend");
    if (extend) {
      extend.addEventListener("click", function () { setTimeout(function () { field.focus(); }, 50); });
    }
  }

  // Camera scanning: optional, only where the browser can decode QR codes itself.
  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var video = document.getElementById("camera");
  var stream = null;
  var lastCode = "";
  var lastAt = 0;
  if (start && "BarcodeDetector" in window && navigator.mediaDevices &&
      navigator.mediaDevices.getUserMedia) {
    start.hidden = false;
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    var tick = function () {
      if (!stream) { return; }
      detector.detect(video).then(function (codes) {
        var now = Date.now();
        if (codes.length && !(codes[0].rawValue === lastCode && now - lastAt < 3000)) {
          lastCode = codes[0].rawValue;
          lastAt = now;
          field.value = lastCode;
          form.requestSubmit();
        }
      }).catch(function () { /* a frame that could not be read */ }).then(function () {
        setTimeout(tick, 250);
      });
    };
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          video.hidden = false;
          start.hidden = true;
          stop.hidden = false;
          video.play().catch(function () { /* frames may still be readable */ });
          tick();
        }).catch(function () {
          // No camera, or permission refused: the scanner and the typed code still work.
          start.hidden = true;
          field.focus();
        });
    });
    stop.addEventListener("click", function () {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
      stream = null;
      video.hidden = true;
      stop.hidden = true;
      start.hidden = false;
      field.focus();
    });
  }

  // The live view of the day.
  function cell(tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (cls) { el.className = cls; }
    return el;
  }

  function noShowForm(slotId, label) {
    var f = document.createElement("form");
    f.method = "post";
    f.action = table.dataset.noshowUrl;
    f.className = "inline-form";
    var token = document.createElement("input");
    token.type = "hidden"; token.name = "csrf_token"; token.value = csrf;
    var slot = document.createElement("input");
    slot.type = "hidden"; slot.name = "slot_id"; slot.value = slotId;
    var button = cell("button", label);
    button.type = "submit";
    f.append(token, slot, button);
    return f;
  }

  function render(day) {
    var lang = table.dataset.lang;
    var body = document.createElement("tbody");
    day.events.forEach(function (event) {
      var title = lang === "es" && event.title_es ? event.title_es : event.title;
      event.slots.forEach(function (s) {
        var state = s.cancelled ? "cancelled" : s.state;
        var tr = document.createElement("tr");
        tr.className = "state-" + state;
        tr.append(cell("th", s.start_local + "–" + s.end_local), cell("td", title),
                  cell("td", String(s.taken), "num"), cell("td", String(s.free), "num"),
                  cell("td", String(s.checked_in), "num"), cell("td", String(s.waitlisted), "num"));
        var last = cell("td", table.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || state);
        if (state === "ended" && s.booked > 0) {
          last.append(" ", noShowForm(s.slot_id, table.dataset.labelNoshow));
        }
        tr.append(last);
        tr.firstChild.scope = "row";
        body.append(tr);
      });
    });
    if (body.children.length) {
      table.replaceChild(body, table.tBodies[0]);
    }
    Object.keys(day.totals).forEach(function (name) {
      var el = document.querySelector('[data-total="' + name + '"]');
      if (el) { el.textContent = String(day.totals[name]); }
    });
  }

  var polling = null;
  function refresh() {
    if (!table) { return; }
    fetch(table.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(render)
      .catch(function (err) {
        // Logged out (403): stop; the session script takes the page to the log-in.
        if (String(err.message) === "403") { clearInterval(polling); }
      });
  }
  if (table) { polling = setInterval(refresh, 10000); }
}());
