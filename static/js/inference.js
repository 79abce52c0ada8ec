/*
 * clinic_ai: the AI result beside an image. Polls the result while the job is queued or running,
 * then shows the ensemble's and every member's probabilities, the uncertainty, versions and timings,
 * and the heatmap over the image (on/off, opacity, per member or ensemble). No reload, no inline code.
 */
(() => {
  "use strict";
  const { el, safeUrl, csrfToken } = window.clinicCommon;
  const panel = document.getElementById("ai-panel");
  if (!panel) return;
  const state = document.getElementById("ai-state");
  const body = document.getElementById("ai-body");
  const controls = document.getElementById("ai-heatmap-controls");
  // The heatmap is drawn by the viewer (static/js/viewer.js, mounted by image_detail.js).
  const viewer = () => window.clinicImageViewer || null;
  const toggle = document.getElementById("heatmap-toggle");
  const opacity = document.getElementById("heatmap-opacity");
  const source = document.getElementById("heatmap-source");
  const rerun = document.getElementById("ai-rerun");
  const BADGES = { none: "text-bg-secondary", queued: "text-bg-info", running: "text-bg-info", done: "text-bg-success", failed: "text-bg-danger" };
  let timer = null;
  let heatmaps = {};

  const pct = (p) => `${(100 * p).toFixed(1)} %`;

  function setState(text, kind) {
    state.textContent = text;
    state.className = `badge ${BADGES[kind] || "text-bg-secondary"}`;
  }

  function probabilityRows(probabilities, labels) {
    const list = el("div", "mb-2");
    for (const [name, p] of Object.entries(probabilities)) {
      const row = el("div", "mb-1");
      const head = el("div", "d-flex justify-content-between");
      head.append(el("span", labels.includes(name) ? "fw-semibold" : "", name), el("span", "font-monospace", pct(p)));
      const bar = el("div", "progress probability-bar");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", `${name} probability`);
      bar.setAttribute("aria-valuenow", String(Math.round(100 * p)));
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      const fill = el("div", `progress-bar${labels.includes(name) ? "" : " bg-secondary"}`);
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.append(fill);
      row.append(head, bar);
      list.append(row);
    }
    return list;
  }

  function membersTable(members) {
    const table = el("table", "table table-sm mb-2");
    table.id = "ai-members";
    const head = el("thead");
    const hr = el("tr");
    const classes = members.length ? Object.keys(members[0].probabilities) : [];
    hr.append(el("th", "", "Member"), el("th", "text-end", "Weight"), ...classes.map((c) => el("th", "text-end", c)));
    head.append(hr);
    const tbody = el("tbody");
    for (const m of members) {
      const tr = el("tr");
      tr.append(el("td", "", m.name), el("td", "text-end", Number(m.weight).toFixed(2)),
        ...classes.map((c) => el("td", "text-end font-monospace", pct(m.probabilities[c]))));
      tbody.append(tr);
    }
    table.append(head, tbody);
    return table;
  }

  function definitionList(entries) {
    const dl = el("dl", "row mb-0");
    for (const [k, v] of entries) {
      dl.append(el("dt", "col-7 fw-normal text-body-secondary", k), el("dd", "col-5 mb-1 font-monospace", v));
    }
    return dl;
  }

  function showHeatmap() {
    const url = safeUrl(heatmaps[source.value]);
    const v = viewer();
    if (v) v.setOverlay({ url, visible: Boolean(toggle.checked && url), opacity: opacity.value / 100 });
  }

  function render(data) {
    body.replaceChildren();
    controls.hidden = true;
    if (viewer()) viewer().setOverlay({ visible: false });
    rerun.hidden = !data.can_rerun;
    if (data.state === "none") {
      setState(data.ensemble ? "Not run" : "No ensemble", "none");
      body.append(el("p", "mb-0 text-body-secondary", data.ensemble
        ? `Not run through ${data.ensemble} yet.` : "This project has no active ensemble."));
      return;
    }
    setState(data.state_display, data.state);
    if (data.state === "queued" || data.state === "running") {
      body.append(el("p", "mb-0 text-body-secondary", `${data.ensemble}: ${data.state === "queued" ? "waiting for a worker…" : "running…"}`));
      return;
    }
    if (data.state === "failed") {
      body.append(el("p", "mb-0 text-danger", data.reason || "The job failed."));
      return;
    }
    const label = data.labels.length ? data.labels.join(", ") : "none of the classes";
    const call = el("p", "mb-2");
    call.append(el("span", "", "Ensemble's call: "), el("strong", "", label));
    call.id = "ai-label";
    body.append(call, el("h3", "h6 mt-2", `Ensemble (${data.ensemble})`), probabilityRows(data.probabilities, data.labels));
    body.append(el("h3", "h6 mt-3", "Members"), membersTable(data.members));
    const u = data.uncertainty || {};
    body.append(el("h3", "h6 mt-3", "Uncertainty"), definitionList([
      ["Member disagreement (std)", Number(u.member_std).toFixed(3)],
      ["Entropy of the mean", Number(u.entropy).toFixed(3)],
      ["Mutual information", Number(u.mutual_information).toFixed(3)],
    ]));
    const t = data.timings || {};
    // The database keeps JSON objects unordered: list the ensemble, then the members in their order.
    const versions = data.versions || {};
    const order = ["ensemble", ...data.members.map((m) => m.name)];
    body.append(el("h3", "h6 mt-3", "Versions and timings"), definitionList([
      ...order.filter((k) => k in versions).map((k) => [k === "ensemble" ? "Ensemble" : k, versions[k]]),
      ["Decision threshold", Number(data.threshold).toFixed(3)],
      ["Test-time augmentation", data.tta ? "on (5 passes)" : "off"],
      ["Inference per image", `${t.inference_ms_per_image} ms`],
      ["Batch size", String(t.batch_size)],
    ]));
    heatmaps = data.heatmaps || {};
    source.replaceChildren(...order.filter((k) => k in heatmaps).map((name) => {
      const option = el("option", "", name === "ensemble" ? "Ensemble (weighted mean)" : name);
      option.value = name;
      return option;
    }));
    controls.hidden = Object.keys(heatmaps).length === 0;
    showHeatmap();
  }

  async function load() {
    clearTimeout(timer);
    try {
      const response = await fetch(panel.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      render(data);
      // "none" with an ensemble: the job is being queued right after release. Without one there is
      // nothing to wait for, so the page stops asking.
      if (data.state === "queued" || data.state === "running" || (data.state === "none" && data.ensemble)) {
        timer = setTimeout(load, data.state === "none" ? 5000 : 1000);
      }
    } catch (err) {
      setState("Unavailable", "failed");
      timer = setTimeout(load, 5000);
    }
  }

  rerun.addEventListener("click", async () => {
    rerun.disabled = true;
    try {
      const response = await fetch(panel.dataset.rerunUrl, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "The job could not be queued.");
      render(data);
      timer = setTimeout(load, 500);
    } catch (err) {
      body.append(el("p", "text-danger mb-0", err.message));
    } finally {
      rerun.disabled = false;
    }
  });
  toggle.addEventListener("change", showHeatmap);
  opacity.addEventListener("input", showHeatmap);
  source.addEventListener("change", showHeatmap);
  load();
})();
