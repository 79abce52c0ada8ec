/*
 * clinic_ai: the keyboard labelling page (templates/labelling/label_queue.html).
 *
 * Speed is the point: the next images of the queue and their pictures are fetched and decoded
 * before the reader presses a key, so one key stores the label in the background and draws the next
 * image at once. The image is drawn by the viewer (static/js/viewer.js): its full-bit-depth pixels
 * are preloaded too, so window/level is real; when they are not there yet, the 8-bit preview is
 * drawn first and replaced when they arrive. Saves go out one at a time, in order, and are retried until the server answers;
 * each carries a request id, so a retry never stores a label twice. Nothing inline (CSP): the page's
 * settings come from a JSON script element.
 */
(() => {
  "use strict";

  const configNode = document.getElementById("labelling-config");
  const stage = document.getElementById("label-stage");
  if (!configNode || !stage) return;
  const config = JSON.parse(configNode.textContent);
  const { el, csrfToken, safeUrl } = window.clinicCommon;
  const viewerHost = document.getElementById("label-viewer");
  const message = document.getElementById("label-empty");
  const viewer = window.ClinicViewer.mount(viewerHost, { toolbar: false, label: "Image to label" });

  const AHEAD = 4; // images kept fetched and decoded ahead of the one shown
  const EXCLUDE_MAX = 150; // ids sent back to the server as "already here": keeps the URL short
  const multilabel = config.taskType === "multilabel";

  const queue = []; // items waiting, each {id, preview_url, pixels_url, ai, img, decoded, ready, preview, pixels}
  const seen = new Set(); // ids held, skipped or labelled in this session: never fetched again
  const history = []; // [{item, op}] labels of this session, newest last, for undo
  const ops = []; // server writes waiting, in order: {url, body, sent}
  const chosen = new Set(); // multi-label: classes toggled on the image shown
  let current = null;
  let shownAt = performance.now();
  let fetching = null;
  let exhausted = false;
  let pumping = false;
  let labelled = 0;

  // Figures for tests and bench/labelling.py: key-to-next-image-drawn times, in ms.
  const stats = { timings: [], drawn: 0 };
  window.clinicLabelling = stats;

  const countNode = document.getElementById("label-count");
  const saveNode = document.getElementById("label-save-state");
  const errorNode = document.getElementById("label-error");
  const aiNode = document.getElementById("label-ai");

  function requestId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = window.crypto.getRandomValues(new Uint8Array(16)); // plain-http deployments
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function showError(text) {
    errorNode.textContent = text || "";
  }

  function updateSaveState(retrying) {
    if (!ops.length) saveNode.textContent = "all saved";
    else saveNode.textContent = retrying ? `retrying (${ops.length} waiting)…` : `saving (${ops.length})…`;
  }

  function preload(item) {
    const img = new Image();
    img.alt = "Image to label";
    img.decoding = "async";
    img.src = item.preview_url;
    item.img = img;
    item.decoded = false;
    item.ready = img.decode().then(
      () => {
        // Turned into the viewer's picture now, not when the key comes.
        item.preview = window.ClinicViewer.prepare(window.ClinicViewer.pictureFromImage(img));
        item.decoded = true;
        return true;
      },
      () => false,
    );
    loadPixels(item);
  }

  function loadPixels(item) {
    const url = safeUrl(item.pixels_url);
    if (!url || item.pixels || item.loadingPixels) return;
    item.loadingPixels = window.ClinicViewer.fetchPixels(url).then(
      (picture) => {
        item.pixels = window.ClinicViewer.prepare(picture); // windowed now, not when the key comes
        item.loadingPixels = null;
        if (current === item && item.shown) viewer.show(picture, true);
      },
      () => {
        item.loadingPixels = null; // the 8-bit preview stays on screen
      },
    );
  }

  /** Pictures of images left behind are dropped: a long session would otherwise keep them all. */
  function release(item) {
    if (!item) return;
    item.pixels = null;
    item.preview = null;
    item.shown = false;
  }

  async function refill() {
    if (fetching) return fetching;
    if (queue.length >= AHEAD) return null;
    const exclude = Array.from(seen).slice(-EXCLUDE_MAX).join(",");
    // Only what is missing: one image per key in steady state, so the fetching, decoding and
    // windowing of the images ahead is spread over the reader's pauses instead of arriving as a
    // batch that holds the main thread when the next key comes.
    const missing = AHEAD - queue.length + (current ? 0 : 1); // with no image shown, one more: it is shown at once
    const url = `${config.queueUrl}?limit=${missing}&exclude=${encodeURIComponent(exclude)}`;
    fetching = (async () => {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`queue answered ${response.status}`);
        const body = await response.json();
        let added = 0;
        for (const item of body.items || []) {
          if (seen.has(item.id)) continue;
          seen.add(item.id);
          preload(item);
          queue.push(item);
          added += 1;
        }
        exhausted = added === 0;
      } catch (err) {
        showError("Could not load the next images; trying again.");
        exhausted = true;
      } finally {
        fetching = null;
      }
      if (!current && queue.length) show(queue.shift(), null);
      else if (!current) showEmpty();
    })();
    return fetching;
  }

  function showEmpty() {
    stage.dataset.imageId = "";
    viewerHost.hidden = true;
    message.hidden = false;
    message.textContent = "No images are waiting for you. New ones appear here as they are released.";
    document.documentElement.dataset.labellingEmpty = "1";
  }

  function renderChosen() {
    for (const node of document.querySelectorAll("#label-keys li[data-class]")) {
      node.classList.toggle("is-chosen", chosen.has(node.dataset.class));
    }
  }

  function renderAi(item) {
    if (!aiNode) return;
    if (!item || !item.ai) {
      aiNode.hidden = true;
      aiNode.replaceChildren();
      return;
    }
    const parts = Object.entries(item.ai.probabilities || {}).map(([name, p]) => `${name} ${(p * 100).toFixed(0)}%`);
    aiNode.replaceChildren(el("strong", "", "AI: "), document.createTextNode(`${(item.ai.labels || []).join(", ")} (${parts.join(", ")})`));
    aiNode.hidden = false;
  }

  function draw(item, keyTime) {
    try {
      if (!item.preview && !item.pixels) item.preview = window.ClinicViewer.pictureFromImage(item.img); // after undo
    } catch (err) {
      item.preview = null; // the preview could not be decoded: the pixels may still come
    }
    message.hidden = true;
    viewerHost.hidden = false;
    item.shown = true;
    if (item.pixels || item.preview) viewer.show(item.pixels || item.preview);
    if (!item.pixels) loadPixels(item);
    stage.dataset.imageId = item.id;
    delete document.documentElement.dataset.labellingEmpty;
    requestAnimationFrame(() => {
      const now = performance.now();
      if (keyTime !== null) stats.timings.push(now - keyTime);
      shownAt = now;
      stats.drawn += 1;
      document.documentElement.dataset.labelDrawn = String(stats.drawn);
    });
  }

  function show(item, keyTime) {
    if (current && current !== item && !queue.includes(current)) release(current);
    current = item;
    chosen.clear();
    renderChosen();
    renderAi(item);
    if (item.decoded) {
      draw(item, keyTime);
    } else {
      stage.dataset.imageId = item.id;
      item.ready.then(() => {
        if (current === item) draw(item, keyTime);
      });
    }
  }

  function advance(keyTime) {
    const next = queue.shift();
    if (next) show(next, keyTime);
    else {
      release(current);
      current = null;
      showEmpty();
    }
    refill();
  }

  function label(values, keyTime) {
    if (!current) return;
    const item = current;
    const seconds = Math.min(Math.max((keyTime - shownAt) / 1000, 0), config.maxSeconds);
    const op = {
      kind: "label",
      url: config.labelUrl,
      body: { image: item.id, values, seconds: Math.round(seconds * 1000) / 1000, request_id: requestId() },
      sent: false,
    };
    ops.push(op);
    history.push({ item, op });
    labelled += 1;
    countNode.textContent = String(labelled);
    advance(keyTime);
    pump();
  }

  function undo() {
    const last = history.pop();
    if (!last) return;
    const index = ops.indexOf(last.op);
    if (index >= 0 && !last.op.sent) ops.splice(index, 1); // never reached the server: just drop it
    else ops.push({ url: config.undoUrl, body: { image: last.item.id }, sent: false });
    labelled -= 1;
    countNode.textContent = String(labelled);
    if (current) queue.unshift(current);
    show(last.item, null);
    updateSaveState(false);
    pump();
  }

  function skip(keyTime) {
    if (current) advance(keyTime);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function pump() {
    if (pumping) return;
    pumping = true;
    let delay = 500;
    try {
      while (ops.length) {
        const op = ops[0];
        updateSaveState(delay > 500);
        let response = null;
        try {
          op.sent = true;
          response = await fetch(op.url, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
            body: JSON.stringify(op.body),
          });
        } catch (err) {
          response = null; // network down: retry below
        }
        if (response && (response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429))) {
          ops.shift();
          delay = 500;
          if (!response.ok) {
            let reason = `The server refused a label (${response.status}).`;
            try {
              reason = (await response.json()).error || reason;
            } catch (err) {
              /* keep the generic reason */
            }
            showError(reason);
            if (op.kind === "label") {
              labelled -= 1; // refused (say, the image got all its readers meanwhile): not counted
              countNode.textContent = String(labelled);
            }
          }
          continue;
        }
        updateSaveState(true);
        await sleep(delay);
        delay = Math.min(delay * 2, 10000);
      }
    } finally {
      pumping = false;
      updateSaveState(false);
    }
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const keyTime = performance.now();
    const key = event.key;
    if (/^[1-9]$/.test(key)) {
      const name = config.classes[Number(key) - 1];
      if (name === undefined) return;
      event.preventDefault();
      showError("");
      if (!multilabel) label([name], keyTime);
      else {
        if (chosen.has(name)) chosen.delete(name);
        else chosen.add(name);
        renderChosen();
      }
    } else if (key === "u" || key === "U") {
      event.preventDefault();
      label([config.ungradable], keyTime);
    } else if (key === "Enter" && multilabel) {
      event.preventDefault();
      if (!chosen.size) {
        showError("Pick at least one class, or U for ungradable.");
        return;
      }
      label(
        config.classes.filter((name) => chosen.has(name)),
        keyTime,
      );
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      skip(keyTime);
    } else if (key === "z" || key === "Z" || key === "Backspace") {
      event.preventDefault();
      undo();
    }
  }

  document.addEventListener("keydown", onKey);
  window.addEventListener("beforeunload", (event) => {
    if (ops.length) event.preventDefault(); // labels not yet saved
  });
  // When the queue ran dry, look again now and then: released images keep arriving.
  setInterval(() => {
    if (exhausted && queue.length < AHEAD) refill();
  }, 15000);
  stats.stop = () => document.removeEventListener("keydown", onKey); // bench/labelling.py's baseline
  refill().then(() => {
    document.documentElement.dataset.labellingReady = "1";
  });
})();
