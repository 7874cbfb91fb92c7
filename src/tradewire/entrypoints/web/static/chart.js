// The backtest chart: candles with the trades marked and the rules' indicators on the price
// pane, oscillators in a pane below, the equity curve in the last pane. Lightweight Charts 5.
"use strict";

(function () {
  var COLORS = ["#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function draw() {
    var holder = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!holder || !source || !window.LightweightCharts) return;
    var LC = window.LightweightCharts;
    var data = JSON.parse(source.textContent);
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var chart = LC.createChart(holder, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: dark ? "#e7eaee" : "#15181d",
                attributionLogo: true, panes: { separatorColor: dark ? "#2a313a" : "#dde1e7" } },
      grid: { vertLines: { color: dark ? "#222932" : "#eef1f5" }, horzLines: { color: dark ? "#222932" : "#eef1f5" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      crosshair: { mode: LC.CrosshairMode.Normal },
    });
    var candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: "#16a34a", downColor: "#dc2626", borderVisible: false,
      wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    }, 0);
    candles.setData(data.candles);
    LC.createSeriesMarkers(candles, data.markers);

    var lower = data.indicators.some(function (i) { return i.pane === "lower"; });
    var equityPane = lower ? 2 : 1;
    data.indicators.forEach(function (ind, n) {
      var series = chart.addSeries(LC.LineSeries, {
        color: COLORS[n % COLORS.length], lineWidth: 1, title: ind.label,
        priceLineVisible: false, lastValueVisible: false,
      }, ind.pane === "price" ? 0 : 1);
      series.setData(ind.points);
    });
    var equity = chart.addSeries(LC.AreaSeries, {
      lineColor: "#0f766e", topColor: "rgba(15,118,110,0.35)", bottomColor: "rgba(15,118,110,0.02)",
      lineWidth: 2, title: "Equity", priceLineVisible: false,
    }, equityPane);
    equity.setData(data.equity);

    var panes = chart.panes();
    if (panes.length > 1) {
      panes[0].setStretchFactor(lower ? 0.6 : 0.72);
      if (lower) panes[1].setStretchFactor(0.18);
      panes[panes.length - 1].setStretchFactor(lower ? 0.22 : 0.28);
    }
    chart.timeScale().fitContent();
    holder.dataset.drawn = "1";
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
