// framewatch console: reveal on click, live SLA timers, keyboard shortcuts. No build step.
"use strict";
(function () {
  function fmt(s) {
    s = Math.max(0, Math.floor(Math.abs(s)));
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-created]").forEach(function (el) {
      var left = parseFloat(el.dataset.sla) - (now - parseFloat(el.dataset.created));
      var prefix = el.tagName === "SPAN" ? "SLA " : "";
      el.textContent = prefix + fmt(left) + (left < 0 ? " over" : " left");
      el.classList.toggle("breach", left < 0);
      var row = el.closest("tr");
      if (row) row.classList.toggle("breached", left < 0);
    });
  }
  function reveal(img) { img.classList.toggle("blurred"); }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll(".frame img").forEach(function (img) {
      img.addEventListener("click", function () { reveal(img); });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    document.querySelectorAll("tr[data-href]").forEach(function (tr) {
      tr.addEventListener("click", function () { location.href = tr.dataset.href; });
    });
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
    var cur = -1;
    function select(i) {
      if (!rows.length) return;
      cur = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r, j) { r.classList.toggle("selected", j === cur); });
      rows[cur].scrollIntoView({ block: "nearest" });
    }
    function click(id) { var b = document.getElementById(id); if (b && !b.disabled) b.click(); }
    document.addEventListener("keydown", function (ev) {
      var t = ev.target.tagName;
      if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      switch (ev.key) {
        case "j": select(cur + 1); break;
        case "k": select(cur - 1); break;
        case "Enter": if (cur >= 0) location.href = rows[cur].dataset.href; break;
        case "r": document.querySelectorAll(".frame img").forEach(reveal); break;
        case "c": click("claim"); break;
        case "u": click("uphold"); break;
        case "o":
          var rc = document.getElementById("reason_code");
          if (rc && !rc.value) { rc.focus(); ev.preventDefault(); return; }
          click("overturn"); break;
        case "e": click("escalate"); break;
        default: return;
      }
      ev.preventDefault();
    });
  });
})();
