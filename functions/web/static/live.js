// Live updates: the release page refreshes its stages, a running step's log is tailed.
// Everything works without this script; it only saves reloading the page.
(function () {
  "use strict";
  // A table or diagram wider than the screen scrolls sideways inside the page: let the keyboard
  // reach it (focus it, then the arrow keys scroll) when it does.
  var scrollable = function () {
    var boxes = document.querySelectorAll("main table, main figure, main pre");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
      }
    }
  };
  scrollable();
  window.addEventListener("resize", scrollable);
  var live = document.querySelector("[data-live]");
  if (live) {
    var refresh = function () {
      fetch(live.getAttribute("data-live"), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) { live.innerHTML = html; scrollable(); }
          var mark = document.getElementById("running-mark");
          if (mark) { mark.hidden = !live.querySelector("[data-moving]"); }
          if (live.querySelector("[data-running]")) { setTimeout(refresh, 1500); }
        })
        .catch(function () { setTimeout(refresh, 5000); });
    };
    if (live.querySelector("[data-running]")) { setTimeout(refresh, 1500); }
  }
  var log = document.querySelector("pre[data-tail]");
  if (log) {
    var offset = parseInt(log.getAttribute("data-offset"), 10) || 0;
    var tail = function () {
      fetch(log.getAttribute("data-tail") + "&from=" + offset, {credentials: "same-origin"})
        .then(function (r) {
          var status = r.headers.get("X-Step-Status");
          offset = parseInt(r.headers.get("X-Log-Length"), 10) || offset;
          return r.text().then(function (text) { return [text, status]; });
        })
        .then(function (got) {
          if (got[0]) { log.appendChild(document.createTextNode(got[0])); log.scrollTop = log.scrollHeight; }
          var state = document.querySelector("[data-step-status]");
          if (state && got[1]) { state.textContent = got[1]; }
          if (got[1] === "pending" || got[1] === "inProgress" || got[1] === "running") { setTimeout(tail, 1000); }
        })
        .catch(function () { setTimeout(tail, 5000); });
    };
    setTimeout(tail, 1000);
  }
})();
