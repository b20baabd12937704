// Shared Chart.js setup for the dashboard and the performance report (static/vendor/chart.umd.js).
// No inline scripts: data arrives through fetch() or <script type="application/json"> tags.
(function () {
  "use strict";

  var COLORS = {
    commission: "#157347",
    new_trials: "#1f5fd6",
    new_subscriptions: "#7a3fd1",
    unique_clicks: "#d9480f",
    clicks: "#9a6700",
    trials: "#1f5fd6",
    subscriptions: "#7a3fd1"
  };

  function parseDay(iso) {
    // "YYYY-MM-DD" as a local calendar day (new Date("YYYY-MM-DD") would be UTC midnight).
    var parts = iso.split("-");
    return new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]));
  }

  function shortDay(iso, withYear) {
    var options = { month: "short", day: "numeric" };
    if (withYear) { options.year = "numeric"; }
    return parseDay(iso).toLocaleDateString(undefined, options);
  }

  function longDay(iso) {
    return parseDay(iso).toLocaleDateString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
  }

  function money(value, currency) {
    var number = Number(value);
    var text = number.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return currency ? text + " " + currency : text;
  }

  function count(value) {
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: 0 });
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function allZero(values) {
    for (var i = 0; i < values.length; i++) {
      if (Number(values[i]) !== 0) { return false; }
    }
    return true;
  }

  function baseOptions() {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 250 },
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } }
    };
  }

  // A daily series: x = days (formatted dates), y = counts or money with two decimals.
  function dailyChart(canvas, opts) {
    var options = baseOptions();
    var spansYears = opts.days.length > 0 &&
      opts.days[0].slice(0, 4) !== opts.days[opts.days.length - 1].slice(0, 4);
    options.scales = {
      x: {
        grid: { display: false },
        ticks: {
          autoSkip: true,
          maxTicksLimit: 8,
          maxRotation: 0,
          callback: function (value, index) { return shortDay(opts.days[index], spansYears); }
        }
      },
      y: {
        beginAtZero: true,
        ticks: opts.money
          ? { callback: function (value) { return money(value); } }
          : { precision: 0, callback: function (value) { return count(value); } }
      }
    };
    options.plugins.tooltip = {
      callbacks: {
        title: function (items) { return items.length ? longDay(opts.days[items[0].dataIndex]) : ""; },
        label: function (item) {
          var raw = opts.values[item.dataIndex];
          return " " + opts.label + ": " + (opts.money ? money(raw, opts.currency) : count(raw));
        }
      }
    };
    var color = COLORS[opts.key] || "#1f5fd6";
    return new window.Chart(canvas, {
      type: opts.type || "bar",
      data: {
        labels: opts.days,
        datasets: [{
          label: opts.label,
          data: opts.values.map(Number),
          backgroundColor: opts.type === "line" ? color + "22" : color,
          borderColor: color,
          borderWidth: opts.type === "line" ? 2 : 0,
          pointRadius: opts.days.length > 60 ? 0 : 2,
          fill: opts.type === "line",
          tension: 0.25,
          maxBarThickness: 28
        }]
      },
      options: options
    });
  }

  // Horizontal bars comparing links on one metric.
  function comparisonChart(canvas, opts) {
    var options = baseOptions();
    options.indexAxis = "y";
    options.interaction = { mode: "nearest", axis: "y", intersect: false };
    options.scales = {
      x: {
        beginAtZero: true,
        ticks: opts.money
          ? { callback: function (value) { return money(value); } }
          : { precision: 0, callback: function (value) { return count(value); } }
      },
      y: {
        grid: { display: false },
        ticks: {
          autoSkip: false,
          callback: function (value, index) {
            var label = opts.labels[index] || "";
            return label.length > 28 ? label.slice(0, 27) + "…" : label;
          }
        }
      }
    };
    options.plugins.tooltip = {
      callbacks: {
        title: function (items) { return items.length ? opts.labels[items[0].dataIndex] : ""; },
        label: function (item) {
          var raw = opts.values[item.dataIndex];
          return " " + opts.label + ": " + (opts.money ? money(raw, opts.currency) : count(raw));
        }
      }
    };
    var color = COLORS[opts.key] || "#1f5fd6";
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: opts.labels,
        datasets: [{ label: opts.label, data: opts.values.map(Number), backgroundColor: color, maxBarThickness: 22 }]
      },
      options: options
    });
  }

  window.PanelCharts = {
    available: function () { return typeof window.Chart === "function"; },
    dailyChart: dailyChart,
    comparisonChart: comparisonChart,
    readJson: readJson,
    allZero: allZero,
    money: money,
    count: count,
    shortDay: shortDay
  };
})();
