// Keyboard shortcuts: "/" search, j/k move through the message list, Enter or o open, e done;
// on a message: r reply, a reply all, f forward.
// Ignored while typing in a field. No dependencies; loaded on every page.
(function () {
  "use strict";
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-message]")); }
  function current() { return document.querySelector("tr[data-message].is-current"); }
  function select(row) {
    var old = current();
    if (old) { old.classList.remove("is-current"); old.removeAttribute("aria-current"); }
    if (!row) { return; }
    row.classList.add("is-current");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("td.subject a");
    if (link) { link.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(current());
    select(all[Math.min(all.length - 1, Math.max(0, index === -1 ? 0 : index + step))]);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key;
    if (key === "/") {
      var search = document.getElementById("top-search");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (key === "j") {
      event.preventDefault(); move(1);
    } else if (key === "k") {
      event.preventDefault(); move(-1);
    } else if ((key === "o" || key === "Enter") && current()) {
      var link = current().querySelector("td.subject a");
      if (link) { event.preventDefault(); link.click(); }
    } else if (key === "e") {
      var done = document.querySelector("form[data-shortcut='done']");
      if (done) { event.preventDefault(); done.submit(); }
    } else if (key === "r" || key === "a" || key === "f") {
      var names = { r: "reply", a: "reply-all", f: "forward" };
      var button = document.querySelector("button[data-shortcut='" + names[key] + "']");
      if (button) { event.preventDefault(); button.click(); }
    }
  });
})();
