// Small behaviours of the console (the CSP allows no inline script): keyboard shortcuts,
// copy buttons, removable form rows, dialogs. Everything else is plain links, forms and htmx.
(function () {
  "use strict";

  function typing(event) {
    var el = event.target;
    return el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }

  function rows() {
    var table = document.querySelector("[data-keyboard-rows] tbody");
    return table ? Array.prototype.slice.call(table.querySelectorAll("tr[data-href]")) : [];
  }

  function moveSelection(step) {
    var all = rows();
    if (!all.length) return;
    var current = all.findIndex(function (row) { return row.classList.contains("selected"); });
    var next = Math.max(0, Math.min(all.length - 1, current + step));
    if (current >= 0) all[current].classList.remove("selected");
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event)) return;
    var search = document.querySelector("[data-search-box]");
    switch (event.key) {
      case "/":
        if (search) { event.preventDefault(); search.focus(); search.select(); }
        else { window.location.href = "/customers"; }
        break;
      case "j": moveSelection(1); break;
      case "k": moveSelection(-1); break;
      case "Enter": {
        var selected = document.querySelector("tr.selected[data-href]");
        if (selected) window.location.href = selected.dataset.href;
        break;
      }
      case "n": {
        var create = document.querySelector("a[href$='/customers/new']");
        if (create) window.location.href = create.getAttribute("href");
        break;
      }
      case "?": {
        var help = document.getElementById("shortcuts");
        if (help && !help.open) help.showModal();
        break;
      }
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy], [data-remove-row], [data-remove-closest], [data-open-dialog], tr[data-href]");
    if (!target) return;
    if (target.matches("[data-copy]")) {
      var source = document.querySelector(target.dataset.copy);
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          target.textContent = "Copied";
          setTimeout(function () { target.textContent = "Copy"; }, 1500);
        });
      }
    } else if (target.matches("[data-remove-row]")) {
      var form = target.closest("form");
      target.closest("tr").remove();
      // what follows the form's fields (a live total) hears of the removal
      if (form) form.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (target.matches("[data-remove-closest]")) {
      target.closest(target.dataset.removeClosest).remove();
    } else if (target.matches("[data-open-dialog]")) {
      document.getElementById(target.dataset.openDialog).showModal();
    } else if (target.matches("tr[data-href]") && !event.target.closest("a, button, input")) {
      window.location.href = target.dataset.href;
    }
  });

  // Fields that only apply to some values of a select: data-show-when="select_name:value1 value2".
  // Without JavaScript they all show; the server ignores what does not apply.
  function syncShownWhen(root) {
    root.querySelectorAll("[data-show-when]").forEach(function (el) {
      var rule = el.dataset.showWhen.split(":");
      var form = el.closest("form");
      var control = form && form.elements[rule[0]];
      if (control) el.hidden = rule[1].split(" ").indexOf(control.value) < 0;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) syncShownWhen(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", function () { syncShownWhen(document); });
  document.addEventListener("htmx:afterSettle", function () { syncShownWhen(document); });

  // A form loaded by htmx into <dialog data-htmx-dialog> opens it as a modal; its
  // [data-close-dialog] link closes it (without JavaScript the link goes back to the page).
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target.closest("dialog[data-htmx-dialog]");
    if (dialog && !dialog.open) {
      dialog.showModal();
      var first = dialog.querySelector("select, input:not([type=hidden]), textarea");
      if (first) first.focus();
    }
  });
  // The customer's tabs swap only the panel: keep the tab bar's current tab in step.
  document.addEventListener("htmx:afterSettle", function (event) {
    var panel = document.getElementById("customer-tab");
    if (!panel || !panel.dataset.tab) return;
    document.querySelectorAll("nav.tabs a").forEach(function (link) {
      if (link.pathname.split("/").pop() === panel.dataset.tab) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
    });
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-dialog]");
    var dialog = close && close.closest("dialog");
    if (dialog) { event.preventDefault(); dialog.close(); }
  });
})();
