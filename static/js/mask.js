// Masking of burned-in text on a held image: draw boxes, preview the masked result, release.
// Boxes are kept in the image's own pixel coordinates (columns x rows), whatever size it is shown at.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("mask-config").textContent);
  const image = document.getElementById("mask-image");
  const canvas = document.getElementById("mask-canvas");
  const context = canvas.getContext("2d");
  const list = document.getElementById("mask-box-list");
  const errorBox = document.getElementById("mask-error");
  const statusLine = document.getElementById("mask-status");
  const previewButton = document.getElementById("mask-preview-btn");
  const releaseButton = document.getElementById("mask-release-btn");
  const clearButton = document.getElementById("mask-clear-btn");
  const saveTemplate = document.getElementById("save-template");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const W = config.image_width;
  const H = config.image_height;
  const MIN = 2;

  // Each box: {x0, y0, x1, y1, suggested}
  let boxes = (config.suggested_boxes || []).map(([x0, y0, x1, y1]) => ({ x0, y0, x1, y1, suggested: true }));
  let selected = -1;
  let drag = null; // {mode: "draw"|"move", start: {x, y}, origin: box copy}
  let showingMasked = false;
  let maskedUrl = null;

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  const scale = () => canvas.width / W;

  function normalise(box) {
    const x0 = clamp(Math.round(Math.min(box.x0, box.x1)), 0, W);
    const x1 = clamp(Math.round(Math.max(box.x0, box.x1)), 0, W);
    const y0 = clamp(Math.round(Math.min(box.y0, box.y1)), 0, H);
    const y1 = clamp(Math.round(Math.max(box.y0, box.y1)), 0, H);
    return { x0, y0, x1, y1, suggested: box.suggested };
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: clamp(((event.clientX - rect.left) / rect.width) * W, 0, W),
      y: clamp(((event.clientY - rect.top) / rect.height) * H, 0, H),
    };
  }

  function hit(point) {
    for (let i = boxes.length - 1; i >= 0; i -= 1) {
      const b = boxes[i];
      if (point.x >= b.x0 && point.x <= b.x1 && point.y >= b.y0 && point.y <= b.y1) return i;
    }
    return -1;
  }

  function resize() {
    // Fit the image to the column and to three quarters of the window height, keeping its aspect.
    const room = image.parentElement.parentElement.clientWidth;
    image.style.width = `${Math.floor(Math.min(room, (window.innerHeight * 0.75 * W) / H))}px`;
    const rect = image.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width));
    canvas.height = Math.max(1, Math.round(rect.height));
    canvas.style.width = `${rect.width}px`;
    canvas.style.height = `${rect.height}px`;
    draw();
  }

  function draw() {
    const s = scale();
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (showingMasked) return;
    boxes.forEach((b, i) => {
      const x = b.x0 * s;
      const y = b.y0 * s;
      const w = (b.x1 - b.x0) * s;
      const h = (b.y1 - b.y0) * s;
      context.fillStyle = "rgba(0, 0, 0, 0.55)";
      context.fillRect(x, y, w, h);
      context.lineWidth = i === selected ? 3 : 2;
      context.setLineDash(b.suggested ? [6, 4] : []);
      context.strokeStyle = i === selected ? "#0dcaf0" : b.suggested ? "#ffc107" : "#ff4d4f";
      context.strokeRect(x, y, w, h);
    });
    context.setLineDash([]);
    renderList();
  }

  function renderList() {
    list.replaceChildren();
    if (!boxes.length) {
      const empty = document.createElement("li");
      empty.className = "list-group-item text-body-secondary";
      empty.textContent = "No boxes yet.";
      list.append(empty);
      return;
    }
    boxes.forEach((b, i) => {
      const item = document.createElement("li");
      item.className = `list-group-item d-flex align-items-center gap-2${i === selected ? " active" : ""}`;
      const label = document.createElement("span");
      label.className = "me-auto";
      label.textContent = `Box ${i + 1}${b.suggested ? " (suggested)" : ""}: ${b.x0}, ${b.y0}, ${b.x1 - b.x0}×${b.y1 - b.y0}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = i === selected ? "btn btn-sm btn-light" : "btn btn-sm btn-outline-danger";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove box ${i + 1}`);
      remove.addEventListener("click", () => removeBox(i));
      item.append(label, remove);
      list.append(item);
    });
  }

  function removeBox(index) {
    boxes.splice(index, 1);
    selected = -1;
    invalidatePreview();
    draw();
  }

  function invalidatePreview() {
    if (showingMasked) toggleMasked(false);
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (showingMasked || event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    canvas.focus();
    const point = toImage(event);
    const index = hit(point);
    if (index >= 0) {
      selected = index;
      drag = { mode: "move", start: point, origin: { ...boxes[index] } };
    } else {
      boxes.push({ x0: point.x, y0: point.y, x1: point.x, y1: point.y, suggested: false });
      selected = boxes.length - 1;
      drag = { mode: "draw", start: point };
    }
    draw();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const point = toImage(event);
    const box = boxes[selected];
    if (drag.mode === "draw") {
      box.x1 = point.x;
      box.y1 = point.y;
    } else {
      const o = drag.origin;
      const dx = clamp(point.x - drag.start.x, -o.x0, W - o.x1);
      const dy = clamp(point.y - drag.start.y, -o.y0, H - o.y1);
      Object.assign(box, { x0: o.x0 + dx, x1: o.x1 + dx, y0: o.y0 + dy, y1: o.y1 + dy, suggested: false });
    }
    draw();
  });

  function endDrag(cancel) {
    if (!drag) return;
    if (cancel && drag.mode === "draw") boxes.splice(selected, 1);
    else if (cancel) boxes[selected] = drag.origin;
    else boxes[selected] = normalise(boxes[selected]);
    const b = boxes[selected];
    if (b && (b.x1 - b.x0 < MIN || b.y1 - b.y0 < MIN) && drag.mode === "draw") {
      boxes.splice(selected, 1);
      selected = -1;
    }
    drag = null;
    invalidatePreview();
    draw();
  }

  canvas.addEventListener("pointerup", () => endDrag(false));
  canvas.addEventListener("pointercancel", () => endDrag(true));

  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Escape") return endDrag(true);
    if (selected < 0) return;
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeBox(selected);
      return;
    }
    const step = event.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (!moves[event.key]) return;
    event.preventDefault();
    const [dx, dy] = moves[event.key];
    const b = boxes[selected];
    const mx = clamp(dx, -b.x0, W - b.x1);
    const my = clamp(dy, -b.y0, H - b.y1);
    Object.assign(b, { x0: b.x0 + mx, x1: b.x1 + mx, y0: b.y0 + my, y1: b.y1 + my, suggested: false });
    invalidatePreview();
    draw();
  });

  clearButton.addEventListener("click", () => {
    boxes = [];
    selected = -1;
    invalidatePreview();
    draw();
  });

  function payloadBoxes() {
    return boxes.map((b) => normalise(b)).map((b) => [b.x0, b.y0, b.x1, b.y1]);
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
  }

  async function errorText(response) {
    try {
      return (await response.json()).error || `The server answered ${response.status}.`;
    } catch {
      return `The server answered ${response.status}.`;
    }
  }

  function toggleMasked(on) {
    showingMasked = on;
    previewButton.textContent = on ? "Show original" : "Show masked result";
    previewButton.setAttribute("aria-pressed", String(on));
    if (!on) {
      image.src = config.preview_url;
      if (maskedUrl) URL.revokeObjectURL(maskedUrl);
      maskedUrl = null;
    }
    draw();
  }

  previewButton.addEventListener("click", async () => {
    showError("");
    if (showingMasked) return toggleMasked(false);
    previewButton.disabled = true;
    statusLine.textContent = "Masking a preview…";
    try {
      const response = await post(config.masked_preview_url, { boxes: payloadBoxes() });
      if (!response.ok) throw new Error(await errorText(response));
      maskedUrl = URL.createObjectURL(await response.blob());
      image.src = maskedUrl;
      toggleMasked(true);
      statusLine.textContent = "Showing the masked result.";
    } catch (error) {
      showError(error.message || "The preview could not be made.");
      statusLine.textContent = "";
    } finally {
      previewButton.disabled = false;
    }
  });

  releaseButton.addEventListener("click", async () => {
    showError("");
    const sent = payloadBoxes();
    let confirmNoText = false;
    if (!sent.length) {
      confirmNoText = window.confirm(
        "No boxes: release without masking? Only do this if the image has no identifying text.",
      );
      if (!confirmNoText) return;
    }
    releaseButton.disabled = true;
    statusLine.textContent = "Masking every frame and releasing…";
    try {
      const response = await post(config.release_url, {
        boxes: sent,
        save_template: Boolean(saveTemplate && saveTemplate.checked),
        confirm_no_text: confirmNoText,
      });
      if (!response.ok) throw new Error(await errorText(response));
      const body = await response.json();
      window.location.assign(body.redirect);
    } catch (error) {
      showError(error.message || "The image could not be released.");
      statusLine.textContent = "";
      releaseButton.disabled = false;
    }
  });

  window.clinicMask = { boxes: () => payloadBoxes() };

  image.addEventListener("load", resize);
  window.addEventListener("resize", resize);
  image.src = config.preview_url;
  renderList();
  document.documentElement.dataset.maskReady = "true";
})();
