/*
 * clinic_ai: masking burned-in text on a held image (templates/deidentification/image_mask.html).
 *
 * Plain ES2020, no build step, no dependencies.
 *
 * Rules this script keeps:
 * - Boxes live in the IMAGE's own pixel coordinates (columns x rows from the config), as integers
 *   [x0, y0, x1, y1] with x0 < x1 <= width and y0 < y1 <= height (x1, y1 exclusive), at least 2 x 2.
 *   The picture shown may be a downscaled PNG: the mapping uses the displayed size against
 *   image_width / image_height, never the PNG's natural size.
 * - The held image shows pixels that may name a patient and every fetch of it is audited: each
 *   frame is fetched once and kept (as a Blob), so "Show original" does not fetch it again.
 * - The image is drawn by the viewer (static/js/viewer.js) without zoom or pan, so the box canvas
 *   laid over it keeps its mapping; its toolbar gives window presets, invert and, for multi-frame
 *   images, frames: a mask drawn once is checked on every frame of the masked result.
 * - Server text is written with textContent only, never innerHTML.
 * - window.clinicMask.boxes() returns a copy of the boxes, for tests.
 */
(() => {
  "use strict";

  const { el, safeUrl, csrfToken } = window.clinicCommon; // static/js/common.js

  const MIN_SIZE = 2; // image pixels
  const MAX_BOXES = 200; // the server refuses more
  const DRAG_THRESHOLD = 3; // CSS pixels before a press becomes a drag
  const HANDLE_SIZE = 8; // CSS pixels, drawn corner handles
  const HANDLE_HIT = { mouse: 9, touch: 18, pen: 14 }; // CSS pixels around a corner that grab it
  const MAX_HEIGHT_FRACTION = 0.75; // of the window height
  const COLOURS = {
    fill: "rgba(0, 0, 0, 0.55)",
    drawn: "#ffd43b",
    suggested: "#e599f7",
    selected: "#3bc9db",
    shadow: "rgba(0, 0, 0, 0.9)",
  };
  const NO_BOXES_QUESTION = "No boxes: release without masking? Only do this if the image has no identifying text.";

  const $ = (id) => document.getElementById(id);
  const configEl = $("mask-config");
  const image = $("mask-image"); // the viewer's host
  const canvas = $("mask-canvas");
  if (!configEl || !image || !canvas || !canvas.getContext) return;

  let config;
  try {
    config = JSON.parse(configEl.textContent);
  } catch (err) {
    return;
  }

  const ui = {
    viewer: $("mask-viewer"),
    stage: $("mask-stage"),
    list: $("mask-box-list"),
    clear: $("mask-clear-btn"),
    acceptAll: $("mask-accept-all-btn"),
    preview: $("mask-preview-btn"),
    release: $("mask-release-btn"),
    saveTemplate: $("save-template"),
    error: $("mask-error"),
    status: $("mask-status"),
    viewBadge: $("mask-view-badge"),
    suggestedNote: $("mask-suggested-note"),
  };
  const context = canvas.getContext("2d");

  const W = Math.max(1, Math.floor(Number(config.image_width)) || 1);
  const H = Math.max(1, Math.floor(Number(config.image_height)) || 1);
  const MIN_W = Math.min(MIN_SIZE, W);
  const MIN_H = Math.min(MIN_SIZE, H);

  // ---------------------------------------------------------------- helpers

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  function showError(message) {
    if (!ui.error) return;
    ui.error.textContent = message || "";
    ui.error.hidden = !message;
  }

  function announce(message) {
    if (ui.status) ui.status.textContent = message || "";
  }

  /** A box made valid: integers, inside the image, x0 < x1, y0 < y1, at least MIN_W x MIN_H. */
  function fitBox(x0, y0, x1, y1, suggested) {
    let ax = clamp(Math.floor(Math.min(x0, x1)), 0, W);
    let bx = clamp(Math.ceil(Math.max(x0, x1)), 0, W);
    let ay = clamp(Math.floor(Math.min(y0, y1)), 0, H);
    let by = clamp(Math.ceil(Math.max(y0, y1)), 0, H);
    if (bx - ax < MIN_W) {
      bx = Math.min(W, ax + MIN_W);
      ax = Math.max(0, bx - MIN_W);
    }
    if (by - ay < MIN_H) {
      by = Math.min(H, ay + MIN_H);
      ay = Math.max(0, by - MIN_H);
    }
    return { x0: ax, y0: ay, x1: bx, y1: by, suggested: Boolean(suggested) };
  }

  function boxFromConfig(value) {
    if (!Array.isArray(value) || value.length !== 4) return null;
    const v = value.map(Number);
    if (!v.every(Number.isFinite)) return null;
    const [x0, y0, x1, y1] = v;
    // Entirely outside the image, or empty: nothing to mask.
    if (Math.max(x0, x1) <= 0 || Math.max(y0, y1) <= 0 || Math.min(x0, x1) >= W || Math.min(y0, y1) >= H) return null;
    if (x0 === x1 || y0 === y1) return null;
    return fitBox(x0, y0, x1, y1, true);
  }

  // ---------------------------------------------------------------- state

  let boxes = (Array.isArray(config.suggested_boxes) ? config.suggested_boxes : [])
    .map(boxFromConfig)
    .filter(Boolean)
    .slice(0, MAX_BOXES);
  let selected = -1;
  let drag = null; // {pointerId, mode: "press"|"draw"|"move"|"resize", ...}
  let version = 0; // bumped on every change of the boxes; stale previews are dropped
  let showingMasked = false;
  let previewBusy = false;
  let releasing = false;
  const originals = new Map(); // frame -> Blob of the held image, fetched once each
  const masked = new Map(); // frame -> Blob of the masked result for the boxes of `maskedVersion`
  let maskedVersion = -1;
  const FRAMES = Math.max(1, Math.floor(Number(config.frames)) || 1);
  let viewer = null;
  let display = { width: 0, height: 0 }; // CSS pixels of the stage

  const payloadBoxes = () => boxes.map((b) => [b.x0, b.y0, b.x1, b.y1]);
  const editable = () => !showingMasked && !releasing;

  function changed() {
    version += 1;
    draw();
    renderList();
  }

  // ---------------------------------------------------------------- layout

  /** Fit the stage to the viewer's width and to MAX_HEIGHT_FRACTION of the window, keeping W:H. */
  function layout() {
    const box = ui.viewer || image.parentElement;
    const style = window.getComputedStyle(box);
    const room =
      box.clientWidth - (parseFloat(style.paddingLeft) || 0) - (parseFloat(style.paddingRight) || 0);
    const maxHeight = Math.max(120, window.innerHeight * MAX_HEIGHT_FRACTION);
    const width = Math.max(1, Math.floor(Math.min(room, (maxHeight * W) / H)));
    const height = Math.max(1, Math.round((width * H) / W));
    if (width !== display.width || height !== display.height) {
      display = { width, height };
      for (const node of [image, canvas]) {
        node.style.width = `${width}px`;
        node.style.height = `${height}px`;
      }
    }
    const ratio = window.devicePixelRatio || 1;
    const backingWidth = Math.max(1, Math.round(width * ratio));
    const backingHeight = Math.max(1, Math.round(height * ratio));
    if (canvas.width !== backingWidth || canvas.height !== backingHeight) {
      canvas.width = backingWidth;
      canvas.height = backingHeight;
    }
    draw();
  }

  let layoutFrame = 0;
  function scheduleLayout() {
    if (layoutFrame) return;
    layoutFrame = window.requestAnimationFrame(() => {
      layoutFrame = 0;
      layout();
    });
  }

  /** Image pixels per CSS pixel, measured on the canvas as it is shown now. */
  function scales() {
    const rect = canvas.getBoundingClientRect();
    return {
      rect,
      sx: rect.width > 0 ? W / rect.width : 1,
      sy: rect.height > 0 ? H / rect.height : 1,
    };
  }

  /** Pointer position in image pixels (fractional, clamped to the image). */
  function toImage(event) {
    const { rect, sx, sy } = scales();
    return {
      x: clamp((event.clientX - rect.left) * sx, 0, W),
      y: clamp((event.clientY - rect.top) * sy, 0, H),
    };
  }

  // ---------------------------------------------------------------- drawing

  function draw() {
    const ratio = canvas.width / Math.max(1, display.width);
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (showingMasked || !display.width) return; // the masked result is shown as it is
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    const kx = display.width / W;
    const ky = display.height / H;
    boxes.forEach((b, i) => {
      const x = b.x0 * kx;
      const y = b.y0 * ky;
      const w = (b.x1 - b.x0) * kx;
      const h = (b.y1 - b.y0) * ky;
      const isSelected = i === selected;
      context.fillStyle = COLOURS.fill;
      context.fillRect(x, y, w, h);
      context.setLineDash(b.suggested ? [6, 4] : []);
      // A dark line under the bright one keeps the outline visible on white text and on black.
      context.lineWidth = isSelected ? 5 : 4;
      context.strokeStyle = COLOURS.shadow;
      context.strokeRect(x, y, w, h);
      context.lineWidth = isSelected ? 3 : 2;
      context.strokeStyle = isSelected ? COLOURS.selected : b.suggested ? COLOURS.suggested : COLOURS.drawn;
      context.strokeRect(x, y, w, h);
      context.setLineDash([]);
      drawNumber(i + 1, x, y, w, h, isSelected ? COLOURS.selected : b.suggested ? COLOURS.suggested : COLOURS.drawn);
      if (isSelected) drawHandles(x, y, w, h);
    });
  }

  function drawNumber(n, x, y, w, h, colour) {
    if (w < 14) return;
    const label = String(n);
    context.font = "600 11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    const tw = context.measureText(label).width + 6;
    // Above the box when there is room, so the chip does not hide what the box covers.
    const ly = y >= 15 ? y - 15 : y;
    context.fillStyle = colour;
    context.fillRect(x, ly, tw, 14);
    context.fillStyle = "#000";
    context.textBaseline = "middle";
    context.fillText(label, x + 3, ly + 7.5);
  }

  function corners(x, y, w, h) {
    return [
      [x, y],
      [x + w, y],
      [x + w, y + h],
      [x, y + h],
    ];
  }

  function drawHandles(x, y, w, h) {
    const half = HANDLE_SIZE / 2;
    for (const [cx, cy] of corners(x, y, w, h)) {
      context.fillStyle = "#fff";
      context.fillRect(cx - half, cy - half, HANDLE_SIZE, HANDLE_SIZE);
      context.lineWidth = 1.5;
      context.strokeStyle = "#000";
      context.strokeRect(cx - half, cy - half, HANDLE_SIZE, HANDLE_SIZE);
    }
  }

  // ---------------------------------------------------------------- the list

  function boxText(b, i) {
    return `Box ${i + 1}: ${b.x0}, ${b.y0}, ${b.x1 - b.x0}×${b.y1 - b.y0}`;
  }

  function renderList() {
    const anySuggested = boxes.some((b) => b.suggested);
    if (ui.acceptAll) ui.acceptAll.hidden = !anySuggested;
    if (ui.suggestedNote) ui.suggestedNote.hidden = !anySuggested;
    if (!ui.list) return;
    const focusedAction = document.activeElement && ui.list.contains(document.activeElement)
      ? document.activeElement.dataset.action
      : null;
    const focusedIndex = focusedAction ? Number(document.activeElement.dataset.index) : -1;
    ui.list.replaceChildren();
    if (!boxes.length) {
      ui.list.append(el("li", "list-group-item text-body-secondary", "No boxes yet. Drag on the image to add one."));
      return;
    }
    boxes.forEach((b, i) => {
      const item = el("li", "list-group-item d-flex align-items-center gap-2 mask-box-item");
      item.dataset.index = String(i);
      if (b.suggested) item.classList.add("is-suggested");
      if (i === selected) {
        item.classList.add("is-selected");
        item.setAttribute("aria-current", "true");
      }

      const pick = el("button", "btn btn-link btn-sm p-0 text-start text-reset text-decoration-none me-auto mask-box-label");
      pick.type = "button";
      pick.dataset.action = "select";
      pick.dataset.index = String(i);
      pick.append(el("span", "mask-box-text", boxText(b, i)));
      if (b.suggested) pick.append(" ", el("span", "badge rounded-pill mask-badge-suggested", "suggested"));
      pick.setAttribute("aria-label", `${boxText(b, i)}${b.suggested ? ", suggested" : ""}. Select it to move it with the arrow keys.`);
      pick.addEventListener("click", () => {
        select(i);
        canvas.focus({ preventScroll: true });
      });
      item.append(pick);

      if (b.suggested) {
        const keep = el("button", "btn btn-outline-secondary btn-sm", "Confirm");
        keep.type = "button";
        keep.dataset.action = "accept";
        keep.dataset.index = String(i);
        keep.setAttribute("aria-label", `Confirm box ${i + 1} as it is`);
        keep.disabled = releasing;
        keep.addEventListener("click", () => acceptBox(i));
        item.append(keep);
      }

      const remove = el("button", "btn btn-outline-danger btn-sm", "Delete");
      remove.type = "button";
      remove.dataset.action = "delete";
      remove.dataset.index = String(i);
      remove.setAttribute("aria-label", `Delete box ${i + 1}`);
      remove.disabled = releasing;
      remove.addEventListener("click", () => removeBox(i, true));
      item.append(remove);
      ui.list.append(item);
    });
    // Keep keyboard focus in the list across re-renders.
    if (focusedAction) {
      const index = Math.min(focusedIndex, boxes.length - 1);
      const target =
        ui.list.querySelector(`[data-action="${focusedAction}"][data-index="${index}"]`) ||
        ui.list.querySelector(`[data-index="${index}"] [data-action="delete"]`);
      if (target) target.focus({ preventScroll: true });
      else canvas.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- edits

  function select(index) {
    selected = index >= 0 && index < boxes.length ? index : -1;
    draw();
    renderList();
  }

  function leaveMaskedView() {
    if (showingMasked) showOriginal();
  }

  function removeBox(index, fromList) {
    if (releasing || index < 0 || index >= boxes.length) return;
    leaveMaskedView();
    boxes.splice(index, 1);
    if (selected === index) selected = -1;
    else if (selected > index) selected -= 1;
    changed();
    announce(`Box ${index + 1} deleted. ${countText()}`);
    if (fromList && !boxes.length) canvas.focus({ preventScroll: true });
  }

  function acceptBox(index) {
    if (releasing || !boxes[index]) return;
    boxes[index].suggested = false;
    changed();
    announce(`Box ${index + 1} confirmed.`);
  }

  function countText() {
    return boxes.length === 1 ? "1 box to mask." : `${boxes.length} boxes to mask.`;
  }

  // ---------------------------------------------------------------- pointer

  /** What is under an image point: {index, handle} (handle -1: the body), or null. */
  function hitTest(point, pointerType) {
    const { sx, sy } = scales();
    const reach = HANDLE_HIT[pointerType] || HANDLE_HIT.mouse;
    if (selected >= 0) {
      const b = boxes[selected];
      const list = corners(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      for (let h = 0; h < 4; h += 1) {
        if (Math.abs(point.x - list[h][0]) / sx <= reach && Math.abs(point.y - list[h][1]) / sy <= reach) {
          return { index: selected, handle: h };
        }
      }
    }
    const inside = (b) => point.x >= b.x0 && point.x <= b.x1 && point.y >= b.y0 && point.y <= b.y1;
    if (selected >= 0 && inside(boxes[selected])) return { index: selected, handle: -1 };
    for (let i = boxes.length - 1; i >= 0; i -= 1) {
      if (inside(boxes[i])) return { index: i, handle: -1 };
    }
    return null;
  }

  const HANDLE_CURSORS = ["nwse-resize", "nesw-resize", "nwse-resize", "nesw-resize"];

  function setCursor(hit) {
    let cursor = "";
    if (!editable()) cursor = "default";
    else if (drag && drag.mode === "move") cursor = "move";
    else if (drag && drag.mode === "resize") cursor = HANDLE_CURSORS[drag.handle];
    else if (hit && hit.handle >= 0) cursor = HANDLE_CURSORS[hit.handle];
    else if (hit) cursor = "move";
    canvas.style.cursor = cursor; // "" falls back to the stylesheet's crosshair
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!editable() || drag || !event.isPrimary || event.button !== 0) return;
    event.preventDefault();
    canvas.focus({ preventScroll: true });
    try {
      canvas.setPointerCapture(event.pointerId);
    } catch (err) {
      // capture is a convenience; moves still arrive while the pointer is over the canvas
    }
    const point = toImage(event);
    const hit = hitTest(point, event.pointerType);
    drag = {
      pointerId: event.pointerId,
      mode: "press",
      start: point,
      startClient: { x: event.clientX, y: event.clientY },
      hit,
      index: hit ? hit.index : -1,
      origin: hit ? { ...boxes[hit.index] } : null,
    };
    if (hit) {
      selected = hit.index;
      if (hit.handle >= 0) {
        drag.mode = "resize";
        drag.handle = hit.handle;
      }
      draw();
      renderList();
    }
    setCursor(hit);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drag) {
      if (event.pointerType === "mouse") setCursor(editable() ? hitTest(toImage(event), "mouse") : null);
      return;
    }
    if (event.pointerId !== drag.pointerId) return;
    const point = toImage(event);
    if (drag.mode === "press") {
      const moved = Math.hypot(event.clientX - drag.startClient.x, event.clientY - drag.startClient.y);
      if (moved < DRAG_THRESHOLD) return;
      if (drag.hit) {
        drag.mode = "move";
      } else {
        if (boxes.length >= MAX_BOXES) {
          showError(`At most ${MAX_BOXES} boxes can be drawn. Make the boxes larger to cover more text each.`);
          drag = null;
          return;
        }
        boxes.push(fitBox(drag.start.x, drag.start.y, point.x, point.y, false));
        drag.mode = "draw";
        drag.index = boxes.length - 1;
        selected = drag.index;
      }
      setCursor(null);
    }
    const o = drag.origin;
    if (drag.mode === "draw") {
      boxes[drag.index] = fitBox(drag.start.x, drag.start.y, point.x, point.y, false);
    } else if (drag.mode === "move") {
      const dx = clamp(Math.round(point.x - drag.start.x), -o.x0, W - o.x1);
      const dy = clamp(Math.round(point.y - drag.start.y), -o.y0, H - o.y1);
      boxes[drag.index] = { x0: o.x0 + dx, y0: o.y0 + dy, x1: o.x1 + dx, y1: o.y1 + dy, suggested: o.suggested };
    } else if (drag.mode === "resize") {
      // The corner opposite the grabbed one stays where it is.
      const fixed = corners(o.x0, o.y0, o.x1 - o.x0, o.y1 - o.y0)[(drag.handle + 2) % 4];
      boxes[drag.index] = fitBox(fixed[0], fixed[1], point.x, point.y, o.suggested);
    }
    draw();
    renderList();
  });

  function endDrag(event, cancel) {
    if (!drag || (event && event.pointerId !== drag.pointerId)) return;
    const finished = drag;
    drag = null;
    try {
      if (canvas.hasPointerCapture(finished.pointerId)) canvas.releasePointerCapture(finished.pointerId);
    } catch (err) {
      // already released
    }
    if (finished.mode === "press") {
      // A click: on a box it selected it (done on pointerdown); on empty space it clears the selection.
      if (!finished.hit) select(-1);
      setCursor(finished.hit);
      return;
    }
    if (cancel) {
      if (finished.mode === "draw") {
        boxes.splice(finished.index, 1);
        selected = -1;
      } else {
        boxes[finished.index] = finished.origin;
      }
      draw();
      renderList();
      announce("Cancelled.");
      setCursor(null);
      return;
    }
    const b = boxes[finished.index];
    if (finished.mode === "draw") {
      announce(`Box ${finished.index + 1} added. ${countText()}`);
    } else {
      const o = finished.origin;
      const same = o.x0 === b.x0 && o.y0 === b.y0 && o.x1 === b.x1 && o.y1 === b.y1;
      if (same) {
        setCursor(null);
        return;
      }
      b.suggested = false; // edited: it is the user's box now
      announce(finished.mode === "move" ? `Box ${finished.index + 1} moved.` : `Box ${finished.index + 1} resized.`);
    }
    setCursor(null);
    changed();
  }

  canvas.addEventListener("pointerup", (event) => endDrag(event, false));
  canvas.addEventListener("pointercancel", (event) => endDrag(event, true));
  canvas.addEventListener("lostpointercapture", (event) => endDrag(event, false));
  canvas.addEventListener("contextmenu", (event) => {
    if (drag) event.preventDefault();
  });

  // ---------------------------------------------------------------- keyboard

  // Escape cancels a drag wherever the focus is.
  window.addEventListener(
    "keydown",
    (event) => {
      if (event.key !== "Escape" || !drag) return;
      event.preventDefault();
      event.stopPropagation();
      endDrag(null, true);
    },
    true,
  );

  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      if (selected >= 0) {
        select(-1);
        event.preventDefault();
      }
      return;
    }
    if (!editable() || drag || selected < 0) return;
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeBox(selected, false);
      return;
    }
    if (event.key === "Enter" && boxes[selected].suggested) {
      event.preventDefault();
      acceptBox(selected);
      return;
    }
    const step = event.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const move = moves[event.key];
    if (!move || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    const b = boxes[selected];
    const dx = clamp(move[0], -b.x0, W - b.x1);
    const dy = clamp(move[1], -b.y0, H - b.y1);
    if (!dx && !dy) return;
    boxes[selected] = { x0: b.x0 + dx, y0: b.y0 + dy, x1: b.x1 + dx, y1: b.y1 + dy, suggested: false };
    changed();
  });

  // ---------------------------------------------------------------- server

  async function post(url, body) {
    const target = safeUrl(url);
    if (!target) return { status: -1, response: null };
    try {
      const response = await fetch(target, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json, image/png",
          "X-CSRFToken": csrfToken(),
          "X-Requested-With": "XMLHttpRequest",
        },
        body: JSON.stringify(body),
      });
      return { status: response.status, response };
    } catch (err) {
      return { status: 0, response: null };
    }
  }

  async function readJSON(response) {
    try {
      return await response.json();
    } catch (err) {
      return null;
    }
  }

  async function errorReason(result) {
    if (result.response) {
      const type = result.response.headers.get("Content-Type") || "";
      if (type.includes("json")) {
        const data = await readJSON(result.response);
        if (data && typeof data.error === "string" && data.error) return data.error;
      }
    }
    if (result.status === -1) return "The page is missing a server address. Reload it.";
    if (result.status === 0) return "Could not reach the server. Check the network connection and try again.";
    if (result.status === 403) return "Not allowed. Your session may have expired: reload the page and sign in.";
    if (result.status === 404) return "This image is no longer waiting to be masked. Reload the page.";
    if (result.status >= 500) return `The server had a problem (HTTP ${result.status}). Try again in a moment.`;
    return `Unexpected answer from the server (HTTP ${result.status}).`;
  }

  // ---------------------------------------------------------------- showing the image

  function frameUrl(frame) {
    const url = safeUrl(config.preview_url);
    return url && frame ? `${url}?frame=${frame}` : url;
  }

  async function fetchOriginal(frame) {
    if (originals.has(frame)) return originals.get(frame);
    const url = frameUrl(frame);
    if (!url) throw new Error("The page is missing the image's address. Reload the page.");
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "image/png,image/*" } });
    } catch (err) {
      throw new Error("Could not reach the server. Check the network connection and reload the page.");
    }
    if (!response.ok) throw new Error(await errorReason({ status: response.status, response }));
    const blob = await response.blob();
    originals.set(frame, blob);
    return blob;
  }

  /** The masked result of one frame for the boxes as they are now (each frame asked for once). */
  async function fetchMasked(frame) {
    if (maskedVersion !== version) {
      masked.clear();
      maskedVersion = version;
    }
    if (masked.has(frame)) return masked.get(frame);
    const askedVersion = version;
    const result = await post(config.masked_preview_url, { boxes: payloadBoxes(), frame });
    if (result.status !== 200) throw new Error(await errorReason(result));
    const type = result.response.headers.get("Content-Type") || "";
    if (!type.startsWith("image/")) throw new Error("Unexpected answer from the server: it did not send a picture.");
    const blob = await result.response.blob();
    if (askedVersion === version) masked.set(frame, blob);
    return blob;
  }

  function mountViewer() {
    viewer = window.ClinicViewer.mount(image, {
      frames: FRAMES,
      zoom: false, // the box canvas lies over the image at its fitted size
      start: false,
      toolbarHost: $("mask-viewer-tools"),
      label: "The held image",
      loadFrame: (frame) => (showingMasked ? fetchMasked(frame) : fetchOriginal(frame)),
    });
  }

  async function loadOriginal() {
    announce("Loading the image…");
    let failure = null;
    try {
      await fetchOriginal(0);
    } catch (err) {
      failure = err.message;
    }
    if (failure) {
      showError(`The image could not be loaded: ${failure}`);
      announce("");
      return false;
    }
    const ok = await viewer.setFrame(0);
    if (!ok) {
      showError("The image could not be shown: the server sent a picture the browser cannot read.");
      announce("");
      return false;
    }
    announce(boxes.length ? `${countText()} Check the suggested boxes.` : "");
    return true;
  }

  function renderPreviewButton() {
    if (!ui.preview) return;
    ui.preview.textContent = showingMasked ? "Show original" : previewBusy ? "Masking…" : "Show masked result";
    ui.preview.setAttribute("aria-pressed", String(showingMasked));
    ui.preview.disabled = previewBusy || releasing;
  }

  function showOriginal() {
    showingMasked = false;
    masked.clear();
    if (viewer) viewer.reload();
    if (ui.stage) ui.stage.classList.remove("is-masked");
    if (ui.viewBadge) ui.viewBadge.hidden = true;
    canvas.setAttribute("aria-disabled", "false");
    renderPreviewButton();
    setCursor(null);
    draw();
  }

  async function showMasked() {
    if (previewBusy || releasing) return;
    showError("");
    previewBusy = true;
    renderPreviewButton();
    announce("Making the masked preview…");
    const sentVersion = version;
    const frame = viewer ? viewer.frame() : 0;
    let failure = null;
    try {
      await fetchMasked(frame);
    } catch (err) {
      failure = err.message || "The preview could not be read. Try again.";
    }
    previewBusy = false;
    if (failure) {
      showError(`The masked preview could not be made: ${failure}`);
      announce("");
      renderPreviewButton();
      return;
    }
    if (version !== sentVersion || releasing || drag) {
      // The boxes changed while the server worked: this preview is out of date.
      announce("The boxes changed: press “Show masked result” again.");
      renderPreviewButton();
      return;
    }
    showingMasked = true;
    viewer.reload(); // this frame from what was just fetched; other frames when the reader goes to them
    if (ui.stage) ui.stage.classList.add("is-masked");
    if (ui.viewBadge) ui.viewBadge.hidden = false;
    canvas.setAttribute("aria-disabled", "true");
    renderPreviewButton();
    setCursor(null);
    draw();
    announce(
      boxes.length
        ? "Showing the masked result. Drawing is off until you press “Show original”."
        : "Showing the image with no boxes: nothing is masked. Press “Show original” to draw.",
    );
  }

  // ---------------------------------------------------------------- buttons

  if (ui.preview) {
    ui.preview.addEventListener("click", () => {
      if (showingMasked) {
        showOriginal();
        announce("Showing the original. You can draw again.");
      } else {
        showMasked();
      }
    });
  }

  if (ui.clear) {
    ui.clear.addEventListener("click", () => {
      if (releasing) return;
      if (drag) endDrag(null, true);
      if (!boxes.length) {
        announce("There are no boxes to remove.");
        return;
      }
      leaveMaskedView();
      boxes = [];
      selected = -1;
      changed();
      announce("All boxes removed.");
    });
  }

  if (ui.acceptAll) {
    ui.acceptAll.addEventListener("click", () => {
      if (releasing) return;
      const count = boxes.filter((b) => b.suggested).length;
      boxes.forEach((b) => {
        b.suggested = false;
      });
      changed();
      if (count) announce(count === 1 ? "1 suggested box confirmed." : `${count} suggested boxes confirmed.`);
    });
  }

  function setReleasing(on) {
    releasing = on;
    if (ui.release) ui.release.disabled = on;
    if (ui.clear) ui.clear.disabled = on;
    if (ui.acceptAll) ui.acceptAll.disabled = on;
    if (ui.saveTemplate && !ui.saveTemplate.hasAttribute("data-server-disabled")) ui.saveTemplate.disabled = on;
    renderPreviewButton();
    renderList();
    setCursor(null);
  }

  if (ui.saveTemplate && ui.saveTemplate.disabled) ui.saveTemplate.setAttribute("data-server-disabled", "");

  if (ui.release) {
    ui.release.addEventListener("click", async () => {
      if (releasing) return;
      if (drag) endDrag(null, true);
      showError("");
      const sent = payloadBoxes();
      let confirmNoText = false;
      if (!sent.length) {
        if (!window.confirm(NO_BOXES_QUESTION)) {
          announce("Not released. Draw a box over any identifying text.");
          return;
        }
        confirmNoText = true;
      }
      // Read before setReleasing() disables the checkbox.
      const saveTemplate = Boolean(
        ui.saveTemplate && !ui.saveTemplate.hasAttribute("data-server-disabled") && ui.saveTemplate.checked,
      );
      setReleasing(true);
      announce(
        sent.length
          ? "Masking the image and releasing it… Long clips can take a minute."
          : "Releasing the image without masking…",
      );
      const result = await post(config.release_url, {
        boxes: sent,
        save_template: saveTemplate,
        confirm_no_text: confirmNoText,
      });
      if (result.status === 200) {
        const data = await readJSON(result.response);
        const next = data && safeUrl(data.redirect);
        if (next) {
          announce("Released. Opening the next page…");
          window.location.assign(next);
          return; // stay disabled while the next page loads
        }
        showError("The server did not say where to go next. The image may have been released: reload the page.");
      } else {
        showError(`The image was not released: ${await errorReason(result)}`);
      }
      announce("");
      setReleasing(false);
    });
  }

  // ---------------------------------------------------------------- start

  window.clinicMask = Object.freeze({ boxes: () => payloadBoxes() });

  window.addEventListener("resize", scheduleLayout);
  if (typeof ResizeObserver === "function" && ui.viewer) new ResizeObserver(scheduleLayout).observe(ui.viewer);
  window.addEventListener("pagehide", () => {
    // The held image's pixels should not outlive the page in memory longer than needed.
    originals.clear();
    masked.clear();
  });

  mountViewer();
  layout();
  renderList();
  renderPreviewButton();
  loadOriginal().finally(() => {
    layout();
    document.documentElement.dataset.maskReady = "true";
  });
})();
