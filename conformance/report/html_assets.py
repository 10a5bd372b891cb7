"""The HTML report's inline style sheet and script.

The script reads the JSON block `#report-data` (see `html_views.report_data`). It keeps the fixed filter bar's
height in `--bar` (the matrix header sticks below it; link targets scroll to below it), filters every element of
class `filterable` by its data attributes (`data-check`, `data-area`, `data-outcomes`, `data-differs`), keeps the
filters and the chosen views in the URL's query string (restored on load), reveals a link's target when the filters
hide it, builds the short detail `c-<index>` of a pass or explained cell on demand, and fills the compare and "what
changed" panels.
"""

CSS = """
:root { --bar: 80px; --head: 40px; --pass: #d8f0d8; --explained: #d6e8fa; --known_bug: #e6d3f5; --fail: #f8c8c8; --error: #f6d2a8;
        --not_applicable: #e4e4e4; --skipped: #f4f4f4; --missing: #fff3b0; --border: #ccc;
        font-family: system-ui, sans-serif; font-size: 14px; }
body { margin: 0 1.5em 2em; padding-top: var(--bar); color: #222; }
h1 { margin: .4em 0 .2em; } h2 { margin-top: 1.4em; border-bottom: 1px solid var(--border); }
[id] { scroll-margin-top: calc(var(--bar) + 8px); }
#matrix tr[id] { scroll-margin-top: calc(var(--bar) + var(--head) + 4px); }
table { border-collapse: collapse; } caption { text-align: left; font-weight: bold; padding: .2em 0; }
th, td { border: 1px solid var(--border); padding: 2px 6px; text-align: left; vertical-align: top; }
table.numbers td { text-align: right; }
#filters { position: fixed; top: 0; left: 0; right: 0; z-index: 10; background: #fafafa; padding: .3em 1.5em;
           border-bottom: 1px solid var(--border); display: flex; flex-wrap: wrap; gap: .3em 1em;
           align-items: center; font-size: 13px; }
#filters fieldset { border: 1px solid var(--border); padding: 0 .4em .1em; margin: 0; }
#filters label { white-space: nowrap; margin-right: .3em; }
#filters .jump a { margin-right: .5em; }
#shown { font-weight: bold; }
.lead { font-size: 15px; }
#matrix { font-size: 12px; }
#matrix thead th { position: sticky; top: var(--bar); z-index: 3; background: #eee; white-space: nowrap; }
#matrix th.check { position: sticky; left: 0; z-index: 2; background: #fff; white-space: nowrap; font-weight: normal; }
#matrix thead th.check { z-index: 4; background: #eee; }
#matrix tr.area-row th { background: #e4e4f4; position: sticky; left: 0; }
#matrix td { white-space: nowrap; padding: 1px 4px; }
#matrix td a, .swatch { color: inherit; text-decoration: none; }
#matrix td a:hover { text-decoration: underline; }
.o-pass { background: var(--pass); } .o-explained { background: var(--explained); }
.o-known_bug { background: var(--known_bug); font-style: italic; }
.o-fail { background: var(--fail); font-weight: bold; } .o-error { background: var(--error); font-weight: bold; }
.o-not_applicable { background: var(--not_applicable); color: #555; }
.o-skipped { background: var(--skipped); color: #777; }
.o-missing { background: var(--missing); }
.o-pass.g0 { background: #f1faf1; } .o-pass.g1 { background: #e3f4e3; } .o-pass.g2 { background: #cdebcd; }
.o-pass.g3 { background: #b3e0b3; } .o-pass.g4 { background: #93d193; } .o-pass.g5 { background: #6fbf6f; }
.o-pass.g6 { background: #3f9f3f; color: #fff; }
.o-explained.g0 { background: #eef5fd; } .o-explained.g1 { background: #dfecfa; }
.o-explained.g2 { background: #c8def7; } .o-explained.g3 { background: #acccf2; }
.o-explained.g4 { background: #8bb7eb; } .o-explained.g5 { background: #639de2; }
.o-explained.g6 { background: #3a7fd0; color: #fff; }
td.changed { box-shadow: inset 0 0 0 2px #7b2ff7; }
.compact { display: none; }
body.by-version .compact { display: table-cell; }
body.by-version .full { display: none; }
[hidden] { display: none !important; }
:target, .hl { outline: 3px solid #ff9800; outline-offset: 1px; }
#matrix tr:target > th.check, #matrix tr.hl > th.check { background: #ffe082; }
details:target, details.hl { background: #fff8e1; }
pre { background: #f6f6f6; border: 1px solid var(--border); padding: .5em; overflow: auto; max-height: 30em;
      white-space: pre-wrap; word-break: break-all; }
details { margin: .3em 0; } summary { cursor: pointer; }
details.problem > summary, details.cell > summary { font-family: monospace; }
.swatch { padding: 0 .4em; margin-right: .2em; border: 1px solid var(--border); display: inline-block; }
ul.outcomes { columns: 2; list-style: none; padding-left: 0; }
.hscroll { overflow-x: auto; }
svg text { font-size: 10px; font-family: system-ui, sans-serif; }
svg text.row { font-size: 10px; } svg a:hover rect.hm { stroke: #ff9800; stroke-width: 2; }
svg text.blabel { font-weight: bold; fill: #7b2ff7; }
.curves { display: flex; flex-wrap: wrap; gap: 1em; }
.curves figure { margin: 0; } .curves figcaption { font-size: 12px; max-width: 300px; }
table.diff { font-size: 13px; margin: .4em 0; } table.diff td { max-width: 46em; }
table.diff details { margin: 0; } table.diff p { margin: .2em 0; } table.diff td a { white-space: nowrap; }
table.diff pre { font-size: 12px; margin: .2em 0; }
.controls select { font-size: 14px; }
"""

JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.documentElement, restoring = false;
  function $(id) { return document.getElementById(id); }
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  function boxes(name) { return all('input[name="' + name + '"]'); }
  function checked(name) {
    return boxes(name).filter(function (i) { return i.checked; }).map(function (i) { return i.value; });
  }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      if (c !== null) { el.appendChild(typeof c === "string" ? document.createTextNode(c) : c); }
    });
    return el;
  }
  var rows = all("tr.check-row");

  function measure() {
    root.style.setProperty("--bar", $("filters").offsetHeight + "px");
    var head = document.querySelector("#matrix thead");
    if (head) { root.style.setProperty("--head", head.offsetHeight + "px"); }
  }

  // --- filters, and their state in the URL ---------------------------------------------------------------
  function apply() {
    var areas = checked("area"), outcomes = checked("outcome");
    var onlyDiffers = $("only-differs").checked, text = $("search").value.trim().toLowerCase();
    all(".filterable").forEach(function (el) {
      el.hidden = !(areas.indexOf(el.dataset.area) >= 0 &&
        el.dataset.outcomes.split(" ").some(function (o) { return outcomes.indexOf(o) >= 0; }) &&
        (!onlyDiffers || el.dataset.differs === "1") && el.dataset.check.toLowerCase().indexOf(text) >= 0);
    });
    all("tr.area-row").forEach(function (areaRow) {
      areaRow.hidden = !rows.some(function (r) { return r.dataset.area === areaRow.dataset.area && !r.hidden; });
    });
    var shown = rows.filter(function (r) { return !r.hidden; }).length;
    $("shown").textContent = shown + " of " + rows.length + " checks shown";
    save();
  }
  function columns() { document.body.classList.toggle("by-version", $("columns").value === "versions"); save(); }
  function label(v) { return D.versions[v].join(" "); }
  function versionIndex(text) {
    for (var i = 0; i < D.versions.length; i++) { if (label(i) === text) { return i; } }
    return -1;
  }
  function state() {
    var p = new URLSearchParams();
    ["area", "outcome"].forEach(function (name) {
      if (checked(name).length < boxes(name).length) { p.set(name, checked(name).join(",")); }
    });
    if ($("only-differs").checked) { p.set("differs", "1"); }
    if ($("search").value.trim()) { p.set("q", $("search").value.trim()); }
    if ($("columns").value !== "targets") { p.set("columns", $("columns").value); }
    [["a", "compare-a"], ["b", "compare-b"], ["changed", "changed-version"]].forEach(function (pair) {
      var select = $(pair[1]);
      if (select && select.dataset.chosen) { p.set(pair[0], label(+select.value)); }
    });
    return p.toString();
  }
  function save() {
    if (restoring) { return; }
    var query = state();
    try {
      history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
    } catch (e) { /* a sandboxed frame */ }
  }
  function restore() {
    var p = new URLSearchParams(location.search);
    restoring = true;
    ["area", "outcome"].forEach(function (name) {
      if (p.has(name)) {
        var wanted = p.get(name).split(",");
        boxes(name).forEach(function (i) { i.checked = wanted.indexOf(i.value) >= 0; });
      }
    });
    $("only-differs").checked = p.get("differs") === "1";
    $("search").value = p.get("q") || "";
    $("columns").value = p.get("columns") === "versions" ? "versions" : "targets";
    [["a", "compare-a"], ["b", "compare-b"], ["changed", "changed-version"]].forEach(function (pair) {
      var i = p.has(pair[0]) ? versionIndex(p.get(pair[0])) : -1;
      if (i >= 0 && $(pair[1])) { $(pair[1]).value = String(i); $(pair[1]).dataset.chosen = "1"; }
    });
    apply(); columns();
    restoring = false;
  }

  // --- link targets: built on demand, revealed, highlighted ----------------------------------------------
  function outcome(c) { return D.outcomes[c[3]]; }
  function g2(x) {  // as Python's format(x, ".2g")
    var m = Number(x.toPrecision(2)), e = Math.floor(Math.log10(Math.abs(m)));
    if (e >= -4 && e < 2) { return String(m); }
    return m.toExponential(1).replace(".0e", "e").replace(/e([+-])(\d)$/, "e$10$2");
  }
  function ratio(c) { return c[4] === null || c[4] === 0 ? "" : (typeof c[4] === "number" ? g2(c[4]) : c[4]); }
  function cellText(i) { var c = D.cells[i]; return outcome(c) + (ratio(c) ? " " + ratio(c) : ""); }
  function where(i) { var c = D.cells[i]; return label(c[1]) + " " + D.targets[c[2]]; }
  function buildDetail(i) {
    var c = D.cells[i];
    if (!c) { return null; }
    var check = D.checks[c[0]], row = $("row-" + check[0]), facts = [];
    if (c[5] !== null) { facts.push(c[5] + " examples"); }
    if (ratio(c)) { facts.push("error/tolerance " + ratio(c)); }
    if (D.tolerances[c[7]]) { facts.push("tolerance " + D.tolerances[c[7]]); }
    if (c[8] >= 0) { facts.push("was " + outcome(D.cells[c[8]]) + " in " + label(D.cells[c[8]][1])); }
    var d = h("details", {"id": "c-" + i, "class": "cell filterable o-" + outcome(c), "data-check": check[0],
      "data-area": check[1], "data-outcomes": outcome(c), "data-differs": row ? row.dataset.differs : "0"}, [
      h("summary", {}, [outcome(c) + ": " + check[0] + " on " + where(i)]),
      h("p", {}, [facts.join("; ") || "no numeric comparison"]),
      D.reasons[c[6]] ? h("p", {}, [(outcome(c) === "explained" ? "Explained: " : "Reason: ") + D.reasons[c[6]]])
        : null,
      h("p", {}, [h("a", {"href": "#row-" + check[0]}, ["its row in the matrix"])])]);
    d.open = true;
    $("short-details").appendChild(d);
    return d;
  }
  function target(id) {
    var el = $(id);
    if (!el && /^c-\d+$/.test(id)) {
      el = buildDetail(+id.slice(2));
      apply();  // a new detail obeys the filters like the others (and `reveal` then adjusts them)
    }
    return el;
  }
  function reveal(el) {
    var f = el.closest(".filterable");
    if (!f || !f.hidden) { return; }
    boxes("area").forEach(function (i) { if (i.value === f.dataset.area) { i.checked = true; } });
    var outcomes = f.dataset.outcomes.split(" ");
    if (!outcomes.some(function (o) { return checked("outcome").indexOf(o) >= 0; })) {
      boxes("outcome").forEach(function (i) { if (outcomes.indexOf(i.value) >= 0) { i.checked = true; } });
    }
    if (f.dataset.differs !== "1") { $("only-differs").checked = false; }
    if (f.dataset.check.toLowerCase().indexOf($("search").value.trim().toLowerCase()) < 0) { $("search").value = ""; }
    apply();
  }
  function go(id, scroll) {
    var el = id && target(id);
    if (!el) { return; }
    reveal(el);
    if (el.tagName === "DETAILS") { el.open = true; }
    all(".hl").forEach(function (x) { x.classList.remove("hl"); });
    el.classList.add("hl");
    if (scroll) { el.scrollIntoView(); }
  }
  document.addEventListener("click", function (event) {
    var a = event.target.closest && event.target.closest("a");
    var href = a && a.getAttribute("href");
    if (!href || href.charAt(0) !== "#" || href.length < 2) { return; }
    if (a.dataset.changed) {
      $("changed-version").value = a.dataset.changed;
      $("changed-version").dataset.chosen = "1";
      changed();
    }
    go(decodeURIComponent(href.slice(1)), false);
  });
  window.addEventListener("hashchange", function () { go(decodeURIComponent(location.hash.slice(1)), true); });

  // --- compare two versions; what changed in one -------------------------------------------------------
  var byVersion = {};
  D.cells.forEach(function (c, i) {
    var v = byVersion[c[1]] = byVersion[c[1]] || {};
    (v[c[0]] = v[c[0]] || []).push(i);
  });
  function differ(a, b) {
    var rowsOut = [];
    D.checks.forEach(function (check, ci) {
      var A = (byVersion[a] || {})[ci], B = (byVersion[b] || {})[ci];
      if (!A && !B) { return; }
      if (!A || !B) {  // run in one version only: its recorded cells
        var only = (A || B).filter(function (i) { return outcome(D.cells[i]) !== "missing"; });
        rowsOut.push({check: ci, pairs: [], only: only, side: A ? "A" : "B"});
        return;
      }
      var at = {}, pairs = [];
      A.forEach(function (i) { if (outcome(D.cells[i]) !== "missing") { at[D.cells[i][2]] = i; } });
      B.forEach(function (j) {
        var cb = D.cells[j], i = at[cb[2]];
        if (outcome(cb) === "missing" || i === undefined) { return; }
        var ca = D.cells[i];
        if (ca[3] !== cb[3] || (outcome(ca) === "explained" && ca[6] !== cb[6])) { pairs.push([i, j]); }
      });
      if (pairs.length) { rowsOut.push({check: ci, pairs: pairs}); }
    });
    return rowsOut.filter(function (r) { return r.pairs.length || r.only.length; });
  }
  function drift(check, a, b) {
    var impl = D.versions[a][0];
    if (D.versions[b][0] !== impl) { return []; }
    var lo = Math.min(a, b), hi = Math.max(a, b);
    return D.changes.filter(function (c) {
      return c.checks.indexOf(check) >= 0 && c.at[impl] !== undefined && c.at[impl] > lo && c.at[impl] <= hi;
    });
  }
  function cellLink(i) {
    return h("a", {"href": "#c-" + i, "class": "o-" + outcome(D.cells[i])},
             [D.targets[D.cells[i][2]] + ": " + cellText(i)]);
  }
  function lines(items) {
    var out = [];
    items.forEach(function (x, k) { if (k) { out.push(h("br")); } out.push(x); });
    return out;
  }
  function driftEntry(c) {
    var ex = c.example ? Object.keys(c.example).map(function (k) { return k + ": " + c.example[k]; }).join("\n") : "";
    return h("details", {"class": "drift", "open": ""}, [
      h("summary", {}, [h("a", {"href": "#change-" + c.id}, [c.id]),
                        ": " + c.title + " (first release " + c.since + ")"]),
      h("p", {}, ["Before: " + c.old]), h("p", {}, ["From " + c.since + ": " + c.new]),
      ex ? h("pre", {}, [ex]) : null]);
  }
  function table(found, headA, headB, caption, versionsOf, sides) {
    var body = found.map(function (r) {
      var check = D.checks[r.check][0], va = versionsOf(r)[0], vb = versionsOf(r)[1];
      var A = r.pairs.map(function (p) { return cellLink(p[0]); });
      var B = r.pairs.map(function (p) { return cellLink(p[1]); });
      if (r.side === "A") { A = A.concat(r.only.map(cellLink)); B.push("not run"); }
      if (r.side === "B") { B = B.concat(r.only.map(cellLink)); A.push("not run"); }
      var reasons = {}, order = [];
      r.pairs.concat(r.only ? r.only.map(function (i) { return [i]; }) : []).forEach(function (p) {
        p.forEach(function (i, k) {
          var text = D.reasons[D.cells[i][6]], side = r.side ? r.side : sides[k], key = side + "\n" + text;
          if (!text) { return; }
          if (!reasons[key]) { reasons[key] = {side: side, text: text, targets: []}; order.push(key); }
          reasons[key].targets.push(D.targets[D.cells[i][2]]);
        });
      });
      var changes = drift(check, va, vb).map(driftEntry);
      var why = order.map(function (key) {
        var x = reasons[key];
        return h("p", {}, [h("b", {}, [x.side]), " (" + x.targets.join(", ") + "): " + x.text]);
      }).concat(changes);
      if (!changes.length) {
        why.push(h("p", {"class": "nodrift"}, ["No drift entry for this check between these versions."]));
      }
      return h("tr", {"class": "diff-row", "data-check": check}, [
        h("th", {"scope": "row"}, [h("a", {"href": "#row-" + check}, [check])]),
        h("td", {}, lines(A)), h("td", {}, lines(B)), h("td", {}, why)]);
    });
    return h("table", {"class": "diff"}, [h("caption", {}, [caption]),
      h("thead", {}, [h("tr", {}, [h("th", {"scope": "col"}, ["check"]), h("th", {"scope": "col"}, [headA]),
        h("th", {"scope": "col"}, [headB]), h("th", {"scope": "col"}, ["why: reasons and drift entries"])])]),
      h("tbody", {}, body)]);
  }
  function count(found) {
    var cells = found.reduce(function (n, r) { return n + r.pairs.length + (r.only ? r.only.length : 0); }, 0);
    return found.length + (found.length === 1 ? " check" : " checks") + ", " + cells +
      (cells === 1 ? " cell" : " cells");
  }
  function compare() {
    var a = +$("compare-a").value, b = +$("compare-b").value, found = differ(a, b);
    $("compare-count").textContent = count(found) + " differ";
    var out = $("compare-result");
    out.textContent = "";
    out.appendChild(found.length ? table(found, "A: " + label(a), "B: " + label(b), "Checks whose outcome (or " +
      "explained reason) differs between " + label(a) + " and " + label(b) + ", on the targets both ran: " +
      count(found), function () { return [a, b]; }, ["A", "B"])
      : h("p", {}, ["No check differs between " + label(a) + " and " + label(b) + "."]));
    save();
  }
  function changedRows(v) {
    var found = {}, order = [];
    D.cells.forEach(function (c, i) {
      if (c[1] !== v || c[8] < 0) { return; }
      if (!found[c[0]]) { found[c[0]] = {check: c[0], pairs: []}; order.push(c[0]); }
      found[c[0]].pairs.push([c[8], i]);
    });
    return order.map(function (k) { return found[k]; });
  }
  function changed() {
    var v = +$("changed-version").value, found = changedRows(v);
    $("changed-count").textContent = count(found) + " changed";
    var out = $("changed-result");
    out.textContent = "";
    out.appendChild(found.length ? table(found, "before", "in " + label(v), "Cells of " + label(v) + " whose outcome " +
      "differs from the same target in the previous version that ran it: " + count(found),
      function (r) { return [D.cells[r.pairs[0][0]][1], v]; }, ["before", "in " + label(v)])
      : h("p", {}, ["No outcome changed in " + label(v) + "."]));
    save();
  }
  function chosen(select, then) { return function () { select.dataset.chosen = "1"; then(); }; }

  all("#filters input").forEach(function (input) {
    input.addEventListener("input", apply);
    input.addEventListener("change", apply);
  });
  $("columns").addEventListener("change", columns);
  $("compare-a").addEventListener("change", chosen($("compare-a"), compare));
  $("compare-b").addEventListener("change", chosen($("compare-b"), compare));
  $("changed-version").addEventListener("change", chosen($("changed-version"), changed));
  window.addEventListener("resize", measure);
  var last = D.versions.length - 1, withChanges = last;
  while (withChanges > 0 && !changedRows(withChanges).length) { withChanges -= 1; }
  $("compare-a").value = "0"; $("compare-b").value = String(last);
  $("changed-version").value = String(withChanges > 0 ? withChanges : last);
  restore();
  compare(); changed(); measure();
  if (location.hash.length > 1) { go(decodeURIComponent(location.hash.slice(1)), true); }
})();
"""
