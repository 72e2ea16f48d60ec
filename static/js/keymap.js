// Keymap of the decision screens (inspect, adjudicate): each [data-key] control in the
// [data-keymap] panel has a key; htmx swaps the panel in place and focus returns to it.
(function () {
  "use strict";

  function panel() {
    return document.querySelector("[data-keymap]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) {
      return;
    }
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) {
      return;
    }
    var root = panel();
    if (!root) {
      return;
    }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var control = root.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!control || control.disabled) {
      return;
    }
    event.preventDefault();
    control.classList.add("pressed");
    control.click();
  });

  // A refused decision (400, 409) answers with the panel: the reason and the item to judge
  // next. htmx leaves 4xx answers unswapped by default, which would keep a stale item on screen.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 409) && target && target.id === "inspect-panel") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Keep keyboard focus on the panel after each swap so that the next key press lands.
  document.addEventListener("htmx:afterSwap", function () {
    var root = panel();
    if (root) {
      root.focus({ preventScroll: true });
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var root = panel();
    if (root) {
      root.focus({ preventScroll: true });
    }
  });
})();
