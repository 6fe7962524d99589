// defection-lab dashboard: live validation of the new-run form, job progress, the compare selection.
// No libraries and nothing loaded from elsewhere; the pages work from this file and style.css alone.
"use strict";
(function () {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  const ACTIVE = new Set(["queued", "running"]);
  const BADGE = { complete: "ok", running: "run", queued: "run", failed: "bad", interrupted: "warn", cancelled: "warn" };

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data;
    try {
      data = await response.json();
    } catch (e) {
      data = { detail: `${response.status} ${response.statusText}` };
    }
    return { status: response.status, ok: response.ok, data };
  }

  function badge(el, status) {
    el.textContent = status;
    el.className = `badge ${BADGE[status] || ""}`;
  }

  // ------------------------------------------------------------------ runs: compare selection, live jobs
  function runsPage() {
    const form = $("#compare-form");
    if (form) {
      const button = $("#compare-button");
      const update = () => {
        const n = $$('input[name="run"]:checked', form).length;
        button.disabled = n < 2;
        button.textContent = n ? `Compare selected (${n})` : "Compare selected";
      };
      form.addEventListener("change", update);
      form.addEventListener("submit", (ev) => {
        // oldest first: the first run is the reference the others are compared with
        ev.preventDefault();
        const ids = $$('input[name="run"]:checked', form).map((el) => el.value).reverse();
        window.location.assign(`/compare?${ids.map((id) => `run=${encodeURIComponent(id)}`).join("&")}`);
      });
      update();
    }
    watchJobs();
    watchRuns();
  }

  // runs started from the command line (or by this server) that are still running: their progress, live
  function watchRuns() {
    const cells = $$("[data-progress-for]");
    const show = (cell, fraction, text) => {
      const pct = Math.round(100 * Math.min(1, Math.max(0, fraction || 0)));
      $(".fill", cell).style.width = `${pct}%`;
      $(".bar", cell).setAttribute("aria-valuenow", String(pct));
      $(".progress-text", cell).textContent = text;
    };
    for (const cell of cells) show(cell, Number($(".fill", cell).dataset.width) / 100, $(".progress-text", cell).textContent);
    if (!cells.length) return;
    async function tick() {
      let res;
      try {
        res = await api("GET", "/api/progress");
      } catch (e) {
        setTimeout(tick, 5000);
        return;
      }
      if (!res.ok) return;
      const running = res.data.running || {};
      for (const cell of cells) {
        const entry = running[cell.dataset.progressFor];
        if (!entry) {
          window.location.reload(); // the run ended (complete, failed or interrupted): its row has changed
          return;
        }
        show(cell, (entry.progress || {}).fraction, entry.text);
      }
      setTimeout(tick, 2000);
    }
    setTimeout(tick, 2000);
  }

  function watchJobs() {
    const section = $("#jobs");
    const tbody = $("tbody", section);
    const seen = new Set();
    async function tick() {
      let res;
      try {
        res = await api("GET", "/api/jobs");
      } catch (e) {
        setTimeout(tick, 3000);
        return;
      }
      const now = Date.now() / 1000;
      const jobs = (res.data.jobs || []).filter((j) => ACTIVE.has(j.status) || now - (j.finished_at || 0) < 600);
      const active = jobs.filter((j) => ACTIVE.has(j.status));
      const finishedSince = [...seen].some((id) => !active.find((j) => j.job_id === id));
      if (finishedSince) {
        window.location.reload(); // a job ended: its run's row has changed
        return;
      }
      active.forEach((j) => seen.add(j.job_id));
      section.hidden = jobs.length === 0;
      tbody.replaceChildren(...jobs.map(jobRow));
      if (active.length) setTimeout(tick, 1000);
    }
    tick();
  }

  function jobRow(j) {
    const tr = document.createElement("tr");
    const cell = (text, cls) => {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      if (text instanceof Node) td.append(text);
      else td.textContent = text;
      tr.append(td);
      return td;
    };
    const link = document.createElement("a");
    link.href = `/jobs/${j.job_id}`;
    link.textContent = j.job_id;
    cell(link, "mono");
    const b = document.createElement("span");
    badge(b, j.status);
    cell(b);
    cell(j.scenario_name);
    const bar = document.createElement("div");
    bar.className = "bar small";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${Math.round(100 * j.fraction)}%`;
    bar.append(fill);
    cell(j.status === "queued" ? `queued, position ${j.position}` : bar);
    if (j.report_url) {
      const a = document.createElement("a");
      a.href = j.report_url;
      a.textContent = "report";
      cell(a);
    } else cell(j.error || "");
    return tr;
  }

  // ------------------------------------------------------------------ new run: the form
  function valueOf(el) {
    const kind = el.dataset.kind;
    if (kind === "bool") return el.checked;
    if (kind === "int" || kind === "float") {
      const text = el.value.trim();
      if (!NUMBER.test(text)) return text; // sent as typed: the server says what is wrong, in the CLI's words
      if (kind === "int" && /^[+-]?\d{16,}$/.test(text)) return text; // beyond a double's precision
      return Number(text);
    }
    return el.value;
  }

  function changed(el) {
    const kind = el.dataset.kind;
    if (kind === "bool") return el.checked !== (el.dataset.default === "true");
    if (kind === "int" || kind === "float") {
      const v = valueOf(el);
      return typeof v !== "number" || v !== Number(el.dataset.default);
    }
    return el.value !== el.dataset.default;
  }

  function newRunPage() {
    const form = $("#new-run");
    const inputs = $$("[data-kind]", form);
    const submit = $("#submit");
    const general = $("#form-errors");
    const estimate = $("#estimate");
    const paired = $("#paired-baseline"); // not a scenario field (no data-kind): sent beside the changes
    let seq = 0;
    let timer = null;

    const changes = () => {
      const out = {};
      for (const el of inputs) if (changed(el)) out[el.name] = valueOf(el);
      return out;
    };
    const body = () => ({ changes: changes(), paired_baseline: paired.checked });

    function markChanged() {
      let total = 0;
      for (const group of $$("details.group", form)) {
        const n = $$("[data-kind]", group).filter(changed).length;
        total += n;
        const tag = $(".changed", group);
        tag.hidden = n === 0;
        tag.textContent = `${n} changed`;
      }
      for (const el of inputs) el.closest("tr").classList.toggle("is-changed", changed(el));
      $("#changed-count").textContent = total ? `${total} field${total === 1 ? "" : "s"} changed` : "no changes: the default scenario";
    }

    function show(res) {
      for (const box of $$(".error[data-for]", form)) {
        box.textContent = "";
        box.closest("tr").hidden = true;
      }
      for (const el of inputs) el.classList.remove("invalid");
      general.hidden = true;
      general.textContent = "";
      if (res.ok) {
        const baseline = res.data.paired_baseline ? ", the paired no-offer baseline's included" : "";
        estimate.textContent = `Valid. ${fmt(res.data.agent_days)} agent-days${baseline} (at most ${fmt(res.data.max_agent_days)}).`;
        estimate.className = "good";
        return;
      }
      const loose = [];
      const problems = res.data.problems || [];
      for (const p of problems) {
        const box = p.field && form.querySelector(`.error[data-for="${CSS.escape(p.field)}"]`);
        if (!box) {
          loose.push(p.text);
          continue;
        }
        box.textContent = box.textContent ? `${box.textContent}\n${p.text}` : p.text;
        box.closest("tr").hidden = false;
        const input = form.querySelector(`[name="${CSS.escape(p.field)}"]`);
        input.classList.add("invalid");
        input.closest("details").open = true;
      }
      if (!problems.length) loose.push(res.data.detail || `error ${res.status}`);
      if (loose.length) {
        general.textContent = loose.join("\n");
        general.hidden = false;
      }
      estimate.textContent = problems.length ? `${problems.length} problem${problems.length === 1 ? "" : "s"} to fix before running.` : "Cannot run this.";
      estimate.className = "bad";
    }

    async function validate() {
      const mine = ++seq;
      let res;
      try {
        res = await api("POST", "/api/validate", body());
      } catch (e) {
        return;
      }
      if (mine === seq) show(res); // else a newer check is under way
    }

    form.addEventListener("input", () => {
      markChanged();
      clearTimeout(timer);
      timer = setTimeout(validate, 200);
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      seq++;
      submit.disabled = true;
      try {
        const res = await api("POST", "/api/jobs", body());
        if (res.status === 202) {
          window.location.assign(res.data.url);
          return;
        }
        show(res);
      } finally {
        submit.disabled = false;
      }
    });
    $("#reset").addEventListener("click", () => {
      for (const el of inputs) {
        if (el.dataset.kind === "bool") el.checked = el.dataset.default === "true";
        else el.value = el.dataset.default;
      }
      paired.checked = false;
      markChanged();
      validate();
    });
    markChanged();
    validate();
  }

  // ------------------------------------------------------------------ job: live progress
  function jobPage() {
    const section = $("#job");
    const id = section.dataset.jobId;
    const bar = $(".bar", section);
    async function tick() {
      let res;
      try {
        res = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
      } catch (e) {
        setTimeout(tick, 2000);
        return;
      }
      const err = $("#job-error");
      if (!res.ok) {
        err.textContent = res.data.detail;
        err.hidden = false;
        return;
      }
      const j = res.data;
      badge($("#job-status"), j.status);
      $("#job-name").textContent = j.scenario_name;
      const baseline = j.paired_baseline ? ", and the paired no-offer baseline" : "";
      $("#job-size").textContent = `${fmt(j.agents)} agents × ${fmt(j.days)} days × ${fmt(j.replicates)} replicates${baseline}`;
      const warning = $("#job-warning");
      warning.textContent = j.resolution_warning ? `Warning: ${j.resolution_warning}.` : "";
      warning.hidden = !j.resolution_warning;
      const pct = Math.round(100 * j.fraction);
      $(".fill", bar).style.width = `${pct}%`;
      bar.setAttribute("aria-valuenow", String(pct));
      const progress = $("#job-progress");
      if (j.status === "queued") progress.textContent = `Waiting: position ${j.position} in the queue.`;
      else if (j.status === "running") progress.textContent = `${fmt(j.done)} of ${fmt(j.total)} replicate-days simulated (${pct}%), run ${j.run_id}.`;
      else if (j.status === "complete") progress.textContent = `Done: stored as run ${j.run_id}.`;
      else progress.textContent = j.run_id ? `Run ${j.run_id} is recorded as ${j.status}.` : "";
      if (j.status === "complete") {
        $("#report-link").href = j.report_url;
        $("#job-done").hidden = false;
      } else if (!ACTIVE.has(j.status)) {
        err.textContent = j.error || j.status;
        err.hidden = false;
      } else {
        setTimeout(tick, 400);
      }
    }
    tick();
  }

  const pages = { runs: runsPage, new: newRunPage, job: jobPage };
  const start = pages[document.body.dataset.page];
  if (start) start();
})();
