// Keyboard labelling on the annotate page: 0-9, t for 10, s skip, u undo. The page works
// without this script too (radio buttons and Save).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("label-form");
  var undo = document.getElementById("undo-form");
  var skip = document.getElementById("skip-form");
  var dims = form ? form.dataset.dims.split(",") : [];
  var at = 0, sent = false, done = [];
  function show() {
    dims.forEach(function (d, k) {
      document.getElementById("dim-" + d).classList.toggle("active", k === at);
    });
  }
  function send(f) { if (!sent && f) { sent = true; f.submit(); } }
  function set(v) {
    if (!form || at >= dims.length) return;
    var r = form.querySelector('input[name="' + dims[at] + '"][value="' + v + '"]');
    r.checked = true;
    done.push(at);
    at += 1;
    if (at >= dims.length) send(form); else show();
  }
  document.addEventListener("keydown", function (e) {
    var tag = e.target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && e.target.type !== "radio")) return;
    if (e.ctrlKey || e.metaKey || e.altKey || sent) return;
    if (/^[0-9]$/.test(e.key)) { e.preventDefault(); set(parseInt(e.key, 10)); }
    else if (e.key === "t" || e.key === "T") { e.preventDefault(); set(10); }
    else if (e.key === "s" || e.key === "S") { e.preventDefault(); send(skip); }
    else if (e.key === "u" || e.key === "U" || e.key === "Backspace") {
      e.preventDefault();
      if (done.length) {
        at = done.pop();
        form.querySelectorAll('input[name="' + dims[at] + '"]').forEach(function (r) { r.checked = false; });
        show();
      } else { send(undo); }
    }
  });
  if (form) show();
});
