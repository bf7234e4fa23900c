// Countersign admin center: small progressive enhancements; every page works without them.
// A bulk action stays disabled until something is selected (without this script, the server
// answers an empty selection on the list itself, in place).
(function () {
  function sync(form) {
    var chosen = form.querySelectorAll("input[type=checkbox][data-bulk-item]:checked").length;
    form.querySelectorAll("[data-bulk-action]").forEach(function (button) {
      button.disabled = chosen === 0;
      button.title = chosen === 0 ? "Select at least one item first" : "";
    });
    var count = form.querySelector("[data-bulk-count]");
    if (count) { count.textContent = chosen ? chosen + " selected" : "Nothing selected"; }
  }
  function init() {
    document.querySelectorAll("form[data-bulk]").forEach(function (form) {
      sync(form);
      form.addEventListener("change", function () { sync(form); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  document.addEventListener("htmx:afterSettle", init);
})();
