// Behaviour that pages declare with data attributes instead of inline handlers (the Content-Security-
// Policy allows scripts from this server only): <form data-confirm="Question?"> asks before it is
// submitted; <select data-autosubmit> submits its form when the choice changes.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) { field.form.submit(); }
  });
})();
