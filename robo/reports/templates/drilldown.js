/* robo report: click a figure, see the item rows behind it (robo/reports/drilldown_html.py).
   Reads two JSON blocks of the page: #robo-drilldown (runs, item rows) and
   #robo-drilldown-labels (every visible text, translated by the template).
   No network, no library. Sums follow the report's rule: hours saved =
   (minutes of the item rows as the ledger stores them + per-run minutes) / 60. */
(function () {
  "use strict";
  var dataNode = document.getElementById("robo-drilldown");
  var labelNode = document.getElementById("robo-drilldown-labels");
  var panel = document.getElementById("drilldown");
  if (!dataNode || !labelNode || !panel) return;
  var data = JSON.parse(dataNode.textContent);
  var L = JSON.parse(labelNode.textContent);
  var DISPLAY = 1000; /* rows put in the page at once; the sums cover every matching row */
  var STATUS_SUM = {
    success: "succeeded",
    business_exception: "business_exceptions",
    application_exception: "application_exceptions",
    skipped: "skipped"
  };
  var NUMERIC = { run_id: 1, position: 1, attempts: 1, minutes_saved: 1, counts: 1, credited: 1 };

  var names = {};
  L.keys.forEach(function (k, i) { names[k] = L.names[i]; });
  var runs = {};
  data.runs.forEach(function (r) { runs[r.id] = r; });
  var items = data.items.map(function (row, index) {
    var item = { index: index };
    data.item_columns.forEach(function (c, i) { item[c] = row[i]; });
    var run = runs[item.run_id] || {};
    item.run = run;
    item.name = run.name;
    item.region = run.region;
    item.month = run.month;
    item.status_text = L.status[item.status] || item.status;
    item.search = [item.reference, item.error || "", item.status_text, item.status, run.name,
      run.process_id, run.region, String(item.run_id)].join("\n").toLowerCase();
    return item;
  });

  /* Numbers as the report writes them (Babel: half-even, the locale's separators). */
  function number(x, digits) {
    var scale = Math.pow(10, digits);
    var v = Number((Math.abs(x) * scale).toPrecision(15));
    var whole = Math.floor(v);
    var rest = v - whole;
    var n = rest > 0.5 + 1e-9 ? whole + 1 : rest < 0.5 - 1e-9 ? whole : whole % 2 ? whole + 1 : whole;
    var s = String(n);
    var frac = "";
    if (digits) {
      while (s.length <= digits) s = "0" + s;
      frac = data.number.decimal + s.slice(-digits);
      s = s.slice(0, -digits);
    }
    s = s.replace(/\B(?=(\d{3})+(?!\d))/g, data.number.group);
    return (x < 0 && n ? "-" : "") + s + frac;
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }
  function keyText(key, value) {
    var texts = data.key_text[key] || {};
    return value in texts ? texts[value] : value;
  }

  var state = { keys: {}, text: "", column: null, sort: null, all: false, opener: null };
  var selects = panel.querySelectorAll("select[data-filter]");
  var search = document.getElementById("drill-text");
  var body = panel.querySelector("#drill-table tbody");
  var more = document.getElementById("drill-more");
  var empty = document.getElementById("drill-empty");

  /* The filter choices: every value the scope's runs have. */
  selects.forEach(function (select) {
    var key = select.getAttribute("data-filter");
    var seen = {};
    data.runs.forEach(function (r) { seen[r[key]] = true; });
    var values = Object.keys(seen).sort(function (a, b) {
      return key === "month" ? (a < b ? -1 : a > b ? 1 : 0)
        : keyText(key, a).localeCompare(keyText(key, b), data.lang);
    });
    var all = document.createElement("option");
    all.value = "";
    all.textContent = L.all;
    select.appendChild(all);
    values.forEach(function (v) {
      var option = document.createElement("option");
      option.value = v;
      option.textContent = keyText(key, v);
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      if (select.value) state.keys[key] = select.value; else delete state.keys[key];
      state.all = false;
      render();
    });
  });
  if (search) {
    search.addEventListener("input", function () {
      state.text = search.value.trim().toLowerCase();
      state.all = false;
      render();
    });
  }

  function selectedRuns() {
    var keys = Object.keys(state.keys);
    return data.runs.filter(function (r) {
      return keys.every(function (k) { return String(r[k]) === state.keys[k]; });
    });
  }

  function sums(runList, rows) {
    var s = { runs: 0, item_rows: 0, items: 0, attempts: 0, succeeded: 0, business_exceptions: 0,
      application_exceptions: 0, skipped: 0, item_minutes: 0, run_minutes: 0 };
    if (data.capped && !state.text) {
      /* The page holds only part of the rows: add up the runs' own figures instead. */
      runList.forEach(function (r) {
        s.runs += 1;
        ["item_rows", "items", "attempts", "succeeded", "business_exceptions",
          "application_exceptions", "skipped", "item_minutes", "run_minutes"].forEach(function (k) {
          s[k] += r[k];
        });
      });
    } else {
      var seen = {};
      rows.forEach(function (i) {
        s.item_rows += 1;
        s.attempts += i.attempts || 0;
        s.item_minutes += i.minutes_saved;
        if (i.counts) {
          s.items += 1;
          if (STATUS_SUM[i.status]) s[STATUS_SUM[i.status]] += 1;
        }
        seen[i.run_id] = true;
      });
      runList.forEach(function (r) {
        /* A search keeps the runs it found rows in; without one, every run counts. */
        if (!state.text || seen[r.id]) {
          s.runs += 1;
          s.run_minutes += r.run_minutes;
        }
      });
    }
    s.minutes = s.item_minutes + s.run_minutes;
    s.hours_saved = s.minutes / 60;
    return s;
  }

  function compare(a, b) {
    var col = state.sort.column;
    var x = a[col], y = b[col], r;
    if (col === "run_id") {
      r = a.run_id - b.run_id || a.position - b.position;
    } else if (NUMERIC[col]) {
      r = Number(x || 0) - Number(y || 0);
    } else {
      r = String(x == null ? "" : x).localeCompare(String(y == null ? "" : y), data.lang,
        { numeric: true });
    }
    return (r || a.index - b.index) * (state.sort.descending ? -1 : 1);
  }

  function cell(tr, column, text, value, cls) {
    var td = document.createElement("td");
    td.setAttribute("data-col", column);
    if (value !== undefined) td.setAttribute("data-value", value === null ? "" : String(value));
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
  }

  function render() {
    var runList = selectedRuns();
    var wanted = {};
    runList.forEach(function (r) { wanted[r.id] = true; });
    var rows = items.filter(function (i) {
      return wanted[i.run_id] && (!state.text || i.search.indexOf(state.text) >= 0);
    });
    if (state.sort) rows = rows.slice().sort(compare);

    var s = sums(runList, rows);
    panel.querySelectorAll("[data-sum]").forEach(function (el) {
      var key = el.getAttribute("data-sum");
      var value = s[key];
      el.setAttribute("data-value", String(key === "hours_saved" ? Math.round(value * 1e6) / 1e6 : value));
      el.textContent = key === "hours_saved" ? number(value, 1)
        : key === "item_minutes" || key === "run_minutes" ? number(value, 1) : number(value, 0);
      el.classList.toggle("clicked", key === state.column);
    });
    panel.querySelector("[data-sum=hours_saved]").setAttribute("data-minutes", String(s.minutes));

    var parts = Object.keys(state.keys).map(function (k) {
      return (names[k] || k) + " " + keyText(k, state.keys[k]);
    });
    if (state.text) parts.push("“" + state.text + "”");
    var selection = parts.length ? parts.join(" · ") : L.whole;
    document.getElementById("drill-what").textContent =
      state.column ? fill(L.what, { figure: names[state.column] || state.column, selection: selection })
        : selection;
    selects.forEach(function (select) {
      select.value = state.keys[select.getAttribute("data-filter")] || "";
    });
    if (search && search.value.trim().toLowerCase() !== state.text) search.value = state.text;
    panel.querySelectorAll("#drill-table th[data-sort]").forEach(function (th) {
      var on = state.sort && state.sort.column === th.getAttribute("data-sort");
      th.setAttribute("aria-sort", on ? (state.sort.descending ? "descending" : "ascending") : "none");
    });

    var shown = state.all ? rows : rows.slice(0, DISPLAY);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (i) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-run", i.run_id);
      tr.setAttribute("data-position", i.position);
      tr.setAttribute("data-reference", i.reference);
      cell(tr, "run_id", String(i.run_id), i.run_id, "num");
      cell(tr, "name", i.name || "", i.run.process_id, "key");
      cell(tr, "region", keyText("region", i.region), i.region);
      cell(tr, "month", keyText("month", i.month), i.month);
      cell(tr, "position", String(i.position), i.position, "num");
      cell(tr, "reference", i.reference, i.reference, "key");
      cell(tr, "status", i.status_text, i.status);
      cell(tr, "attempts", number(i.attempts || 0, 0), i.attempts, "num");
      cell(tr, "minutes_saved", number(i.minutes_saved, 1), i.minutes_saved, "num");
      cell(tr, "counts", i.counts ? L.yes : "", i.counts ? 1 : 0);
      cell(tr, "credited", i.credited ? L.yes : "", i.credited ? 1 : 0);
      cell(tr, "error", i.error || "", i.error || "", "error");
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    empty.hidden = rows.length > 0;
    more.hidden = shown.length === rows.length;
    more.querySelector("span").textContent =
      fill(L.shown, { shown: number(shown.length, 0), n: number(rows.length, 0) });
  }

  function open(keys, column, opener) {
    state.keys = keys;
    state.text = "";
    state.column = column;
    state.all = false;
    state.opener = opener || null;
    panel.hidden = false;
    render();
    panel.scrollIntoView({ block: "start" });
    document.getElementById("drill-title").focus({ preventScroll: true });
  }

  function clickable(el, action) {
    el.classList.add("drillable");
    el.setAttribute("role", "button");
    el.setAttribute("tabindex", "0");
    el.setAttribute("title", L.open);
    el.addEventListener("click", function () { action(el); });
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        action(el);
      }
    });
  }

  var table = document.getElementById("report-table");
  if (table) {
    table.querySelectorAll("tr[data-row] td[data-col]").forEach(function (td) {
      clickable(td, function () {
        var row = td.parentNode.getAttribute("data-row");
        var keys = row === "total" ? {} : Object.assign({}, data.groups[Number(row)] || {});
        open(keys, td.getAttribute("data-col"), td);
      });
    });
  }
  document.querySelectorAll(".card [data-key=hours_saved], .card [data-key=items]").forEach(function (value) {
    clickable(value.parentNode, function () { open({}, value.getAttribute("data-key"), value.parentNode); });
  });

  panel.querySelectorAll("#drill-table th[data-sort] button").forEach(function (button) {
    button.addEventListener("click", function () {
      var column = button.parentNode.getAttribute("data-sort");
      var same = state.sort && state.sort.column === column;
      state.sort = { column: column, descending: same ? !state.sort.descending : false };
      render();
    });
  });
  document.getElementById("drill-reset").addEventListener("click", function () {
    state.keys = {};
    state.text = "";
    state.all = false;
    render();
  });
  var close = document.getElementById("drill-close");
  if (close) {
    close.addEventListener("click", function () {
      panel.hidden = true;
      if (state.opener) state.opener.focus();
    });
  }
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && close) close.click();
  });
  more.querySelector("button").addEventListener("click", function () {
    state.all = true;
    render();
  });
  if (data.open) render();
  panel.setAttribute("data-ready", "1");
})();
