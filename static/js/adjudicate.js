// Adjudication screen keymap: each label's key presses its button (as on the inspect screen).
(function () {
  "use strict";

  function panel() {
    return document.getElementById("adjudicate-panel");
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

  document.addEventListener("DOMContentLoaded", function () {
    var root = panel();
    if (root) {
      root.focus({ preventScroll: true });
    }
  });
})();
