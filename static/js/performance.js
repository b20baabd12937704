// Performance report: a bar chart comparing links on the chosen metric. The numbers come from
// the page itself (<script type="application/json" id="performance-data">), not a second request.
(function () {
  "use strict";

  var LIMIT = 15;
  var LABELS = {
    commission: "Commission",
    unique_clicks: "Unique clicks",
    clicks: "Clicks",
    trials: "Trials",
    subscriptions: "Subscriptions"
  };

  function init() {
    var charts = window.PanelCharts;
    var data = charts && charts.readJson("performance-data");
    var canvas = document.getElementById("perf-chart");
    var select = document.getElementById("perf-metric");
    if (!data || !canvas || !select) { return; }
    var box = document.getElementById("perf-chart-box");
    var note = document.getElementById("perf-chart-note");
    var empty = box.querySelector(".chart-empty");
    var chart = null;

    function draw() {
      var metric = select.value;
      var values = data.metrics[metric];
      var order = values.map(function (value, index) { return index; });
      order.sort(function (a, b) { return Number(values[b]) - Number(values[a]); });
      var shown = order.slice(0, LIMIT);
      var labels = shown.map(function (i) { return data.labels[i]; });
      var shownValues = shown.map(function (i) { return values[i]; });
      note.textContent = order.length > LIMIT
        ? "Your " + LIMIT + " best " + (data.noun || "links") + " by " + LABELS[metric].toLowerCase() + ", out of " + order.length + "."
        : "";
      if (chart) { chart.destroy(); chart = null; }
      var isEmpty = charts.allZero(shownValues);
      // Height follows the number of bars (set through the CSSOM, which the CSP allows).
      box.style.height = (isEmpty ? 140 : Math.max(180, 48 + 28 * shown.length)) + "px";
      empty.classList.toggle("hidden", !isEmpty);
      canvas.classList.toggle("hidden", isEmpty);
      canvas.setAttribute("data-empty", isEmpty ? "1" : "0");
      if (isEmpty || !charts.available()) { return; }
      chart = charts.comparisonChart(canvas, {
        key: metric, label: LABELS[metric], money: metric === "commission",
        labels: labels, values: shownValues, currency: data.currency
      });
    }

    // A new partner has clicks long before any commission: open on the first metric that has
    // something to compare (commission, then unique clicks, clicks, trials, subscriptions).
    var options = Array.prototype.map.call(select.options, function (option) { return option.value; });
    for (var i = 0; i < options.length; i++) {
      if (!charts.allZero(data.metrics[options[i]])) { select.value = options[i]; break; }
    }
    select.addEventListener("change", draw);
    draw();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
