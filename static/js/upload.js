/*
 * clinic_ai: chunked, resumable upload of files, folders and .zip archives.
 *
 * Plain ES2020, no build step, no dependencies. Used by templates/studies/upload_create.html.
 *
 * Rules this script keeps:
 * - File names are untrusted (and may name a patient): they are only ever written with
 *   textContent / attributes, never innerHTML, and never logged.
 * - One selection (a drop or one use of a picker) is one batch. A batch starts uploading at once.
 *   While a batch is uploading, the pickers are disabled; a drop made meanwhile is queued and starts
 *   as its own batch when the current one has finished uploading. Files already in the running or a
 *   queued batch are ignored, so a double drop never uploads the same files twice.
 */
(() => {
  "use strict";

  const { el, safeUrl, csrfToken } = window.clinicCommon; // static/js/common.js

  const CONCURRENCY = 3;
  const POLL_INTERVAL_MS = 1500;
  const POLL_ERROR_DELAY_MS = 3000;
  const RETRY_FIRST_DELAY_MS = 500;
  const RETRY_MAX_DELAY_MS = 8000;
  const MAX_TRIES = 8;
  const MAX_STALLS = 3;
  const CHUNK_TIMEOUT_MS = 5 * 60 * 1000;
  const JSON_TIMEOUT_MS = 60 * 1000;
  const RENDER_THROTTLE_MS = 100;

  const configEl = document.getElementById("uploader-config");
  if (!configEl) return;
  let config;
  try {
    config = JSON.parse(configEl.textContent);
  } catch (err) {
    return;
  }
  const chunkSize = Math.max(1, Math.floor(Number(config.chunk_size)) || 5 * 1024 * 1024);
  const maxFileSize = Number(config.max_file_size) || 0; // 0: no limit checked here
  const maxFiles = Number(config.max_files) || 0; // 0: no limit checked here
  const maxCsvSize = Number(config.label_csv_max_size) || 0; // 0: no limit checked here

  const $ = (id) => document.getElementById(id);
  const ui = {
    dropZone: $("drop-zone"),
    dropHint: $("drop-zone-hint"),
    fileInput: $("file-input"),
    folderInput: $("folder-input"),
    chooseFiles: $("choose-files"),
    chooseFolder: $("choose-folder"),
    studySelect: $("study-select"),
    section: $("upload-progress"),
    overall: $("overall-progress"),
    overallBar: $("overall-progress-bar"),
    overallText: $("overall-progress-text"),
    overallBytes: $("overall-progress-bytes"),
    queueNote: $("upload-queue"),
    actions: $("upload-actions"),
    retryFailed: $("retry-failed"),
    skipFailed: $("skip-failed"),
    retryFinish: $("retry-finish"),
    list: $("upload-files"),
    summary: $("upload-summary"),
    labelSummary: $("upload-label-summary"),
    labelModes: Array.from(document.querySelectorAll("input[name='label-mode']")),
    labelBatchValue: $("label-batch-value"),
    labelCsv: $("label-csv"),
    labelCsvReport: $("label-csv-report"),
    status: $("upload-status"),
    error: $("upload-error"),
  };
  if (!ui.dropZone || !ui.list) return;

  const DROP_HINT_IDLE = ui.dropHint ? ui.dropHint.textContent : "";
  const DROP_HINT_BUSY = "An upload is running. Files dropped now will be uploaded when it has finished.";

  // ---------------------------------------------------------------- statuses

  // Client-side states come first; server states (from the status URL) replace them once known.
  const STATUS = {
    waiting: { label: "Waiting", badge: "text-bg-light border" },
    uploading: { label: "Uploading", badge: "text-bg-info" },
    uploaded: { label: "Uploaded", badge: "text-bg-info" },
    failed: { label: "Failed", badge: "text-bg-warning" },
    skipped: { label: "Not uploaded", badge: "text-bg-warning" },
    // server
    receiving: { label: "Uploading", badge: "text-bg-info" },
    received: { label: "Waiting", badge: "text-bg-info" },
    processing: { label: "Checking", badge: "text-bg-primary" },
    unpacked: { label: "Unpacked", badge: "text-bg-light border" },
    accepted: { label: "Accepted", badge: "text-bg-success" },
    held: { label: "Needs masking", badge: "text-bg-warning" },
    duplicate: { label: "Already uploaded", badge: "text-bg-secondary" },
    rejected: { label: "Rejected", badge: "text-bg-danger" },
    // Nothing moved for UPLOAD_STUCK_MINUTES (no worker running?): the page stops waiting, the reason says why.
    stuck: { label: "Still waiting", badge: "text-bg-warning" },
  };
  const BADGE_CLASSES = Array.from(
    new Set(Object.values(STATUS).flatMap((s) => s.badge.split(" ")).concat(["text-bg-secondary"])),
  );
  // Server states after which nothing changes for a file.
  const FINAL_STATES = new Set(["unpacked", "accepted", "held", "duplicate", "rejected", "stuck"]);
  // Upload-side states in which a file needs nothing more from this page.
  const SENT_STATES = new Set(["uploaded", "rejected", "skipped"]);

  // ---------------------------------------------------------------- helpers

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${bytes} ${bytes === 1 ? "byte" : "bytes"}` : `${numberFormat.format(value)} ${units[unit]}`;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function parseJSON(text) {
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      return null;
    }
  }

  const isRetryable = (status) => status === 0 || status === 408 || status === 429 || status >= 500;

  function errorReason(response) {
    const data = response.data;
    if (data && typeof data.error === "string" && data.error) return data.error;
    if (response.status === 0) return "Could not reach the server. Check the network connection.";
    if (response.status === 403) return "Not allowed. Your session may have expired: reload the page and sign in.";
    if (response.status === 413) return "The file is too large for the server.";
    if (response.status >= 500) return `The server is not available right now (HTTP ${response.status}). Try again in a moment.`;
    return `The server refused the request (HTTP ${response.status}).`;
  }

  /** One JSON request; never throws. Resolves to {status, data}; status 0 means a network error. */
  async function requestJSON(method, url, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), JSON_TIMEOUT_MS);
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", signal: controller.signal, cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken();
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      return { status: response.status, data: parseJSON(text) };
    } catch (err) {
      return { status: 0, data: null };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `attempt` until it gives a non-retryable answer or MAX_TRIES are used, waiting
   * 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s ... between tries. `onRetry(tryNumber)` is told before each wait.
   */
  async function withRetry(attempt, onRetry) {
    let delay = RETRY_FIRST_DELAY_MS;
    for (let tryNumber = 1; ; tryNumber += 1) {
      const response = await attempt();
      if (!isRetryable(response.status) || tryNumber >= MAX_TRIES) return response;
      if (onRetry) onRetry(tryNumber + 1);
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
  }

  function announce(message) {
    if (!ui.status) return;
    ui.status.textContent = message;
  }

  function showError(message) {
    if (!ui.error) return;
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  // ---------------------------------------------------------------- state

  /** @type {Array<object>} batches waiting for the current one to finish uploading */
  const queue = [];
  /** the batch being uploaded (created, sending files, or finishing); null when idle */
  let current = null;
  /** batches whose status is being polled */
  const polling = new Set();
  /** every file row shown, across batches, for the summary */
  const allItems = [];
  /** batches started with labels, in order, for the label summary */
  const labelledBatches = new Set();

  const isUploading = () => current !== null || queue.length > 0;

  // ---------------------------------------------------------------- rows

  function createRow(item) {
    const row = el("li", "list-group-item upload-file");
    row.dataset.fileName = item.name;
    row.dataset.status = item.status;

    const layout = el("div", "d-flex align-items-start gap-3");
    const thumb = el("div", "file-thumb-slot");
    thumb.setAttribute("aria-hidden", "true");

    const body = el("div", "flex-grow-1 min-w-0");
    const head = el("div", "d-flex flex-wrap justify-content-between column-gap-3");
    const name = el("span", "file-name text-break", item.name);
    const size = el("span", "file-size text-body-secondary small text-nowrap", formatBytes(item.size));
    head.append(name, size);
    const labelTag = el("span", "badge rounded-pill text-bg-light border file-label");
    labelTag.hidden = true;

    const progress = el("div", "progress file-progress mt-1");
    progress.setAttribute("role", "progressbar");
    progress.setAttribute("aria-label", "Upload progress");
    progress.setAttribute("aria-valuemin", "0");
    progress.setAttribute("aria-valuemax", "100");
    progress.setAttribute("aria-valuenow", "0");
    const bar = el("div", "progress-bar");
    progress.append(bar);
    if (item.serverOnly) progress.hidden = true;

    const reasonLine = el("div", "small mt-1");
    const reason = el("span", "file-reason");
    const link = el("a", "file-link ms-1");
    link.hidden = true;
    reasonLine.append(reason, link);

    body.append(head, progress, reasonLine);

    const side = el("div", "d-flex flex-column align-items-end gap-1 text-end");
    const badge = el("span", "badge file-status");
    const retry = el("button", "btn btn-sm btn-outline-primary file-retry", "Retry");
    retry.type = "button";
    retry.hidden = true;
    retry.setAttribute("aria-label", `Retry ${item.name}`);
    retry.addEventListener("click", () => retryItem(item));
    side.append(badge, labelTag, retry);

    layout.append(thumb, body, side);
    row.append(layout);

    item.ui = { row, thumb, name, labelTag, size, progress, bar, reason, link, badge, retry };
    return row;
  }

  function effectiveStatus(item) {
    return item.server && item.server.status ? item.server.status : item.status;
  }

  function renderProgress(item) {
    const { progress, bar } = item.ui;
    let pct;
    if (item.size > 0) pct = (Math.min(item.size, item.sent + item.inflight) / item.size) * 100;
    else pct = SENT_STATES.has(item.status) || item.server ? 100 : 0;
    if (item.status === "uploaded" || (item.server && item.status !== "failed")) pct = 100;
    const rounded = Math.round(pct);
    bar.style.width = `${pct.toFixed(1)}%`;
    progress.setAttribute("aria-valuenow", String(rounded));
    const running = item.status === "uploading";
    bar.classList.toggle("progress-bar-striped", running);
    bar.classList.toggle("progress-bar-animated", running);
    bar.classList.toggle("bg-success", rounded >= 100 && item.status !== "failed" && item.status !== "skipped");
    bar.classList.toggle("bg-warning", item.status === "failed" || item.status === "skipped");
  }

  function renderRow(item) {
    const u = item.ui;
    const status = effectiveStatus(item);
    const info = STATUS[status] || { label: status, badge: "text-bg-secondary" };
    const server = item.server || null;

    u.row.dataset.status = status;
    if (item.id) u.row.dataset.fileId = item.id;

    u.badge.classList.remove(...BADGE_CLASSES);
    u.badge.classList.add(...info.badge.split(" "));
    u.badge.textContent = server && server.status_display ? String(server.status_display) : info.label;

    // Reason line.
    let reason = item.reason || "";
    if (server) {
      if (server.reason) reason = String(server.reason);
      else if (status === "duplicate") reason = "This image was uploaded before.";
      else if (item.status !== "failed") reason = "";
    }
    u.reason.textContent = reason;
    const alarming = status === "rejected" || status === "stuck";
    u.reason.classList.toggle("text-danger", alarming);
    u.reason.classList.toggle("text-body-secondary", !alarming);

    const imageUrl = server ? safeUrl(server.image_url) : null;
    const previewUrl = server ? safeUrl(server.preview_url) : null;

    // Link to the existing image for duplicates; to the masking page for held images.
    if ((status === "duplicate" || status === "held") && imageUrl) {
      u.link.href = imageUrl;
      u.link.textContent = status === "held" ? "Mask burned-in text" : "View the existing image";
      u.link.hidden = false;
    } else {
      u.link.hidden = true;
      u.link.removeAttribute("href");
    }

    // Thumbnail for accepted files.
    renderThumb(item, status, imageUrl, previewUrl);

    // Upload progress bar: hidden for files that never upload bytes (members of a .zip, files refused
    // before upload) and once the server has a final verdict.
    if (!item.serverOnly) {
      const neverSent = status === "rejected" && !item.chunkUrl && item.sent === 0;
      u.progress.hidden = neverSent || FINAL_STATES.has(status);
      renderProgress(item);
    }

    u.retry.hidden = item.status !== "failed";

    // The label given at upload (from the batch, a class folder or the CSV), once the server knows it.
    const label = server && status !== "rejected" && status !== "unpacked" ? server.label : "";
    u.labelTag.textContent = label ? `Label: ${label}` : "";
    u.labelTag.hidden = !label;
    if (label) u.row.dataset.label = label;
    else delete u.row.dataset.label;
  }

  function renderThumb(item, status, imageUrl, previewUrl) {
    const slot = item.ui.thumb;
    if (status !== "accepted") {
      if (slot.dataset.state !== "none") {
        slot.replaceChildren();
        slot.dataset.state = "none";
        slot.setAttribute("aria-hidden", "true");
      }
      return;
    }
    if (!previewUrl) {
      if (slot.dataset.state !== "pending") {
        const spinner = el("span", "spinner-border spinner-border-sm text-secondary");
        spinner.setAttribute("aria-hidden", "true");
        slot.replaceChildren(spinner);
        slot.dataset.state = "pending";
        slot.title = "Preparing the preview";
      }
      return;
    }
    const key = `${previewUrl} ${imageUrl || ""}`;
    if (slot.dataset.state === "ready" && slot.dataset.key === key) return;
    const img = el("img", "file-thumb");
    img.src = previewUrl;
    img.alt = `Preview of ${item.name}`;
    img.loading = "lazy";
    img.decoding = "async";
    let node = img;
    if (imageUrl) {
      node = el("a", "file-image-link");
      node.href = imageUrl;
      node.append(img);
    }
    slot.replaceChildren(node);
    slot.removeAttribute("aria-hidden");
    slot.removeAttribute("title");
    slot.dataset.state = "ready";
    slot.dataset.key = key;
  }

  // Progress events are frequent: coalesce their repaint.
  const dirty = new Set();
  let renderTimer = null;
  function scheduleProgress(item) {
    dirty.add(item);
    if (renderTimer !== null) return;
    renderTimer = setTimeout(() => {
      renderTimer = null;
      for (const it of dirty) renderProgress(it);
      dirty.clear();
      renderOverall();
    }, RENDER_THROTTLE_MS);
  }

  // ---------------------------------------------------------------- overall progress and summary

  let shownBatch = null;

  function renderOverall() {
    const batch = shownBatch;
    if (!batch || !ui.overall) return;
    const items = batch.items.filter((item) => !item.serverOnly);
    let done = 0;
    let totalBytes = 0;
    let sentBytes = 0;
    for (const item of items) {
      if (SENT_STATES.has(item.status)) done += 1;
      if (item.status === "rejected" || item.status === "skipped") continue;
      totalBytes += item.size;
      sentBytes += item.status === "uploaded" ? item.size : Math.min(item.size, item.sent + item.inflight);
    }
    let pct;
    if (totalBytes > 0) pct = (sentBytes / totalBytes) * 100;
    else pct = items.length ? (done / items.length) * 100 : 100;
    if (done === items.length) pct = 100;
    const text = `${done} of ${plural(items.length, "file", "files")}`;
    ui.overallBar.style.width = `${pct.toFixed(1)}%`;
    ui.overall.setAttribute("aria-valuenow", String(Math.round(pct)));
    ui.overall.setAttribute("aria-valuetext", `${text}, ${formatBytes(sentBytes)} of ${formatBytes(totalBytes)}`);
    if (ui.overallText) ui.overallText.textContent = text;
    if (ui.overallBytes) ui.overallBytes.textContent = `${formatBytes(sentBytes)} of ${formatBytes(totalBytes)}`;
    const running = batch === current && batch.active > 0;
    ui.overallBar.classList.toggle("progress-bar-striped", running);
    ui.overallBar.classList.toggle("progress-bar-animated", running);
  }

  function summaryText() {
    let accepted = 0;
    let duplicate = 0;
    let rejected = 0;
    let notUploaded = 0;
    let held = 0;
    let stuck = 0;
    for (const item of allItems) {
      const status = effectiveStatus(item);
      if (status === "accepted") accepted += 1;
      else if (status === "held") held += 1;
      else if (status === "duplicate") duplicate += 1;
      else if (status === "rejected") rejected += 1;
      else if (status === "stuck") stuck += 1;
      else if (status === "failed" || status === "skipped") notUploaded += 1;
    }
    let text = `${accepted} accepted, ${duplicate} duplicate, ${rejected} rejected`;
    if (held) text += `, ${held} need${held === 1 ? "s" : ""} masking`;
    if (notUploaded) text += `, ${notUploaded} not uploaded`;
    if (stuck) text += `, ${stuck} not processed yet (the server is not processing uploads right now)`;
    return text;
  }

  /** The summary is shown once nothing is uploading or being processed. */
  function renderSummary() {
    if (!ui.summary) return;
    if (isUploading() || polling.size > 0 || allItems.length === 0) {
      ui.summary.textContent = "";
      ui.summary.hidden = true;
      if (ui.labelSummary) ui.labelSummary.hidden = true;
      return;
    }
    const text = summaryText();
    ui.summary.textContent = text;
    ui.summary.hidden = false;
    const labels = labelSummaryText();
    if (ui.labelSummary) {
      ui.labelSummary.textContent = labels ? `Labels: ${labels}` : "";
      ui.labelSummary.hidden = !labels;
    }
    announce(`Upload finished: ${text}.${labels ? ` Labels: ${labels}.` : ""}`);
  }

  /** The server's label summary of each finished batch that carried labels ("12 labelled normal, …"). */
  function labelSummaryText() {
    return Array.from(labelledBatches)
      .map((batch) => (batch.labelReport && typeof batch.labelReport.summary === "string" ? batch.labelReport.summary : ""))
      .filter(Boolean)
      .join("; ");
  }

  function renderControls() {
    const busy = isUploading();
    const labelControls = [...ui.labelModes, ui.labelBatchValue, ui.labelCsv];
    for (const control of [ui.fileInput, ui.folderInput, ui.chooseFiles, ui.chooseFolder, ui.studySelect, ...labelControls]) {
      if (control) control.disabled = busy;
    }
    ui.dropZone.classList.toggle("is-busy", busy);
    ui.dropZone.setAttribute("aria-busy", busy ? "true" : "false");
    if (ui.dropHint) ui.dropHint.textContent = busy ? DROP_HINT_BUSY : DROP_HINT_IDLE;
    if (ui.queueNote) {
      const waiting = queue.reduce((n, b) => n + b.items.length, 0);
      ui.queueNote.textContent = waiting
        ? `${plural(waiting, "more file is", "more files are")} waiting to start after this upload.`
        : "";
      ui.queueNote.hidden = !waiting;
    }
  }

  function showActions(which) {
    if (!ui.actions) return;
    const failedShown = which === "failed";
    if (ui.retryFailed) ui.retryFailed.hidden = !failedShown;
    if (ui.skipFailed) ui.skipFailed.hidden = !failedShown;
    if (ui.retryFinish) ui.retryFinish.hidden = which !== "finish";
    ui.actions.hidden = !which;
  }

  // ---------------------------------------------------------------- collecting files

  const JUNK_NAMES = new Set(["thumbs.db", "desktop.ini"]);

  /** Hidden OS files: any path part starting with ".", __MACOSX folders, Thumbs.db, desktop.ini. */
  function isJunk(path) {
    const parts = path.split("/").filter(Boolean);
    if (!parts.length) return true;
    if (parts.some((part) => part.startsWith(".") || part === "__MACOSX")) return true;
    return JUNK_NAMES.has(parts[parts.length - 1].toLowerCase());
  }

  function entryFile(entry) {
    return new Promise((resolve, reject) => entry.file(resolve, reject));
  }

  function readBatch(reader) {
    return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
  }

  async function walkEntry(entry, found) {
    const path = (entry.fullPath || entry.name || "").replace(/^\/+/, "") || entry.name;
    if (isJunk(path)) {
      found.skipped += 1;
      return;
    }
    try {
      if (entry.isFile) {
        found.files.push({ file: await entryFile(entry), path });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        // readEntries returns at most ~100 entries per call: keep reading until it returns none.
        for (;;) {
          const entries = await readBatch(reader);
          if (!entries.length) break;
          for (const child of entries) await walkEntry(child, found);
        }
      }
    } catch (err) {
      found.unreadable += 1;
    }
  }

  /** Must be called synchronously in the drop handler: DataTransfer items are gone after it returns. */
  function collectDropped(dataTransfer) {
    const entries = [];
    const loose = [];
    const items = dataTransfer.items ? Array.from(dataTransfer.items) : [];
    if (items.length && typeof items[0].webkitGetAsEntry === "function") {
      for (const item of items) {
        if (item.kind !== "file") continue;
        const entry = item.webkitGetAsEntry();
        if (entry) entries.push(entry);
        else {
          const file = item.getAsFile();
          if (file) loose.push(file);
        }
      }
    } else {
      loose.push(...Array.from(dataTransfer.files || []));
    }
    return (async () => {
      const found = { files: [], skipped: 0, unreadable: 0 };
      for (const entry of entries) await walkEntry(entry, found);
      for (const file of loose) {
        if (isJunk(file.name)) found.skipped += 1;
        else found.files.push({ file, path: file.name });
      }
      return found;
    })();
  }

  function collectInput(input) {
    const found = { files: [], skipped: 0, unreadable: 0 };
    for (const file of Array.from(input.files || [])) {
      const path = (file.webkitRelativePath || file.name).replace(/^\/+/, "");
      if (isJunk(path)) found.skipped += 1;
      else found.files.push({ file, path });
    }
    return found;
  }

  // ---------------------------------------------------------------- labels at source

  /**
   * The labels chosen on the page for the next upload: {labels: {mode, values}, csvFile} or {error}.
   * The server checks them again (classes, the CSV's rows); this only catches a choice left half-made.
   */
  function readLabelChoice() {
    const checked = ui.labelModes.find((input) => input.checked);
    const mode = checked ? checked.value : "none";
    if (mode === "batch") {
      const values = ui.labelBatchValue
        ? Array.from(ui.labelBatchValue.selectedOptions).map((o) => o.value).filter(Boolean)
        : [];
      if (!values.length) return { error: "Choose the label for the whole upload, or choose “No labels”." };
      return { labels: { mode, values } };
    }
    if (mode === "csv") {
      const file = ui.labelCsv && ui.labelCsv.files ? ui.labelCsv.files[0] : null;
      if (!file) return { error: "Choose the CSV of file names and labels, or another way of labelling." };
      if (maxCsvSize && file.size > maxCsvSize) {
        return { error: `The labels file is over the ${formatBytes(maxCsvSize)} limit: split the upload.` };
      }
      return { labels: { mode }, csvFile: file };
    }
    if (mode === "folders") return { labels: { mode } };
    return { labels: null };
  }

  // Picking a class or a CSV picks its way of labelling.
  if (ui.labelBatchValue) {
    ui.labelBatchValue.addEventListener("change", () => {
      const radio = ui.labelModes.find((input) => input.value === "batch");
      if (radio && ui.labelBatchValue.value) radio.checked = true;
    });
  }
  if (ui.labelCsv) {
    ui.labelCsv.addEventListener("change", () => {
      const radio = ui.labelModes.find((input) => input.value === "csv");
      if (radio && ui.labelCsv.files && ui.labelCsv.files.length) radio.checked = true;
    });
  }

  function showCsvReport(report) {
    if (!ui.labelCsvReport) return;
    if (!report) {
      ui.labelCsvReport.hidden = true;
      ui.labelCsvReport.textContent = "";
      return;
    }
    const labelled = Number(report.labelled) || 0;
    const bad = Number(report.bad_count) || 0;
    let text = `The CSV gives labels for ${plural(labelled, "file name", "file names")}.`;
    if (bad) {
      const rows = Array.isArray(report.bad_rows) ? report.bad_rows : [];
      const listed = rows
        .filter((row) => row && Number.isFinite(Number(row.line)) && typeof row.reason === "string")
        .map((row) => `line ${Number(row.line)}: ${row.reason}`);
      text += ` ${plural(bad, "row was", "rows were")} left out: ${listed.join("; ")}${bad > listed.length ? "; …" : ""}.`;
    }
    ui.labelCsvReport.textContent = text;
    ui.labelCsvReport.classList.toggle("alert-warning", bad > 0);
    ui.labelCsvReport.classList.toggle("alert-secondary", bad === 0);
    ui.labelCsvReport.hidden = false;
  }

  /** Sends the CSV of a "csv" upload before its files; never throws. */
  async function sendLabelCsv(batch, url) {
    const response = await withRetry(async () => {
      try {
        const answer = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          cache: "no-store",
          headers: { "Content-Type": "text/csv", Accept: "application/json", "X-CSRFToken": csrfToken() },
          body: batch.csvFile,
        });
        return { status: answer.status, data: parseJSON(await answer.text()) };
      } catch (err) {
        return { status: 0, data: null };
      }
    });
    return response;
  }

  // ---------------------------------------------------------------- selections and batches

  const fileKey = (file, path) => `${path}\u0000${file.size}\u0000${file.lastModified}`;

  function keysInFlight() {
    const keys = new Set();
    for (const batch of current ? [current, ...queue] : queue) {
      for (const item of batch.items) if (item.key) keys.add(item.key);
    }
    return keys;
  }

  function addSelection(found) {
    showError("");
    const notes = [];
    if (found.skipped) notes.push(`Skipped ${plural(found.skipped, "hidden or system file", "hidden or system files")}.`);
    if (found.unreadable) notes.push(`${plural(found.unreadable, "item", "items")} could not be read and were left out.`);

    // Same file twice in one selection, or already in the running/queued batches: ignore.
    const inFlight = keysInFlight();
    const seen = new Set();
    let repeated = 0;
    const picked = [];
    for (const { file, path } of found.files) {
      const key = fileKey(file, path);
      if (seen.has(key)) continue;
      seen.add(key);
      if (inFlight.has(key)) {
        repeated += 1;
        continue;
      }
      picked.push({ file, path, key });
    }
    if (repeated) notes.push(`${plural(repeated, "file is", "files are")} already being uploaded and ${repeated === 1 ? "was" : "were"} ignored.`);

    if (!picked.length) {
      notes.unshift(found.files.length ? "Nothing new to upload." : "No files to upload were found.");
      announce(notes.join(" "));
      return;
    }
    const labelChoice = readLabelChoice();
    if (labelChoice.error) {
      showError(labelChoice.error);
      announce(labelChoice.error);
      return;
    }
    if (maxFiles && picked.length > maxFiles) {
      showError(
        `${picked.length} files were chosen, but one upload can take at most ${maxFiles}. ` +
          "Choose fewer files (for example one folder at a time), or put them in a .zip file.",
      );
      announce(notes.join(" "));
      return;
    }

    picked.sort((a, b) => a.path.localeCompare(b.path, undefined, { numeric: true, sensitivity: "base" }));
    const batch = {
      study: ui.studySelect ? ui.studySelect.value : "",
      labelChoice: labelChoice.labels,
      labelReport: null,
      csvFile: labelChoice.csvFile || null,
      items: [],
      pending: [],
      active: 0,
      byId: new Map(),
      urls: null,
      finished: false,
    };
    const fragment = document.createDocumentFragment();
    for (const { file, path, key } of picked) {
      const item = {
        key,
        file,
        name: path,
        size: file.size,
        status: "waiting",
        reason: "",
        id: null,
        chunkUrl: null,
        sent: 0,
        inflight: 0,
        needsProbe: false,
        server: null,
        serverOnly: false,
        batch,
      };
      if (maxFileSize && file.size > maxFileSize) {
        item.status = "rejected";
        item.reason = `Larger than the ${formatBytes(maxFileSize)} limit for one file.`;
      }
      batch.items.push(item);
      allItems.push(item);
      fragment.append(createRow(item));
      renderRow(item);
    }
    ui.list.append(fragment);
    if (ui.section) ui.section.hidden = false;

    const startsNow = current === null;
    queue.push(batch);
    notes.unshift(
      startsNow
        ? `Uploading ${plural(picked.length, "file", "files")}.`
        : `${plural(picked.length, "file", "files")} will be uploaded when the current upload has finished.`,
    );
    announce(notes.join(" "));
    renderControls();
    renderSummary();
    startNextBatch();
  }

  function startNextBatch() {
    if (current !== null || !queue.length) return;
    current = queue.shift();
    runBatch(current);
  }

  function endBatch(batch) {
    if (current === batch) current = null;
    renderOverall();
    renderControls();
    renderSummary();
    startNextBatch();
  }

  async function runBatch(batch) {
    shownBatch = batch;
    renderControls();
    renderOverall();
    showActions(null);

    const toSend = batch.items.filter((item) => item.status === "waiting");
    if (!toSend.length) {
      // Everything was refused on this side: nothing to tell the server.
      announce(`No files were uploaded: ${summaryText()}.`);
      endBatch(batch);
      return;
    }

    const body = { study: batch.study };
    if (batch.labelChoice) body.labels = batch.labelChoice;
    const created = await withRetry(() => requestJSON("POST", config.create_url, body));
    const data = created.data || {};
    if (created.status < 200 || created.status >= 300 || !data.files_url || !data.finish_url || !data.status_url) {
      const reason = created.status >= 200 && created.status < 300 ? "Unexpected answer from the server." : errorReason(created);
      showError(`The upload could not be started: ${reason}`);
      for (const item of toSend) {
        item.status = "skipped";
        item.reason = reason;
        renderRow(item);
      }
      announce(`The upload could not be started: ${reason}`);
      endBatch(batch);
      return;
    }
    batch.id = data.id;
    batch.urls = { files: data.files_url, status: data.status_url, finish: data.finish_url };
    if (batch.labelChoice) labelledBatches.add(batch);
    if (batch.csvFile) {
      announce("Sending the CSV of labels…");
      const sent = await sendLabelCsv(batch, data.labels_url);
      if (sent.status < 200 || sent.status >= 300) {
        // Without its labels the upload would go in unlabelled: nothing is sent, the person fixes the CSV.
        const reason = errorReason(sent);
        showError(`The labels file was refused: ${reason}`);
        showCsvReport(null);
        for (const item of toSend) {
          item.status = "skipped";
          item.reason = "Not uploaded: the labels file was refused.";
          renderRow(item);
        }
        labelledBatches.delete(batch);
        await withRetry(() => requestJSON("POST", batch.urls.finish, {}));
        batch.finished = true;
        announce(`Nothing was uploaded: the labels file was refused. ${reason}`);
        endBatch(batch);
        return;
      }
      showCsvReport(sent.data || {});
    }
    batch.pending.push(...toSend);
    pump(batch);
  }

  /** Keeps up to CONCURRENCY files of the batch uploading; calls batchIdle when nothing is left. */
  function pump(batch) {
    while (batch.active < CONCURRENCY && batch.pending.length) {
      const item = batch.pending.shift();
      batch.active += 1;
      uploadItem(batch, item)
        .catch(() => {
          // Should not happen (helpers never throw), but never leave a file spinning.
          if (!SENT_STATES.has(item.status)) {
            item.status = "failed";
            item.reason = "Upload failed unexpectedly.";
            item.needsProbe = Boolean(item.chunkUrl);
          }
        })
        .finally(() => {
          batch.active -= 1;
          item.inflight = 0;
          renderRow(item);
          renderOverall();
          pump(batch);
        });
    }
    if (batch.active === 0 && batch.pending.length === 0) batchIdle(batch);
  }

  function batchIdle(batch) {
    if (batch.finished || batch !== current) return;
    const failed = batch.items.filter((item) => item.status === "failed");
    if (failed.length) {
      showActions("failed");
      announce(
        `${plural(failed.length, "file", "files")} could not be uploaded because of a connection problem. ` +
          `Retry, or finish the upload without ${failed.length === 1 ? "it" : "them"}.`,
      );
      return;
    }
    finishBatch(batch);
  }

  async function finishBatch(batch) {
    if (batch.finished || batch.finishing) return;
    batch.finishing = true;
    showActions(null);
    announce("All files sent. Completing the upload…");
    const response = await withRetry(() => requestJSON("POST", batch.urls.finish, {}));
    batch.finishing = false;
    if (isRetryable(response.status)) {
      showError(`The upload could not be completed: ${errorReason(response)}`);
      showActions("finish");
      announce("The upload could not be completed. Use “Try again”.");
      return;
    }
    batch.finished = true;
    if (response.status < 200 || response.status >= 300) {
      showError(`The upload could not be completed: ${errorReason(response)}`);
    } else {
      showError("");
      announce("All files sent. Checking the images…");
    }
    startPolling(batch);
    endBatch(batch);
  }

  function retryItem(item) {
    const batch = item.batch;
    if (item.status !== "failed" || batch.finished || batch !== current) return;
    item.status = "waiting";
    item.reason = "";
    item.needsProbe = Boolean(item.chunkUrl);
    renderRow(item);
    showActions(null);
    batch.pending.push(item);
    pump(batch);
  }

  // ---------------------------------------------------------------- one file

  function setRetrying(item, tryNumber) {
    item.reason = `Connection problem, trying again (attempt ${tryNumber} of ${MAX_TRIES})…`;
    renderRow(item);
  }

  function markFailed(item, response) {
    item.status = "failed";
    item.needsProbe = Boolean(item.chunkUrl);
    item.reason =
      response.status === 0
        ? "Network error: the connection failed several times. Retry continues where it stopped."
        : `Server unavailable (HTTP ${response.status}). Retry continues where it stopped.`;
    renderRow(item);
  }

  function markRejected(item, response) {
    item.status = "rejected";
    item.reason = errorReason(response);
    renderRow(item);
  }

  async function uploadItem(batch, item) {
    item.status = "uploading";
    item.reason = "";
    renderRow(item);

    if (!item.chunkUrl) {
      const response = await withRetry(
        () => requestJSON("POST", batch.urls.files, { name: item.name, size: item.size }),
        (n) => setRetrying(item, n),
      );
      const data = response.data || {};
      if (isRetryable(response.status)) return markFailed(item, response);
      if (response.status < 200 || response.status >= 300) return markRejected(item, response);
      if (!data.id || !data.chunk_url) {
        return markRejected(item, { status: response.status, data: { error: "Unexpected answer from the server." } });
      }
      item.id = String(data.id);
      item.chunkUrl = data.chunk_url;
      item.sent = Math.max(0, Math.min(item.size, Number(data.received) || 0));
      batch.byId.set(item.id, item);
      item.reason = "";
      renderRow(item);
    }
    await sendChunks(item);
  }

  /** Sends the file from the server's offset on; ends with item.status uploaded, rejected or failed. */
  async function sendChunks(item) {
    let probe = item.needsProbe; // after a failure: ask the server where it stands first
    item.needsProbe = false;
    let offset = probe ? 0 : item.sent;
    let stalls = 0;

    for (;;) {
      const end = probe ? offset : Math.min(offset + chunkSize, item.size);
      const blob = probe ? new Blob([]) : item.file.slice(offset, end);
      const sentAt = offset;
      const response = await withRetry(
        () => sendChunk(item, sentAt, blob),
        (n) => setRetrying(item, n),
      );
      item.inflight = 0;
      const data = response.data || {};
      const received = Number.isFinite(Number(data.received)) ? Math.max(0, Math.min(item.size, Number(data.received))) : null;

      if (response.status >= 200 && response.status < 300) {
        const next = received === null ? end : received;
        if (data.complete === true || next >= item.size) break;
        if (next <= sentAt && !probe) stalls += 1;
        else stalls = 0;
        offset = next;
      } else if (response.status === 409 && received !== null) {
        // The server has a different offset: continue from there (resume).
        if (received >= item.size) break;
        if (received === sentAt && !probe) stalls += 1;
        else stalls = 0;
        offset = received;
      } else if (isRetryable(response.status)) {
        item.sent = offset;
        markFailed(item, response);
        return;
      } else {
        item.sent = offset;
        markRejected(item, response);
        return;
      }
      probe = false;
      item.sent = offset;
      if (stalls >= MAX_STALLS) {
        markRejected(item, { status: response.status, data: { error: "The server did not accept the file's data." } });
        return;
      }
      if (item.reason) {
        item.reason = ""; // clear a "trying again" note
        renderRow(item);
      } else {
        scheduleProgress(item);
      }
    }

    item.sent = item.size;
    item.status = "uploaded";
    item.reason = "";
    renderRow(item);
  }

  /** One chunk through XMLHttpRequest (for upload progress events); never throws. */
  function sendChunk(item, offset, blob) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", item.chunkUrl);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-Chunk-Offset", String(offset));
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.timeout = CHUNK_TIMEOUT_MS;
      xhr.upload.onprogress = (event) => {
        item.inflight = Math.min(blob.size, event.loaded);
        scheduleProgress(item);
      };
      xhr.onload = () => resolve({ status: xhr.status, data: parseJSON(xhr.responseText) });
      const networkError = () => {
        item.inflight = 0;
        scheduleProgress(item);
        resolve({ status: 0, data: null });
      };
      xhr.onerror = networkError;
      xhr.ontimeout = networkError;
      xhr.onabort = networkError;
      try {
        xhr.send(blob);
      } catch (err) {
        networkError();
      }
    });
  }

  // ---------------------------------------------------------------- status polling

  function startPolling(batch) {
    if (!batch.urls || polling.has(batch)) return;
    polling.add(batch);
    poll(batch).finally(() => {
      polling.delete(batch);
      renderSummary();
    });
  }

  async function poll(batch) {
    for (;;) {
      const response = await requestJSON("GET", batch.urls.status);
      if (response.status === 200 && response.data && Array.isArray(response.data.files)) {
        applyStatus(batch, response.data.files);
        const labels = response.data.labels;
        batch.labelReport = labels && typeof labels === "object" ? labels : null;
        if (response.data.complete === true) return;
        await sleep(POLL_INTERVAL_MS);
      } else if (response.status >= 400 && !isRetryable(response.status)) {
        showError(`Could not get the processing status: ${errorReason(response)}`);
        return;
      } else {
        await sleep(POLL_ERROR_DELAY_MS);
      }
    }
  }

  /** Row after which a member of `name` (e.g. "scan.zip/IM0001.dcm") goes: after its archive's rows. */
  function insertionPoint(batch, name) {
    let best = null;
    for (const item of batch.items) {
      if (item.serverOnly && item.parentItem) continue;
      if (name.startsWith(`${item.name}/`) && (!best || item.name.length > best.name.length)) best = item;
    }
    return best;
  }

  function applyStatus(batch, files) {
    for (const entry of files) {
      if (!entry || entry.id === undefined || entry.id === null) continue;
      const id = String(entry.id);
      let item = batch.byId.get(id);
      if (!item) {
        // A file the server made from an upload, e.g. a member of a .zip.
        const name = typeof entry.name === "string" && entry.name ? entry.name : "(unnamed file)";
        item = {
          key: null,
          file: null,
          name,
          size: null,
          status: "uploaded",
          reason: "",
          id,
          chunkUrl: null,
          sent: 0,
          inflight: 0,
          needsProbe: false,
          server: null,
          serverOnly: true,
          batch,
          parentItem: null,
        };
        const row = createRow(item);
        const parent = insertionPoint(batch, name);
        if (parent) {
          const after = parent.lastMemberRow || parent.ui.row;
          after.after(row);
          parent.lastMemberRow = row;
          item.parentItem = parent;
        } else {
          const last = batch.items[batch.items.length - 1];
          if (last && last.ui.row.isConnected) last.ui.row.after(row);
          else ui.list.append(row);
        }
        batch.items.push(item);
        batch.byId.set(id, item);
        allItems.push(item);
      }
      item.server = {
        status: typeof entry.status === "string" ? entry.status : "",
        status_display: typeof entry.status_display === "string" ? entry.status_display : "",
        reason: typeof entry.reason === "string" ? entry.reason : "",
        image_url: entry.image_url || null,
        preview_url: entry.preview_url || null,
        label: typeof entry.label === "string" ? entry.label : "",
      };
      renderRow(item);
    }
  }

  // ---------------------------------------------------------------- events

  function pickFrom(input) {
    const found = collectInput(input);
    input.value = ""; // the same files can be chosen again later, on purpose
    if (found.files.length || found.skipped) addSelection(found);
  }

  if (ui.fileInput) ui.fileInput.addEventListener("change", () => pickFrom(ui.fileInput));
  if (ui.folderInput) ui.folderInput.addEventListener("change", () => pickFrom(ui.folderInput));
  // Files chosen while the page was still loading, before these listeners existed.
  for (const input of [ui.fileInput, ui.folderInput]) {
    if (input && input.files && input.files.length) pickFrom(input);
  }
  if (ui.chooseFiles && ui.fileInput) {
    ui.chooseFiles.addEventListener("click", () => {
      if (!isUploading()) ui.fileInput.click();
    });
  }
  if (ui.chooseFolder && ui.folderInput) {
    ui.chooseFolder.addEventListener("click", () => {
      if (!isUploading()) ui.folderInput.click();
    });
  }

  const hasFiles = (event) =>
    Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");

  let dragDepth = 0;
  ui.dropZone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    ui.dropZone.classList.add("is-dragover");
  });
  ui.dropZone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    ui.dropZone.classList.add("is-dragover");
  });
  ui.dropZone.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) ui.dropZone.classList.remove("is-dragover");
  });
  ui.dropZone.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    dragDepth = 0;
    ui.dropZone.classList.remove("is-dragover");
    const pending = collectDropped(event.dataTransfer);
    announce("Reading the dropped files…");
    pending.then(addSelection, () => announce("The dropped files could not be read."));
  });
  // Clicking the empty part of the drop zone opens the file picker too (the buttons stay the keyboard route).
  ui.dropZone.addEventListener("click", (event) => {
    if (event.target.closest("button, a, input, select, label")) return;
    if (!isUploading() && ui.fileInput) ui.fileInput.click();
  });

  // A file dropped next to the drop zone must not make the browser open it and leave the page.
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event) || ui.dropZone.contains(event.target)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "none";
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event) || ui.dropZone.contains(event.target)) return;
    event.preventDefault();
  });

  if (ui.retryFailed) {
    ui.retryFailed.addEventListener("click", () => {
      if (!current) return;
      for (const item of current.items.filter((it) => it.status === "failed")) retryItem(item);
    });
  }
  if (ui.skipFailed) {
    ui.skipFailed.addEventListener("click", () => {
      const batch = current;
      if (!batch || batch.active || batch.pending.length) return;
      for (const item of batch.items) {
        if (item.status !== "failed") continue;
        item.status = "skipped";
        item.reason = "Not uploaded: left out after a connection problem.";
        renderRow(item);
      }
      renderOverall();
      finishBatch(batch);
    });
  }
  if (ui.retryFinish) {
    ui.retryFinish.addEventListener("click", () => {
      if (current && !current.finished) {
        showError("");
        finishBatch(current);
      }
    });
  }

  window.addEventListener("beforeunload", (event) => {
    if (!isUploading()) return;
    event.preventDefault();
    event.returnValue = true; // Chrome/Edge before 119 need this to show the prompt
  });

  renderControls();
  document.documentElement.dataset.uploaderReady = "true";
})();
