// A link's own page: its numbers over time, one metric at a time, from the page's own JSON
// (<script type="application/json" id="link-data">: the link's daily rollups).
(function () {
  "use strict";

  var METRICS = {
    clicks: { label: "Clicks", money: false, type: "bar" },
    unique_clicks: { label: "Unique clicks", money: false, type: "bar" },
    trials: { label: "Trials", money: false, type: "bar" },
    subscriptions: { label: "Subscriptions", money: false, type: "bar" },
    commission: { label: "Commission", money: true, type: "bar" }
  };
  var COLOR_KEYS = { clicks: "clicks", unique_clicks: "unique_clicks", trials: "trials",
    subscriptions: "subscriptions", commission: "commission" };
  var UNIT_NOTE = { week: "Long range: each bar is one week (Monday to Sunday).", month: "Long range: each bar is one month." };

  function init() {
    var charts = window.PanelCharts;
    var data = charts && charts.readJson("link-data");
    var canvas = document.getElementById("link-chart");
    var select = document.getElementById("link-metric");
    if (!data || !canvas || !select) { return; }
    var empty = canvas.parentNode.querySelector(".chart-empty");
    var note = document.getElementById("link-chart-note");
    var chart = null;

    function draw() {
      var key = select.value;
      var metric = METRICS[key];
      var grouped = charts.group(data.days, data.metrics[key], metric.money);
      if (chart) { chart.destroy(); chart = null; }
      var isEmpty = charts.allZero(grouped.values);
      empty.classList.toggle("hidden", !isEmpty);
      canvas.classList.toggle("hidden", isEmpty);
      canvas.setAttribute("data-empty", isEmpty ? "1" : "0");
      canvas.setAttribute("data-unit", grouped.unit);
      canvas.setAttribute("aria-label", metric.label + " per " + grouped.unit);
      note.textContent = UNIT_NOTE[grouped.unit] || "";
      if (isEmpty || !charts.available()) { return; }
      chart = charts.dailyChart(canvas, {
        key: COLOR_KEYS[key], label: metric.label, money: metric.money, type: metric.type,
        days: grouped.days, ends: grouped.ends, unit: grouped.unit, values: grouped.values,
        currency: data.currency
      });
    }

    // Open on the first metric with something to show (clicks come long before commission).
    var keys = Object.keys(METRICS);
    for (var i = 0; i < keys.length; i++) {
      if (!charts.allZero(data.metrics[keys[i]])) { select.value = keys[i]; break; }
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
