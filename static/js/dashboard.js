// Dashboard trend charts: fetch GET /api/v1/partner/trends for the chosen period and draw
// commission, new trials, new subscriptions and unique clicks per day.
(function () {
  "use strict";

  var SERIES = [
    { key: "commission", label: "Commission", money: true, type: "bar" },
    { key: "new_trials", label: "New trials", money: false, type: "bar" },
    { key: "new_subscriptions", label: "New subscriptions", money: false, type: "bar" },
    { key: "unique_clicks", label: "Unique clicks", money: false, type: "line" }
  ];

  function init() {
    var charts = window.PanelCharts;
    var config = charts && charts.readJson("dashboard-config");
    var form = document.getElementById("period-form");
    if (!config || !form) { return; }
    var select = document.getElementById("period");
    var custom = document.getElementById("custom-range");
    var startInput = document.getElementById("start");
    var endInput = document.getElementById("end");
    var errorBox = document.getElementById("trends-error");
    var rangeBox = document.getElementById("trends-range");
    var instances = {};
    var requestSeq = 0;

    function currentRange() {
      var period = select.value;
      if (period !== "custom" && config.presets[period]) {
        return { period: period, start: config.presets[period][0], end: config.presets[period][1] };
      }
      return { period: "custom", start: startInput.value, end: endInput.value };
    }

    var chartsBox = document.getElementById("trend-charts");
    var groupingNote = document.getElementById("trends-grouping");
    var UNIT_NOTE = { week: "Long range: each bar is one week (Monday to Sunday).", month: "Long range: each bar is one month." };

    function showError(message) {
      errorBox.textContent = message || "";
    }

    // A range the server refused shows no charts at all: the previous period's charts beside
    // an error would read as the answer for the dates now in the form.
    function clearCharts() {
      Object.keys(instances).forEach(function (key) { instances[key].destroy(); delete instances[key]; });
      chartsBox.classList.add("hidden");
      rangeBox.textContent = "";
      groupingNote.textContent = "";
      document.getElementById("trends").setAttribute("data-loaded", "error");
    }

    function draw(data) {
      chartsBox.classList.remove("hidden");
      if (data.days.length) {
        rangeBox.textContent = charts.shortDay(data.days[0], true) + " – " +
          charts.shortDay(data.days[data.days.length - 1], true) + " (" + data.days.length + " days)";
      }
      var unit = "day";
      SERIES.forEach(function (series) {
        var values = data[series.key];
        var canvas = document.getElementById("chart-" + series.key);
        var empty = canvas.parentNode.querySelector(".chart-empty");
        var total = document.querySelector('[data-total="' + series.key + '"]');
        var grouped = charts.group(data.days, values, series.money);
        unit = grouped.unit;
        var sum = grouped.values.reduce(function (acc, v) {
          return acc + (series.money ? Math.round(Number(v) * 100) : Number(v));
        }, 0);
        if (total) {
          total.textContent = series.money ? charts.money((sum / 100).toFixed(2), config.currency) : charts.count(sum);
        }
        if (instances[series.key]) { instances[series.key].destroy(); delete instances[series.key]; }
        var isEmpty = charts.allZero(values);
        empty.classList.toggle("hidden", !isEmpty);
        canvas.classList.toggle("hidden", isEmpty);
        canvas.setAttribute("data-empty", isEmpty ? "1" : "0");
        canvas.setAttribute("data-unit", grouped.unit);
        canvas.setAttribute("aria-label", series.label + " per " + grouped.unit);
        if (isEmpty || !charts.available()) { return; }
        instances[series.key] = charts.dailyChart(canvas, {
          key: series.key, label: series.label, money: series.money, type: series.type,
          days: grouped.days, ends: grouped.ends, unit: grouped.unit, values: grouped.values,
          currency: config.currency
        });
      });
      groupingNote.textContent = UNIT_NOTE[unit] || "";
      document.getElementById("trends").setAttribute("data-loaded", "1");
    }

    function load(remember) {
      var range = currentRange();
      if (!range.start || !range.end) { showError("Choose both dates."); clearCharts(); return; }
      if (range.start > range.end) { showError("The From date is after the To date."); clearCharts(); return; }
      var query = "start=" + encodeURIComponent(range.start) + "&end=" + encodeURIComponent(range.end);
      var seq = ++requestSeq;
      showError("");
      fetch(config.trendsUrl + "?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (body) { return { status: response.status, body: body }; });
        })
        .then(function (result) {
          if (seq !== requestSeq) { return; }
          if (result.status === 200) { draw(result.body); return; }
          clearCharts();
          if (result.status === 401) { showError("Your session has ended. Log in again to see your charts."); return; }
          showError(result.body && result.body.error ? result.body.error.message : "The charts could not be loaded.");
        })
        .catch(function () {
          if (seq === requestSeq) {
            clearCharts();
            showError("The charts could not be loaded. Check your connection and try again.");
          }
        });
      // Only a period the partner chose goes into the address (to share or reload it); a
      // plain visit keeps its URL, and no fragment is added: the page stays where it is.
      if (remember && window.history && window.history.replaceState) {
        var params = range.period === "custom" ? "?period=custom&" + query : "?period=" + range.period;
        window.history.replaceState(null, "", window.location.pathname + params);
      }
    }

    select.addEventListener("change", function () {
      var isCustom = select.value === "custom";
      custom.classList.toggle("hidden", !isCustom);
      if (!isCustom) { load(true); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      load(true);
    });
    if (config.initialError) {
      showError(config.initialError);
      clearCharts();
    } else {
      load(false);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
