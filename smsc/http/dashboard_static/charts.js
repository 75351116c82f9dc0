// The dashboard's charts over time, drawn with uPlot (served by the gateway from
// web/node_modules, installed by make). window.SmscCharts.draw(groups) returns false when
// uPlot is not there, and the page says so; its figures are text in any case.
"use strict";

window.SmscCharts = (function () {
  const charts = [];
  let xRange = null; // the chosen period, in epoch seconds
  const COLOURS = { sent: "#3b6ea8", delivered: "#2e8b57", failed: "#c0392b",
                    p50: "#3b6ea8", p95: "#8e44ad", clicks: "#d68910", optOuts: "#7f8c8d" };

  function width(el) { return Math.max(280, el.clientWidth || 480); }

  function line(label, colour, scale) {
    return { label, stroke: colour, width: 2, scale: scale || "y", points: { size: 5 } };
  }

  // y from 0 up to a little above the highest value (uPlot calls it with the data's range)
  const fromZero = (u, lo, hi) => [0, Math.max(1, (hi || 0) * 1.1)];
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
      scales: { x: { time: true, range: xRange }, y: yRange ? { range: yRange } : {} },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    };
    charts.push({ el, plot: new uPlot(opts, data, el) });
  }

  // Every hour or day of [since, until) gets a point: the API leaves out groups with
  // nothing to show, which count zero (rates and latencies: no value).
  function buckets(groups, since, until, step) {
    const width = step === "day" ? 86400 : 3600;
    const byTime = new Map();
    for (const g of groups) byTime.set(Date.parse(g.key) / 1000, g);
    const first = Math.floor(Date.parse(since) / 1000 / width) * width;
    const end = Date.parse(until) / 1000;
    const points = [];
    for (let t = first; t < end && points.length < 10000; t += width) {
      points.push([t, byTime.get(t) || { submitted: 0, delivered: 0, failed: 0, clicks: 0,
                                          optOuts: 0 }]);
    }
    return { points, range: [first, Math.max(first + width, end)] };
  }

  function draw(groups, since, until, step) {
    if (typeof window.uPlot !== "function") return false;
    while (charts.length) charts.pop().plot.destroy();
    const { points, range } = buckets(groups, since, until, step);
    xRange = range;
    const xs = points.map((p) => p[0]);
    const col = (f) => points.map((p) => f(p[1]));
    const orNull = (v) => (v === undefined ? null : v);

    chart("chart-volume", [
      line("sent", COLOURS.sent), line("delivered", COLOURS.delivered),
      line("failed", COLOURS.failed),
    ], [xs, col((g) => g.submitted), col((g) => g.delivered), col((g) => g.failed)], {},
    fromZero);

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
      { values: (u, ticks) => ticks.map((v) => v + " ms"), size: 70 }, fromZero);

    chart("chart-engagement", [
      line("clicks", COLOURS.clicks), line("opt-outs", COLOURS.optOuts),
    ], [xs, col((g) => g.clicks), col((g) => g.optOuts)], {}, fromZero);
    return true;
  }

  function resize() {
    for (const c of charts) c.plot.setSize({ width: width(c.el), height: 220 });
  }

  return { draw, resize };
})();
