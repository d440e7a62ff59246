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

  // The result of a scan: a full-width band, green with the name or red with the reason, a
  // word and a sign as well as the colour, an optional beep, cleared after a few seconds
  // (the next person in the queue should not read the last one's result).
  var clearTimer = null;
  var sound = document.getElementById("scan-sound");
  var audio = null;
  if (sound && window.AudioContext) {
    sound.closest(".sound-switch").hidden = false;
    try { sound.checked = window.localStorage.getItem("scanSound") === "on"; } catch (e) { /* private mode */ }
    sound.addEventListener("change", function () {
      try { window.localStorage.setItem("scanSound", sound.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    });
  }

  function beep(kind) {
    if (!sound || !sound.checked || !window.AudioContext) { return; }
    audio = audio || new window.AudioContext();
    // One high tone for "checked in", two low ones for anything else.
    var tones = kind === "ok" ? [[880, 0]] : [[220, 0], [220, 0.25]];
    tones.forEach(function (t) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = t[0];
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + t[1]);
      osc.stop(audio.currentTime + t[1] + 0.18);
    });
  }

  function show(kind, message, action) {
    clearTimeout(clearTimer);
    result.className = "scan-result scan-" + kind;
    result.textContent = "";
    var word = document.createElement("strong");
    word.className = "scan-word";
    word.textContent = (kind === "ok" ? "\u2713 " : kind === "warn" ? "! " : "\u2717 ") +
      (result.dataset["word" + kind.charAt(0).toUpperCase() + kind.slice(1)] || "");
    var text = document.createElement("span");
    text.className = "scan-text";
    text.textContent = message;
    result.append(word, text);
    if (action) { result.append(action); }
    beep(kind);
    var seconds = Number(result.dataset.clearAfter || 8);
    // A result that offers a button stays until it is used or the next scan comes.
    if (!action) {
      clearTimer = setTimeout(function () {
        result.className = "scan-result";
        result.textContent = "";
      }, seconds * 1000);
    }
  }

  function lateButton(data) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "scan-action";
    button.textContent = data.late_label;
    button.addEventListener("click", function () {
      var body = new FormData();
      body.append("csrf_token", csrf);
      post(data.late_url, body).then(answered).catch(offline).then(done);
    });
    return button;
  }

  function answered(data) {
    var kind = data.ok ? (data.result && data.result.already ? "warn" : "ok") : "error";
    show(kind, data.message || "", !data.ok && data.late_url ? lateButton(data) : null);
  }

  function offline() {
    show("error", result.dataset.offline || "No answer from the server; try again.");
  }

  function done() {
    busy = false;
    if (field) {
      field.value = "";
      field.focus();
    }
    refresh();
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
      post(form.action, new FormData(form)).then(answered).catch(offline).then(done);
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

  function link(href, label, hidden) {
    var a = cell("a", label, "button");
    a.href = href;
    if (hidden) { a.append(cell("span", " " + hidden, "visually-hidden")); }
    return a;
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
        var what = cell("td", title);
        var people = cell("a", table.dataset.labelPeople);
        people.href = table.dataset.peopleUrl.replace("EVENT", event.event_id) + "#slot-" + s.slot_id;
        people.append(cell("span", " " + s.start_local, "visually-hidden"));
        what.append(document.createElement("br"), people);
        tr.append(cell("th", s.start_local + "–" + s.end_local), what,
                  cell("td", String(s.taken), "num"), cell("td", String(s.free), "num"),
                  cell("td", String(s.checked_in), "num"), cell("td", String(s.waitlisted), "num"));
        var last = cell("td", table.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || state);
        if (state === "ended" && s.booked > 0) {
          last.append(" ", link(table.dataset.noshowUrl + "?slot_id=" + encodeURIComponent(s.slot_id),
                                table.dataset.labelNoshow, s.start_local));
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

  // A refused walk-in: its reasons are beside the form; take the focus (and the view) there.
  var refusal = document.getElementById("walkin-refusal");
  if (refusal) {
    refusal.scrollIntoView({ block: "center" });
    refusal.focus({ preventScroll: true });
  }
}());
