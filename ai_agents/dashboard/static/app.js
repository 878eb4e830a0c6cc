// ai-agents dashboard: live updates by polling. No framework, no build step, served locally.
// Every POLL ms the page fetches itself and swaps in the new #live block (server-rendered and
// escaped like the first load) when it changed; it waits while the tab is hidden, a form field
// has focus or the pointer was just pressed, and stops once a form is submitted, so a click on
// a button never lands on a block that is being replaced.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live) { return; }
  var every = parseInt(live.getAttribute("data-poll") || "0", 10);
  if (!every) { return; }
  var busy = false;
  var stopped = false;
  var pressedAt = 0;
  document.addEventListener("submit", function () { stopped = true; }, true);
  document.addEventListener("pointerdown", function () { pressedAt = Date.now(); }, true);
  function busyTyping() {
    var el = document.activeElement;
    return el && live.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }
  function tick() {
    if (busy || stopped || document.hidden || busyTyping() || Date.now() - pressedAt < 2000) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "poll" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("live");
        if (fresh && !stopped && fresh.innerHTML !== live.innerHTML) {
          live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
        }
        if (status) { status.textContent = "updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function (err) {
        if (status) { status.textContent = "update failed (" + err.message + ")"; }
      })
      .then(function () { busy = false; });
  }
  window.setInterval(tick, every);
})();
