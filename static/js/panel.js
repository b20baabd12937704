// Partner Panel: small progressive enhancements, no inline scripts (the CSP forbids them).
(function () {
  "use strict";

  function copyText(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied!";
      button.setAttribute("data-copied", text);
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }

  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more we can do */ }
    document.body.removeChild(area);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (target) { copyText(target.value !== undefined ? target.value : target.textContent, button); }
  });

  // Forms marked data-confirm ask first (delete, disable, revoke): the question is the
  // attribute's text. Registered before data-once so a cancelled form stays usable.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  // Forms marked data-once disable their submit button after the first submit (double clicks).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute("data-once")) { return; }
    if (form.getAttribute("data-submitted")) { event.preventDefault(); return; }
    form.setAttribute("data-submitted", "1");
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
  });

  // Hints ("?"): shown on hover and keyboard focus by CSS; a tap or click toggles them (touch
  // browsers do not all focus a tapped button), Escape hides them.
  document.addEventListener("click", function (event) {
    var hint = event.target.closest(".hint");
    var open = document.querySelectorAll('.hint[aria-expanded="true"]');
    for (var i = 0; i < open.length; i++) {
      if (open[i] !== hint) { open[i].setAttribute("aria-expanded", "false"); }
    }
    if (hint) {
      hint.setAttribute("aria-expanded", hint.getAttribute("aria-expanded") === "true" ? "false" : "true");
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelectorAll('.hint[aria-expanded="true"]');
    for (var i = 0; i < open.length; i++) { open[i].setAttribute("aria-expanded", "false"); }
    if (document.activeElement && document.activeElement.classList.contains("hint")) { document.activeElement.blur(); }
  });

  // The phone menu: the button shows and hides the list of pages (CSS shows the button only on
  // narrow screens; on wide ones the list is always there).
  function initMenu() {
    var button = document.getElementById("menu-button");
    if (!button) { return; }
    var nav = button.closest("nav");
    nav.setAttribute("data-collapsed", "");
    button.hidden = false;
    button.addEventListener("click", function () {
      var opening = nav.hasAttribute("data-collapsed");
      if (opening) { nav.removeAttribute("data-collapsed"); } else { nav.setAttribute("data-collapsed", ""); }
      button.setAttribute("aria-expanded", opening ? "true" : "false");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initMenu);
  } else {
    initMenu();
  }
})();
