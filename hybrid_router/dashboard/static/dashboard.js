/* hybrid-router dashboard: fetches /dashboard/api/summary and draws every chart as inline SVG.
 * Hand-written, no libraries and no external resources. Every chart element carries data-*
 * attributes (the values it shows) so tests and scripts can read the page. */
(function () {
  "use strict";

  // The SVG namespace, read off the page's own <svg> (so this file holds no URL at all).
  var SVG = document.getElementById("chart-savings").namespaceURI;
  var PERIODS = ["24h", "7d", "30d", "all"];
  var PROVIDER_COLORS = {
    ollama: "#16a34a", openrouter: "#8b5cf6", anthropic: "#d97706", llamacpp: "#0891b2",
    "llama.cpp": "#0891b2", vllm: "#db2777", lmstudio: "#4f46e5"
  };
  var FAILED_COLOR = "#ef4444"; // answers that failed a check: the errors' red
  var PALETTE = ["#0ea5e9", "#14b8a6", "#f43f5e", "#a855f7", "#84cc16", "#f97316", "#64748b"];

  var params = new URLSearchParams(window.location.search);
  var state = {
    period: PERIODS.indexOf(params.get("since")) >= 0 ? params.get("since") : "24h",
    refreshSeconds: readRefresh(params.get("refresh")),
    token: params.get("token") || "",
    timer: null,
    inFlight: false,
    lastData: null
  };

  function readRefresh(text) {
    if (text === null || text === "") return 10;
    var n = Number(text);
    if (!isFinite(n) || n < 0) return 10;
    return n === 0 ? 0 : Math.max(2, n);
  }

  // --- formatting ------------------------------------------------------------------------------

  var intFmt = new Intl.NumberFormat("en-US");
  function money(v) {
    var a = Math.abs(v);
    var digits = a === 0 || a >= 0.1 ? 2 : 4;
    return (v < 0 ? "-$" : "$") + a.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    return v >= 10000 ? (v / 1000).toFixed(1) + " s" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms";
  }
  function pct(v) { return (Math.round(v * 10) / 10) + "%"; }
  function bucketLabel(t, bucket) {
    var d = new Date(t * 1000);
    if (bucket === "hour") {
      return String(d.getHours()).padStart(2, "0") + ":00";
    }
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  }
  function bucketTitle(t, bucket) {
    var d = new Date(t * 1000);
    if (bucket === "hour") return d.toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    return d.toLocaleDateString("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }) + " (UTC)";
  }
  function providerColor(name, index) {
    return PROVIDER_COLORS[name] || PALETTE[index % PALETTE.length];
  }

  // --- SVG helpers -----------------------------------------------------------------------------

  function el(tag, attrs, parent, text) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key) && attrs[key] !== undefined && attrs[key] !== null) {
        node.setAttribute(key, String(attrs[key]));
      }
    }
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function titled(node, text) { el("title", {}, node, text); return node; }
  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }
  function size(svg) { var vb = svg.viewBox.baseVal; return { w: vb.width, h: vb.height }; }
  function emptyChart(svg, message) {
    clear(svg);
    var s = size(svg);
    svg.setAttribute("data-empty", "true");
    el("text", { x: s.w / 2, y: s.h / 2, "text-anchor": "middle", "class": "empty-label" }, svg, message || "No data for this period");
  }
  function niceStep(raw, integer) {
    if (!(raw > 0)) return 1;
    var exp = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / exp;
    var step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * exp;
    if (integer) step = Math.max(1, Math.round(step) === 2.5 ? 2 : Math.ceil(step));
    return step;
  }
  // A scale from 0 up to `top`: a round maximum and 3-5 round ticks.
  function scale(top, integer) {
    var step = niceStep((top > 0 ? top : 1) / 4, integer);
    var ticks = Math.max(1, Math.ceil((top > 0 ? top : 1) / step - 1e-9));
    return { max: step * ticks, step: step, ticks: ticks };
  }
  function axisMoney(step) {
    var digits = step >= 1 ? 0 : step >= 0.1 ? 2 : step >= 0.01 ? 2 : step >= 0.001 ? 3 : 4;
    if (step >= 1 && step % 1 !== 0) digits = 2;
    return function (v) {
      var a = Math.abs(v);
      if (a >= 1000) return (v < 0 ? "-$" : "$") + (a / 1000).toFixed(a % 1000 ? 1 : 0) + "k";
      return (v < -1e-12 ? "-$" : "$") + a.toFixed(digits);
    };
  }
  function yAxis(svg, box, sc, format, offset) {
    offset = offset || 0;
    for (var i = 0; i <= sc.ticks; i++) {
      var v = sc.step * i;
      var y = box.y + box.h - box.h * v / sc.max;
      el("line", { x1: box.x, x2: box.x + box.w, y1: y, y2: y, "class": i === 0 && !offset ? "axis" : "grid" }, svg);
      el("text", { x: box.x - 6, y: y + 4, "text-anchor": "end" }, svg, format(v + offset));
    }
  }
  function xLabels(svg, box, points, bucket, slot) {
    var every = Math.max(1, Math.ceil(points.length / 10));
    points.forEach(function (p, i) {
      if (i % every !== 0) return;
      el("text", { x: box.x + slot * (i + 0.5), y: box.y + box.h + 16, "text-anchor": "middle" }, svg, bucketLabel(p.t, bucket));
    });
  }

  // --- charts ----------------------------------------------------------------------------------

  function drawSavings(data) {
    var svg = document.getElementById("chart-savings");
    var points = data.timeline;
    var note = document.getElementById("note-savings");
    var total = data.totals.savings;
    note.textContent = (data.period.bucket === "hour" ? "per hour" : "per day (UTC)") + " · " + money(total) + " saved in all";
    if (!data.totals.requests) { emptyChart(svg); svg.setAttribute("aria-label", "Savings over time: no data"); return; }
    clear(svg);
    svg.removeAttribute("data-empty");
    svg.setAttribute("data-bucket", data.period.bucket);
    svg.setAttribute("data-total", String(total));
    var s = size(svg);
    var box = { x: 58, y: 12, w: s.w - 70, h: s.h - 42 };
    var top = 0, bottom = 0;
    points.forEach(function (p) { top = Math.max(top, p.savings, p.cost); bottom = Math.min(bottom, p.savings); });
    var sc = scale(top - bottom, false);
    var min = bottom < 0 ? -Math.ceil(-bottom / sc.step - 1e-9) * sc.step : 0;
    var max = min + sc.max;
    if (max < top) { sc.ticks += 1; sc.max += sc.step; max += sc.step; }
    var span = max - min;
    var yOf = function (v) { return box.y + box.h * (max - v) / span; };
    yAxis(svg, { x: box.x, y: box.y, w: box.w, h: box.h }, sc, axisMoney(sc.step), min);
    if (min < 0) el("line", { x1: box.x, x2: box.x + box.w, y1: yOf(0), y2: yOf(0), "class": "axis" }, svg);
    var slot = box.w / points.length;
    var barW = Math.max(1, Math.min(38, slot * 0.68));
    var bars = el("g", { "class": "bars" }, svg);
    points.forEach(function (p) {
      var x = box.x + slot * points.indexOf(p) + (slot - barW) / 2;
      var y0 = yOf(0), y1 = yOf(p.savings);
      var rect = el("rect", {
        x: x.toFixed(2), y: Math.min(y0, y1).toFixed(2), width: barW.toFixed(2),
        height: Math.max(p.savings ? 1 : 0, Math.abs(y1 - y0)).toFixed(2), rx: Math.min(3, barW / 3),
        "class": "bar-savings" + (p.savings < 0 ? " negative" : ""),
        "data-t": p.t, "data-value": p.savings, "data-cost": p.cost, "data-baseline": p.baseline_cost,
        "data-requests": p.requests
      }, bars);
      titled(rect, bucketTitle(p.t, data.period.bucket) + ": saved " + money(p.savings) + ", spent " +
        money(p.cost) + " of " + money(p.baseline_cost) + " without the router (" + intFmt.format(p.requests) + " requests)");
    });
    var path = points.map(function (p, i) {
      return (i ? "L" : "M") + (box.x + slot * (i + 0.5)).toFixed(2) + "," + yOf(p.cost).toFixed(2);
    }).join(" ");
    el("path", { d: path, "class": "line-cost", "data-series": "cost" }, svg);
    if (points.length <= 60) {
      points.forEach(function (p, i) {
        el("circle", { cx: (box.x + slot * (i + 0.5)).toFixed(2), cy: yOf(p.cost).toFixed(2), r: 2.5, "class": "dot-cost" }, svg);
      });
    }
    xLabels(svg, box, points, data.period.bucket, slot);
    svg.setAttribute("aria-label", "Savings over time: " + money(total) + " saved over " + points.length + " " +
      data.period.bucket + "s; " + money(data.totals.cost) + " spent");
  }

  function horizontalBars(svg, items, opts) {
    // items: [{key, value, label, color, title}]
    clear(svg);
    svg.removeAttribute("data-empty");
    var width = size(svg).w;
    svg.setAttribute("viewBox", "0 0 " + width + " " + Math.max(130, items.length * 30 + 10));
    var s = size(svg);
    var rowH = Math.min(30, (s.h - 8) / Math.max(items.length, 1));
    var labelW = opts.labelWidth || 130;
    var valueW = 92;
    var barMax = s.w - labelW - valueW;
    var max = Math.max.apply(null, items.map(function (i) { return i.value; }).concat([1]));
    items.forEach(function (item, index) {
      var y = 4 + index * rowH;
      var h = Math.max(6, rowH * 0.62);
      var g = el("g", { "class": "row", "data-row": item.key }, svg);
      el("text", { x: labelW - 10, y: y + h / 2 + 4, "text-anchor": "end", "class": "label" }, g, item.key);
      el("rect", { x: labelW, y: y, width: barMax, height: h, rx: 4, "class": "track" }, g);
      var attrs = {
        x: labelW, y: y, width: Math.max(item.value ? 2 : 0, barMax * item.value / max).toFixed(2), height: h, rx: 4,
        "class": opts.barClass || "bar", fill: item.color, "data-value": item.value
      };
      attrs[opts.dataKey] = item.key;
      titled(el("rect", attrs, g), item.title);
      el("text", { x: labelW + barMax + 8, y: y + h / 2 + 4, "class": "value-label" }, g, item.label);
    });
  }

  function drawProviders(data) {
    var svg = document.getElementById("chart-providers");
    var note = document.getElementById("note-providers");
    var providers = data.providers;
    var classified = data.classified.total;
    note.textContent = intFmt.format(data.totals.requests) + " requests" +
      (classified ? " · " + intFmt.format(classified) + " prompts classified by hooks" : "");
    if (!providers.length) { emptyChart(svg); svg.setAttribute("aria-label", "Provider mix: no requests"); return; }
    horizontalBars(svg, providers.map(function (p, i) {
      return {
        key: p.provider, value: p.requests, color: providerColor(p.provider, i),
        label: intFmt.format(p.requests) + " · " + pct(p.share * 100),
        title: p.provider + ": " + intFmt.format(p.requests) + " requests (" + pct(p.share * 100) + "), spent " +
          money(p.cost) + ", saved " + money(p.savings)
      };
    }), { dataKey: "data-provider", barClass: "bar-provider", labelWidth: 110 });
    svg.setAttribute("aria-label", "Provider mix: " + providers.map(function (p) {
      return p.provider + " " + p.requests + " requests";
    }).join(", "));
  }

  function drawRules(data) {
    var svg = document.getElementById("chart-rules");
    var rules = data.rules.slice(0, 10);
    var note = document.getElementById("note-rules");
    var total = data.rules.reduce(function (a, r) { return a + r.hits; }, 0);
    note.textContent = intFmt.format(total) + " decisions" + (data.rules.length > 10 ? " · top 10 of " + data.rules.length : "");
    if (!rules.length) { emptyChart(svg); svg.setAttribute("aria-label", "Rule hits: no decisions"); return; }
    horizontalBars(svg, rules.map(function (r) {
      return {
        key: r.rule, value: r.hits, color: null, label: intFmt.format(r.hits) + " · " + pct(100 * r.hits / total),
        title: r.rule + ": " + intFmt.format(r.hits) + " decisions"
      };
    }), { dataKey: "data-rule", barClass: "bar-rule", labelWidth: 140 });
    svg.setAttribute("aria-label", "Rule hits: " + rules.map(function (r) { return r.rule + " " + r.hits; }).join(", "));
  }

  function drawReliability(data) {
    var svg = document.getElementById("chart-reliability");
    var points = data.timeline;
    var note = document.getElementById("note-reliability");
    var t = data.totals;
    note.textContent = intFmt.format(t.fallbacks) + " fallbacks · " + intFmt.format(t.errors) + " errors";
    svg.setAttribute("data-fallbacks", String(t.fallbacks));
    svg.setAttribute("data-errors", String(t.errors));
    drawOutcomes(data);
    if (!t.requests) { emptyChart(svg); svg.setAttribute("aria-label", "Fallbacks and errors: no data"); return; }
    clear(svg);
    svg.removeAttribute("data-empty");
    var s = size(svg);
    var box = { x: 40, y: 10, w: s.w - 50, h: s.h - 38 };
    var top = 0;
    points.forEach(function (p) { top = Math.max(top, p.fallbacks + p.errors); });
    var sc = scale(Math.max(top, 4), true);
    var max = sc.max;
    yAxis(svg, box, sc, function (v) { return intFmt.format(v); });
    var slot = box.w / points.length;
    var barW = Math.max(1, Math.min(22, slot * 0.68));
    points.forEach(function (p, i) {
      var x = box.x + slot * i + (slot - barW) / 2;
      var base = box.y + box.h;
      [["fallbacks", p.fallbacks], ["errors", p.errors]].forEach(function (pair) {
        var h = box.h * pair[1] / max;
        if (!pair[1]) return;
        base -= h;
        titled(el("rect", {
          x: x.toFixed(2), y: base.toFixed(2), width: barW.toFixed(2), height: h.toFixed(2),
          "class": "bar-" + pair[0], "data-series": pair[0], "data-t": p.t, "data-value": pair[1]
        }, svg), bucketTitle(p.t, data.period.bucket) + ": " + pair[1] + " " + pair[0]);
      });
    });
    if (!t.fallbacks && !t.errors) {
      el("text", { x: box.x + box.w / 2, y: box.y + box.h / 2, "text-anchor": "middle", "class": "empty-label" }, svg,
        "No fallbacks or errors ✓");
    }
    xLabels(svg, box, points, data.period.bucket, slot);
    svg.setAttribute("aria-label", "Fallbacks and errors: " + t.fallbacks + " fallbacks, " + t.errors + " errors");
  }

  function drawChecks(data) {
    // Answers from local and free models to requests with tools that failed the proxy's checks
    // (a broken tool call, an empty answer...), per model: the next link answered instead.
    var svg = document.getElementById("chart-checks");
    var note = document.getElementById("note-checks");
    var list = document.getElementById("checks");
    var models = data.checked_failures || [];
    var total = 0;
    var byCheck = {};
    models.forEach(function (m) {
      total += m.failed;
      Object.keys(m.checks).forEach(function (c) { byCheck[c] = (byCheck[c] || 0) + m.checks[c]; });
    });
    note.textContent = total
      ? intFmt.format(total) + " answers failed a check; the next link answered instead"
      : "answers from models other than Anthropic's, to requests with tools";
    svg.setAttribute("data-failed", String(total));
    list.textContent = "";
    Object.keys(byCheck).sort(function (a, b) { return byCheck[b] - byCheck[a]; }).forEach(function (name) {
      var li = document.createElement("li");
      li.setAttribute("data-check", name);
      li.setAttribute("data-value", String(byCheck[name]));
      li.appendChild(document.createTextNode(name + " "));
      var b = document.createElement("b");
      b.textContent = intFmt.format(byCheck[name]);
      li.appendChild(b);
      list.appendChild(li);
    });
    if (!models.length) {
      emptyChart(svg, data.totals.requests ? "No answer failed a check ✓" : undefined);
      svg.setAttribute("aria-label", "Checked answers: no failures");
      return;
    }
    horizontalBars(svg, models.map(function (m) {
      var name = m.provider + "/" + m.model;
      var checks = Object.keys(m.checks).map(function (c) { return c + " " + m.checks[c]; }).join(", ");
      return {
        key: name, value: m.failed, color: FAILED_COLOR,
        label: intFmt.format(m.failed) + " failed",
        title: name + ": " + intFmt.format(m.failed) + " answers failed (" + checks + ")"
      };
    }), { dataKey: "data-model", barClass: "bar-checks", labelWidth: 260 });
    svg.setAttribute("aria-label", "Checked answers that failed: " + models.map(function (m) {
      return m.provider + "/" + m.model + " " + m.failed;
    }).join(", "));
  }

  function drawOutcomes(data) {
    var list = document.getElementById("outcomes");
    list.textContent = "";
    Object.keys(data.outcomes).sort(function (a, b) { return data.outcomes[b] - data.outcomes[a]; }).forEach(function (name) {
      var li = document.createElement("li");
      li.setAttribute("data-outcome", name);
      li.setAttribute("data-value", String(data.outcomes[name]));
      li.appendChild(document.createTextNode(name + " "));
      var b = document.createElement("b");
      b.textContent = intFmt.format(data.outcomes[name]);
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function drawLatency(data) {
    var svg = document.getElementById("chart-latency");
    var lat = data.latency;
    var note = document.getElementById("note-latency");
    note.textContent = lat.rows ? intFmt.format(lat.latency_ms.count) + " timed requests" +
      (lat.sampled ? " (newest " + intFmt.format(lat.sample_limit) + ")" : "") : "";
    var groups = [["latency_ms", "total latency"], ["ttft_ms", "time to first token"]].filter(function (g) { return lat[g[0]].count; });
    if (!groups.length) { emptyChart(svg, "No timed requests in this period"); svg.setAttribute("aria-label", "Latency percentiles: no data"); return; }
    clear(svg);
    svg.removeAttribute("data-empty");
    var s = size(svg);
    var box = { x: 56, y: 12, w: s.w - 66, h: s.h - 40 };
    var top = 0;
    groups.forEach(function (g) { top = Math.max(top, lat[g[0]].p99 || 0); });
    var sc = scale(top, false);
    var max = sc.max;
    yAxis(svg, box, sc, function (v) { return ms(v); });
    var slot = box.w / groups.length;
    var barW = Math.min(56, slot / 4.2);
    var labels = [];
    groups.forEach(function (g, gi) {
      var stats = lat[g[0]];
      ["p50", "p90", "p99"].forEach(function (p, pi) {
        var v = stats[p] || 0;
        var h = box.h * v / max;
        var x = box.x + slot * gi + slot / 2 + (pi - 1.5) * (barW + 4) + 2;
        titled(el("rect", {
          x: x.toFixed(2), y: (box.y + box.h - h).toFixed(2), width: barW.toFixed(2), height: h.toFixed(2), rx: 3,
          "class": "bar-" + p, "data-metric": g[0], "data-percentile": p, "data-value": v
        }, svg), g[1] + " " + p + ": " + ms(v));
        el("text", { x: (x + barW / 2).toFixed(2), y: (box.y + box.h - h - 5).toFixed(2), "text-anchor": "middle", "class": "value-label" }, svg, ms(v));
      });
      el("text", { x: box.x + slot * gi + slot / 2, y: box.y + box.h + 18, "text-anchor": "middle", "class": "label" }, svg, g[1]);
      labels.push(g[1] + " p50 " + ms(stats.p50) + ", p90 " + ms(stats.p90) + ", p99 " + ms(stats.p99));
    });
    svg.setAttribute("aria-label", "Latency percentiles: " + labels.join("; "));
  }

  function setKpi(id, value, text, detail) {
    var node = document.getElementById(id);
    node.setAttribute("data-value", String(value));
    node.querySelector(".value").textContent = text;
    node.querySelector(".detail").textContent = detail || "";
  }

  function drawKpis(data) {
    var t = data.totals;
    var anthropic = 0;
    data.providers.forEach(function (p) { if (p.provider === "anthropic") anthropic += p.requests; });
    var local = t.requests - anthropic;
    setKpi("kpi-savings", t.savings, money(t.savings), t.baseline_cost ? pct(t.savings_percent) + " of " + money(t.baseline_cost) : "nothing to compare yet");
    setKpi("kpi-cost", t.cost, money(t.cost), "on paid routes");
    setKpi("kpi-requests", t.requests, intFmt.format(t.requests), intFmt.format(t.decisions) + " decisions logged");
    setKpi("kpi-local", local, t.requests ? pct(100 * local / t.requests) : "–", intFmt.format(local) + " requests on free models");
    setKpi("kpi-fallbacks", t.fallbacks, intFmt.format(t.fallbacks), t.requests ? pct(100 * t.fallbacks / t.requests) + " of requests" : "");
    setKpi("kpi-errors", t.errors, intFmt.format(t.errors), t.requests ? pct(100 * t.errors / t.requests) + " of requests" : "");
    document.getElementById("kpi-errors").setAttribute("data-alert", t.errors ? "true" : "false");
    var p50 = data.latency.latency_ms.p50;
    setKpi("kpi-latency", p50 === null ? 0 : p50, ms(p50), data.latency.latency_ms.p99 !== null ? "p99 " + ms(data.latency.latency_ms.p99) : "no timed requests");
  }

  function drawRecent(data) {
    var body = document.querySelector("#recent tbody");
    body.textContent = "";
    if (!data.recent.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = 8;
      td.className = "empty-row";
      td.textContent = "No decisions in this period";
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    var providers = data.providers.map(function (p) { return p.provider; });
    data.recent.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", String(r.id));
      tr.setAttribute("data-provider", r.provider);
      tr.setAttribute("data-outcome", r.outcome);
      var when = new Date(r.ts * 1000);
      var cells = [
        when.toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" }),
        r.source, r.rule, null, null,
        r.latency_ms === null ? "–" : ms(r.latency_ms),
        money(r.cost || 0), money((r.baseline_cost || 0) - (r.cost || 0))
      ];
      cells.forEach(function (text, i) {
        var cell = document.createElement("td");
        if (i >= 5) cell.className = "num";
        if (i === 3) {
          var dot = document.createElementNS(SVG, "svg");
          dot.setAttribute("width", "8"); dot.setAttribute("height", "8"); dot.setAttribute("aria-hidden", "true");
          el("circle", { cx: 4, cy: 4, r: 4, fill: providerColor(r.provider, Math.max(0, providers.indexOf(r.provider))) }, dot);
          cell.appendChild(dot);
          cell.appendChild(document.createTextNode(" " + r.provider + " / " + r.model + (r.fallback_from ? " (from " + r.fallback_from + ")" : "")));
        } else if (i === 4) {
          var pill = document.createElement("span");
          pill.className = "pill " + r.outcome;
          pill.textContent = r.outcome + (r.error_class ? ": " + r.error_class : "");
          cell.appendChild(pill);
        } else {
          cell.textContent = text;
        }
        tr.appendChild(cell);
      });
      body.appendChild(tr);
    });
  }

  function render(data) {
    state.lastData = data;
    var empty = !data.totals.decisions;
    document.body.setAttribute("data-state", empty ? "empty" : "ready");
    document.getElementById("empty").hidden = !empty;
    document.getElementById("error").hidden = true;
    drawKpis(data);
    drawSavings(data);
    drawProviders(data);
    drawRules(data);
    drawReliability(data);
    drawChecks(data);
    drawLatency(data);
    drawRecent(data);
    var now = new Date();
    var status = "Updated " + now.toLocaleTimeString("en-US", { hour12: false }) +
      (state.refreshSeconds ? " · refreshes every " + state.refreshSeconds + " s" : " · auto-refresh off");
    document.getElementById("status").textContent = status;
  }

  function showError(message) {
    var box = document.getElementById("error");
    box.hidden = false;
    box.textContent = message;
    if (!state.lastData) document.body.setAttribute("data-state", "error");
    document.getElementById("status").textContent = "Update failed · retrying";
  }

  // --- data ------------------------------------------------------------------------------------

  function load() {
    if (state.inFlight) return;
    state.inFlight = true;
    var url = "/dashboard/api/summary?since=" + encodeURIComponent(state.period);
    var headers = state.token ? { "x-api-key": state.token } : {};
    fetch(url, { headers: headers, cache: "no-store" })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
          return body;
        });
      })
      .then(render)
      .catch(function (err) { showError("Could not load the summary: " + err.message); })
      .then(function () {
        state.inFlight = false;
        var count = Number(document.body.getAttribute("data-loads") || "0") + 1;
        document.body.setAttribute("data-loads", String(count));
      });
  }

  function schedule() {
    if (state.timer) window.clearInterval(state.timer);
    state.timer = null;
    if (state.refreshSeconds > 0) {
      state.timer = window.setInterval(function () { if (!document.hidden) load(); }, state.refreshSeconds * 1000);
    }
  }

  function selectPeriod(period) {
    state.period = period;
    document.querySelectorAll(".periods button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-period") === period ? "true" : "false");
    });
    var query = new URLSearchParams(window.location.search);
    query.set("since", period);
    window.history.replaceState(null, "", window.location.pathname + "?" + query.toString());
    document.body.setAttribute("data-period", period);
    load();
    schedule();
  }

  function start() {
    document.querySelectorAll(".periods button").forEach(function (b) {
      b.addEventListener("click", function () { selectPeriod(b.getAttribute("data-period")); });
    });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) load(); });
    selectPeriod(state.period);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
