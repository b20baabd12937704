// Referrals table: the whole row opens the referral (the first cell keeps a real link for
// keyboards and screen readers). No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr.row-link[data-href]");
    if (!row || event.target.closest("a, button, input, select, label")) { return; }
    if (window.getSelection && String(window.getSelection())) { return; }  // selecting text, not opening
    window.location.href = row.getAttribute("data-href");
  });
})();
