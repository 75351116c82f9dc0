// The tenant dashboard (served by smsc/http/dashboard.py): sign in with an API token, pick a
// period, and show GET /v1/analytics over it (http-api.md, "Templates, links, analytics").
// The token lives in sessionStorage and travels only in the Authorization header, never in
// a URL. Charts are drawn by charts.js (uPlot); every figure is also text in the page.
"use strict";

(function () {
  const TOKEN_KEY = "smsc.dashboard.token";
  const TOP = 5; // rows in the "top failing" tables
  const $ = (id) => document.getElementById(id);
  const board = $("board");

  // --- the API ---------------------------------------------------------------------------

  class SignedOut extends Error {}

  async function analytics(token, since, until, groupBy) {
    const query = new URLSearchParams({ since, until, group_by: groupBy });
    const r = await fetch("/v1/analytics?" + query, {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    if (r.status === 401 || r.status === 403) throw new SignedOut("that token is not accepted");
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error("GET /v1/analytics answered " + r.status + ": " + detail);
    }
    return r.json();
  }

  // One group of the answer, with the names the page uses.
  function figures(g) {
    const latency = g.latency_ms || {};
    return {
      key: String(g.key),
      submitted: g.submitted || 0,
      delivered: g.delivered || 0,
      failed: g.failed || 0,
      errors: g.errors || {},
      deliveryRate: g.delivery_rate,
      p50: g.latency_p50_ms !== undefined ? g.latency_p50_ms : latency.p50,
      p95: g.latency_p95_ms !== undefined ? g.latency_p95_ms : latency.p95,
      parts: g.parts || 0,
      clicks: g.clicks || 0,
      clickRate: g.click_through_rate,
      optOuts: g.opt_outs || 0,
      inbound: g.inbound || 0,
    };
  }

  function groupsOf(answer) { return (answer.groups || []).map(figures); }

  // --- formatting ------------------------------------------------------------------------

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const fmtCount = (n) => integer.format(n);
  const fmtRate = (r) => (r === null || r === undefined ? "—" : (100 * r).toFixed(1) + " %");
  const fmtMs = (ms) => {
    if (ms === null || ms === undefined) return "—";
    return ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(2) + " s";
  };

  // Shows a figure; its exact value stays in data-value (what the tests compare).
  function show(id, value, format) {
    const el = $(id);
    el.textContent = format(value);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  // --- the period ------------------------------------------------------------------------

  // datetime-local values are read as UTC ("YYYY-MM-DDTHH:MM").
  const toInput = (d) => d.toISOString().slice(0, 16);
  const fromInput = (text) => text + ":00Z";

  function applyPreset() {
    const hours = $("preset").value;
    if (hours === "custom") return;
    const until = new Date();
    until.setUTCMinutes(0, 0, 0);
    until.setUTCHours(until.getUTCHours() + 1); // the end of the current hour
    const since = new Date(until.getTime() - Number(hours) * 3600 * 1000);
    $("since").value = toInput(since);
    $("until").value = toInput(until);
    $("step").value = Number(hours) > 72 ? "day" : "hour";
  }

  // --- drawing ---------------------------------------------------------------------------

  function tiles(t) {
    show("total-submitted", t.submitted, fmtCount);
    show("total-delivered", t.delivered, fmtCount);
    show("total-failed", t.failed, fmtCount);
    show("total-delivery-rate", t.deliveryRate, fmtRate);
    show("total-latency-p50", t.p50, fmtMs);
    show("total-latency-p95", t.p95, fmtMs);
    show("total-parts", t.parts, fmtCount);
    show("total-clicks", t.clicks, fmtCount);
    show("total-click-rate", t.clickRate, fmtRate);
    show("total-opt-outs", t.optOuts, fmtCount);
    show("total-inbound", t.inbound, fmtCount);
  }

  function cell(row, text, value) {
    const td = row.insertCell();
    td.textContent = text;
    if (value !== undefined) td.dataset.value = String(value);
    return td;
  }

  function bar(row, share) {
    const span = document.createElement("span");
    span.className = "bar";
    span.style.width = Math.round(100 * share) + "%"; // CSSOM: allowed by the page's CSP
    row.insertCell().appendChild(span);
  }

  function errorTable(errors) {
    const body = $("errors").tBodies[0];
    body.replaceChildren();
    const rows = Object.entries(errors).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const most = rows.length ? rows[0][1] : 1;
    for (const [code, count] of rows) {
      const row = body.insertRow();
      row.dataset.key = code;
      cell(row, code);
      cell(row, fmtCount(count), count);
      bar(row, count / most);
    }
    if (!rows.length) cell(body.insertRow(), "no errors").colSpan = 3;
  }

  function failingTable(id, groups) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    const rows = groups.filter((g) => g.failed > 0)
      .sort((a, b) => b.failed - a.failed || (a.key < b.key ? -1 : 1)).slice(0, TOP);
    const most = rows.length ? rows[0].failed : 1;
    for (const g of rows) {
      const row = body.insertRow();
      row.dataset.key = g.key;
      cell(row, g.key);
      cell(row, fmtCount(g.failed), g.failed);
      cell(row, fmtCount(g.submitted), g.submitted);
      cell(row, fmtRate(g.deliveryRate), g.deliveryRate);
      bar(row, g.failed / most);
    }
    if (!rows.length) cell(body.insertRow(), "nothing failed").colSpan = 5;
  }

  // --- the page's states -----------------------------------------------------------------

  function signedIn(yes) {
    $("sign-in").hidden = yes;
    board.hidden = !yes;
    $("sign-out").hidden = !yes;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    signedIn(false);
    board.dataset.state = "signed-out";
    $("sign-in-error").textContent = message || "";
    $("token").value = "";
    $("token").focus();
  }

  async function load() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) { signOut(); return; }
    const since = fromInput($("since").value);
    const until = fromInput($("until").value);
    const step = $("step").value;
    board.dataset.state = "loading";
    $("status").textContent = "Loading…";
    try {
      const [overTime, byOperator, byCountry] = await Promise.all([
        analytics(token, since, until, step),
        analytics(token, since, until, "operator"),
        analytics(token, since, until, "country"),
      ]);
      signedIn(true);
      const series = groupsOf(overTime);
      tiles(figures(overTime.totals || {}));
      errorTable(figures(overTime.totals || {}).errors);
      failingTable("operators", groupsOf(byOperator));
      failingTable("countries", groupsOf(byCountry));
      const drawn = window.SmscCharts ? window.SmscCharts.draw(series, since, until, step) : false;
      $("charts-missing").hidden = drawn;
      board.dataset.since = since;
      board.dataset.until = until;
      board.dataset.groupBy = step;
      board.dataset.state = "loaded";
      $("status").textContent = "From " + since + " to " + until + ", by " + step + ".";
    } catch (e) {
      if (e instanceof SignedOut) { signOut("Sign-in failed: " + e.message + "."); return; }
      board.dataset.state = "error";
      $("status").textContent = e.message;
    }
  }

  // --- wiring ----------------------------------------------------------------------------

  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("sign-in-error").textContent = "";
    signedIn(true);
    load();
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("preset").addEventListener("change", () => { applyPreset(); load(); });
  for (const id of ["since", "until"]) {
    $(id).addEventListener("input", () => { $("preset").value = "custom"; });
  }
  $("period").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  window.addEventListener("resize", () => window.SmscCharts && window.SmscCharts.resize());

  applyPreset();
  if (sessionStorage.getItem(TOKEN_KEY)) { signedIn(true); load(); } else { signOut(); }
})();
