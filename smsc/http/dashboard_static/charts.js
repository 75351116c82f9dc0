// The dashboard's charts over time, drawn with uPlot (served by the gateway from
// web/node_modules, installed by make). window.SmscCharts.draw(groups) returns false when
// uPlot is not there, and the page says so; its figures are text in any case.
"use strict";

window.SmscCharts = (function () {
  const charts = [];
  const COLOURS = { sent: "#3b6ea8", delivered: "#2e8b57", failed: "#c0392b",
                    p50: "#3b6ea8", p95: "#8e44ad", clicks: "#d68910", optOuts: "#7f8c8d" };

  function width(el) { return Math.max(280, el.clientWidth || 480); }

  function line(label, colour, scale) {
    return { label, stroke: colour, width: 2, scale: scale || "y", points: { size: 5 } };
  }

  const msValue = (u, v) => (v === null || v === undefined ? "—" : Math.round(v) + " ms");
  const rateValue = (u, v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + " %");

  function chart(id, series, data, yAxis, yRange) {
    const el = document.getElementById(id);
    el.replaceChildren();
    const opts = {
      width: width(el),
      height: 220,
      series: [{ label: "time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}" }].concat(series),
      axes: [{}, yAxis || {}],
      scales: yRange ? { x: { time: true }, y: { range: yRange } } : { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    };
    charts.push({ el, plot: new uPlot(opts, data, el) });
  }

  function draw(groups) {
    if (typeof window.uPlot !== "function") return false;
    while (charts.length) charts.pop().plot.destroy();
    const points = groups.map((g) => [Date.parse(g.key) / 1000, g])
      .filter((p) => Number.isFinite(p[0])).sort((a, b) => a[0] - b[0]);
    const xs = points.map((p) => p[0]);
    const col = (f) => points.map((p) => f(p[1]));
    const orNull = (v) => (v === undefined ? null : v);

    chart("chart-volume", [
      line("sent", COLOURS.sent), line("delivered", COLOURS.delivered),
      line("failed", COLOURS.failed),
    ], [xs, col((g) => g.submitted), col((g) => g.delivered), col((g) => g.failed)]);

    const rate = line("delivery rate", COLOURS.delivered);
    rate.value = rateValue;
    chart("chart-rate", [rate], [xs, col((g) => orNull(g.deliveryRate))], {
      values: (u, ticks) => ticks.map((v) => Math.round(100 * v) + " %"),
    }, [0, 1]);

    const p50 = line("p50", COLOURS.p50);
    const p95 = line("p95", COLOURS.p95);
    p50.value = msValue;
    p95.value = msValue;
    chart("chart-latency", [p50, p95], [xs, col((g) => orNull(g.p50)), col((g) => orNull(g.p95))],
      { values: (u, ticks) => ticks.map((v) => v + " ms"), size: 70 });

    chart("chart-engagement", [
      line("clicks", COLOURS.clicks), line("opt-outs", COLOURS.optOuts),
    ], [xs, col((g) => g.clicks), col((g) => g.optOuts)]);
    return true;
  }

  function resize() {
    for (const c of charts) c.plot.setSize({ width: width(c.el), height: 220 });
  }

  return { draw, resize };
})();
