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
    return parseDay(iso).toLocaleDateString(LOCALE, options);
  }

  function longDay(iso) {
    return parseDay(iso).toLocaleDateString(LOCALE, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
  }

  // The page's formats (commissions/display.py): "1,493.67 USD", "Mar 5, 2026", whatever
  // the browser's language, so a number reads the same in a chart and in the table beside it.
  var LOCALE = "en-US";
  var NBSP = "\u00a0";

  function money(value, currency) {
    var number = Number(value);
    var text = number.toLocaleString(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return currency ? text + NBSP + currency : text;
  }

  function count(value) {
    return Number(value).toLocaleString(LOCALE, { maximumFractionDigits: 0 });
  }

  // Long ranges are drawn per week (Monday to Sunday) or per month: 183 daily bars would be
  // hairlines. Money is summed in cents (integers), never in floating-point dollars.
  var WEEKS_FROM_DAYS = 93;
  var MONTHS_FROM_DAYS = 367;

  function groupUnit(dayCount) {
    if (dayCount >= MONTHS_FROM_DAYS) { return "month"; }
    if (dayCount >= WEEKS_FROM_DAYS) { return "week"; }
    return "day";
  }

  function bucketOf(iso, unit) {
    if (unit === "month") { return iso.slice(0, 7) + "-01"; }
    var day = parseDay(iso);
    var monday = new Date(day.getFullYear(), day.getMonth(), day.getDate() - ((day.getDay() + 6) % 7));
    return monday.getFullYear() + "-" + String(monday.getMonth() + 1).padStart(2, "0") + "-" +
      String(monday.getDate()).padStart(2, "0");
  }

  // {unit, days: first day of each group (clipped to the range), ends: last day, values}.
  function group(days, values, isMoney) {
    var unit = groupUnit(days.length);
    if (unit === "day") { return { unit: unit, days: days.slice(), ends: days.slice(), values: values.slice() }; }
    var out = { unit: unit, days: [], ends: [], values: [] };
    var sums = [];
    var current = null;
    for (var i = 0; i < days.length; i++) {
      var key = bucketOf(days[i], unit);
      if (key !== current) {
        current = key;
        out.days.push(days[i]);
        out.ends.push(days[i]);
        sums.push(0);
      }
      out.ends[out.ends.length - 1] = days[i];
      sums[sums.length - 1] += isMoney ? Math.round(Number(values[i]) * 100) : Number(values[i]);
    }
    out.values = sums.map(function (sum) { return isMoney ? (sum / 100).toFixed(2) : sum; });
    return out;
  }

  function periodLabel(unit, first, last) {
    if (unit === "month") {
      return parseDay(first).toLocaleDateString(LOCALE, { month: "short", year: "numeric" });
    }
    if (unit === "week") { return shortDay(first, true) + " – " + shortDay(last, true); }
    return longDay(first);
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
          callback: function (value, index) {
            if (opts.unit === "month") { return periodLabel("month", opts.days[index]); }
            return shortDay(opts.days[index], spansYears);
          }
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
        title: function (items) {
          if (!items.length) { return ""; }
          var i = items[0].dataIndex;
          return periodLabel(opts.unit || "day", opts.days[i], (opts.ends || opts.days)[i]);
        },
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
    shortDay: shortDay,
    group: group
  };
})();
