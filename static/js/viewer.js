/*
 * clinic_ai: the image viewer, one component for the image page, the labelling queue and the
 * masking page. Plain ES2020 on a <canvas>, no library, no build step, nothing inline (CSP).
 *
 *   const viewer = window.ClinicViewer.mount(element, options);
 *
 * Pixels come at full bit depth from /images/<id>/pixels/<frame>/ (see studies.views.image_pixels:
 * the body is little-endian uint8/uint16/int16/float32 values, the headers say which, the shape,
 * the rescale slope/intercept and the header's windows), so window/level works on the real values,
 * not on a stretched 8-bit picture. The header's windows are drawn with its VOI LUT function
 * (LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 C.11.2.1.2-3). A VOI LUT Sequence in the file is fetched
 * item by item (?voi=<item>: a table over modality values) and offered as the "Header LUT" presets;
 * item 0 is the first display, as in the preview, and a drag then windows the LUT's output. Any picture the browser can decode (the 8-bit preview PNG, the
 * masking page's previews) can be shown too: window/level then works on its 0-255 values, per
 * channel for colour; the same for colour and 8-bit images from the pixel endpoint.
 *
 * Mouse: drag = window/level (right/left: wider/narrower; down/up: higher/lower center), Shift+drag
 * or the middle button = pan, wheel = zoom about the pointer, Shift+wheel = frame, double click =
 * reset. Keys (not in form fields, no Ctrl/Alt/Meta): ←/→ (or ↑/↓, PageUp/PageDown) frame, I invert,
 * R reset, W next window preset, + / - zoom. None of them is a labelling key (1-9, U, S, Z,
 * Backspace, Enter). A key another handler took already (event.defaultPrevented) is left alone.
 *
 * options: frames (1), frame (0), pixelsUrl(frame) -> URL or null, previewUrl(frame) -> URL or null
 * (an 8-bit picture drawn first while the pixels load), loadFrame(frame) -> Promise of an image,
 * ImageBitmap or Blob (instead of both URLs), toolbar (true), keyboard (true), zoom (true: zoom and
 * pan), label (the canvas's accessible name), onFrame(frame), toolbarHost (where the toolbar goes,
 * default: under the image), start (true: load the first frame at once).
 *
 * Returned: { canvas, show(picture), setFrame(n) -> Promise of true once drawn, frame(), setOverlay({url, visible, opacity}),
 * setWindow(center, width[, voi: VOI LUT item or null]), invert(on), reset(), reload(), state() }.
 */
(() => {
  "use strict";

  const TYPES = { uint8: Uint8Array, uint16: Uint16Array, int16: Int16Array, float32: Float32Array };
  // Per modality presets, in modality values (Hounsfield units for CT): [name, center, width].
  const MODALITY_PRESETS = {
    CT: [
      ["Lung", -600, 1500],
      ["Mediastinum", 50, 350],
      ["Abdomen", 40, 400],
      ["Bone", 400, 1800],
      ["Brain", 40, 80],
      ["Subdural", 75, 215],
    ],
  };
  const CACHE_FRAMES = 48; // frames kept decoded per viewer
  const AUTO_PERCENTILES = [0.005, 0.995]; // as the preview's automatic window (studies/imaging.py)
  const ZOOM_MIN = 0.1;
  const ZOOM_MAX = 40;

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  /** numpy's rint (half to even), as the server's VOI LUT mapping rounds modality values. */
  const rint = (x) => {
    const r = Math.round(x);
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };

  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined) n.textContent = String(text);
    return n;
  }

  // ------------------------------------------------------------------ pictures

  /** Stored-value range of a typed array (integers) or value range (float). */
  function range(values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < values.length; i += 1) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return lo <= hi ? [lo, hi] : [0, 0];
  }

  /** The preview's automatic window (percentiles of a sample), worked out once per picture. */
  function autoWindow(pic) {
    if (!pic.auto) pic.auto = percentileWindow(pic);
    return pic.auto;
  }

  function percentileWindow(pic) {
    const n = pic.values.length;
    const step = Math.max(1, Math.floor(n / 200000));
    const sample = new Float64Array(Math.ceil(n / step));
    let j = 0;
    for (let i = 0; i < n; i += step) sample[j++] = pic.values[i] * pic.slope + pic.intercept;
    const sorted = sample.subarray(0, j).sort();
    let lo = sorted[Math.floor(AUTO_PERCENTILES[0] * (j - 1))];
    let hi = sorted[Math.ceil(AUTO_PERCENTILES[1] * (j - 1))];
    if (!(hi > lo)) [lo, hi] = [pic.min, pic.max];
    if (!(hi > lo)) return { center: lo, width: 1 };
    return { center: (lo + hi) / 2, width: hi - lo };
  }

  // 8-bit values shown as they are: level(v) = v exactly.
  const AS_STORED = { name: "As stored (0-255)", center: 127.5, width: 255 };

  /** The window that shows a VOI LUT's whole output range black to white, as the preview does. */
  function lutWindow(lut, voi) {
    return { center: (lut.lo + lut.hi) / 2, width: Math.max(1, lut.hi - lut.lo), voi };
  }

  function presetsFor(pic) {
    const out = [];
    if (pic.kind === "rgb" || pic.plain8) out.push({ ...AS_STORED });
    if (pic.kind === "grey") {
      // The LUTs' explanations are free text from the file: they are never shown, item numbers are.
      const luts = Object.keys(pic.luts || {}).map(Number);
      for (const i of luts) out.push({ name: luts.length > 1 ? `Header LUT ${i + 1}` : "Header LUT", ...lutWindow(pic.luts[i], i) });
      pic.windows.forEach(([c, w], i) => out.push({ name: pic.windows.length > 1 ? `Header ${i + 1}` : "Header", center: c, width: w }));
      for (const [name, c, w] of MODALITY_PRESETS[pic.modality] || []) out.push({ name, center: c, width: w });
      const auto = autoWindow(pic);
      out.push({ name: "Auto (0.5-99.5 %)", center: auto.center, width: auto.width });
    }
    out.push({ name: "Full range", center: (pic.min + pic.max) / 2, width: Math.max(1, pic.max - pic.min) });
    return out;
  }

  /** A picture from the pixel endpoint's response. */
  async function pictureFromResponse(response) {
    const type = response.headers.get("X-Pixel-Type");
    const shape = (response.headers.get("X-Pixel-Shape") || "").split(",").map(Number);
    const Type = TYPES[type];
    if (!Type || shape.length !== 3 || !shape.every((v) => Number.isInteger(v) && v > 0)) {
      throw new Error("The server sent pixels this viewer cannot read.");
    }
    const [rows, columns, samples] = shape;
    const buffer = await response.arrayBuffer();
    if (buffer.byteLength !== rows * columns * samples * Type.BYTES_PER_ELEMENT) throw new Error("The pixels are incomplete.");
    const rescale = (response.headers.get("X-Pixel-Rescale") || "1,0,0").split(",");
    const photometric = response.headers.get("X-Pixel-Photometric") || "MONOCHROME2";
    if (samples === 3) {
      const src = new Uint8Array(buffer);
      const rgba = new Uint8ClampedArray(rows * columns * 4);
      for (let i = 0, j = 0; i < src.length; i += 3, j += 4) {
        rgba[j] = src[i];
        rgba[j + 1] = src[i + 1];
        rgba[j + 2] = src[i + 2];
        rgba[j + 3] = 255;
      }
      return colourPicture(rgba, columns, rows, "pixels");
    }
    const values = new Type(buffer); // little-endian, as every browser's platform
    const [lo, hi] = range(values);
    const slope = Number(rescale[0]) || 1;
    const intercept = Number(rescale[1]) || 0;
    const windows = (response.headers.get("X-Pixel-Windows") || "")
      .split(";")
      .map((pair) => pair.split("/").map(Number))
      .filter((p) => p.length === 2 && p.every(Number.isFinite) && p[1] > 0);
    const ends = [lo * slope + intercept, hi * slope + intercept].sort((a, b) => a - b);
    const fn = response.headers.get("X-Pixel-VOI-Function");
    const lutItems = (response.headers.get("X-Pixel-VOI-LUTs") || "")
      .split(",")
      .filter((v) => /^[0-7]$/.test(v))
      .map(Number);
    return {
      kind: "grey",
      source: "pixels",
      width: columns,
      height: rows,
      values,
      integer: type !== "float32",
      storedMin: lo,
      storedMax: hi,
      slope,
      intercept,
      min: ends[0],
      max: ends[1],
      windows,
      modality: response.headers.get("X-Pixel-Modality") || "",
      monochrome1: photometric === "MONOCHROME1",
      plain8: type === "uint8" && !response.headers.get("X-Pixel-Modality") && slope === 1 && intercept === 0,
      frames: Number(response.headers.get("X-Pixel-Frames")) || 1,
      voiFunction: fn === "SIGMOID" || fn === "LINEAR_EXACT" ? fn : "LINEAR",
      lutItems,
      luts: {}, // item -> { first, table, lo, hi }, filled by fetchPixels
      url: response.url,
    };
  }

  /** Item `voi` of the frame's VOI LUT Sequence, from the pixel endpoint's ?voi= answer. */
  async function fetchLut(url, voi, signal) {
    const address = new URL(url, window.location.href);
    address.searchParams.set("voi", String(voi));
    const response = await fetch(address.href, { credentials: "same-origin", signal, headers: { Accept: "application/octet-stream" } });
    if (!response.ok) throw new Error(`The VOI LUT could not be loaded (${response.status}).`);
    const shape = (response.headers.get("X-Pixel-Shape") || "").split(",").map(Number);
    const first = Number(response.headers.get("X-Pixel-VOI-First"));
    const [lo, hi] = (response.headers.get("X-Pixel-Range") || "").split(",").map(Number);
    const entries = shape[0];
    if (response.headers.get("X-Pixel-Type") !== "uint16" || !Number.isInteger(entries) || entries < 1 || !Number.isInteger(first) || !(hi > lo)) {
      throw new Error("The server sent a VOI LUT this viewer cannot read.");
    }
    const buffer = await response.arrayBuffer();
    if (buffer.byteLength !== entries * 2) throw new Error("The VOI LUT is incomplete.");
    return { first, table: new Uint16Array(buffer), lo, hi };
  }

  function colourPicture(rgba, width, height, source) {
    return { kind: "rgb", source, width, height, rgba, min: 0, max: 255, windows: [], modality: "", monochrome1: false };
  }

  /** A picture from anything drawImage takes (an <img>, an ImageBitmap, a canvas): 8-bit values. */
  function pictureFromImage(image) {
    const width = image.naturalWidth || image.width;
    const height = image.naturalHeight || image.height;
    const scratch = document.createElement("canvas");
    scratch.width = width;
    scratch.height = height;
    const ctx = scratch.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(image, 0, 0);
    return colourPicture(ctx.getImageData(0, 0, width, height).data, width, height, "image");
  }

  async function fetchPixels(url, signal) {
    const response = await fetch(url, { credentials: "same-origin", signal, headers: { Accept: "application/octet-stream" } });
    if (!response.ok) throw new Error(`The pixels could not be loaded (${response.status}).`);
    const pic = await pictureFromResponse(response);
    if (pic.kind === "grey" && pic.lutItems.length) {
      // Fetched before the picture is shown, so its first drawing is the LUT's, as the preview.
      // A LUT that does not come is not offered; the header window or the automatic one is used.
      const luts = await Promise.all(pic.lutItems.map((i) => fetchLut(pic.url || url, i, signal).catch(() => null)));
      pic.lutItems.forEach((item, k) => {
        if (luts[k]) pic.luts[item] = luts[k];
      });
    }
    return pic;
  }

  async function fetchImage(url, signal) {
    const response = await fetch(url, { credentials: "same-origin", signal, headers: { Accept: "image/*" } });
    if (!response.ok) throw new Error(`The picture could not be loaded (${response.status}).`);
    return pictureFromBlob(await response.blob());
  }

  async function pictureFromBlob(blob) {
    const bitmap = await createImageBitmap(blob);
    try {
      return pictureFromImage(bitmap);
    } finally {
      bitmap.close();
    }
  }

  async function pictureFrom(value) {
    if (value && value.kind && (value.values || value.rgba)) return value;
    if (value instanceof Blob) return pictureFromBlob(value);
    if (value instanceof HTMLImageElement && !value.complete) await value.decode();
    return pictureFromImage(value);
  }

  function defaultWindow(pic) {
    // As the preview: the VOI LUT Sequence's first item, then the header's first window, then auto.
    if (pic.kind === "grey" && pic.luts && pic.luts[0]) return lutWindow(pic.luts[0], 0);
    if (pic.kind === "grey" && pic.windows.length) return { center: pic.windows[0][0], width: pic.windows[0][1] };
    // An 8-bit PNG or JPEG is shown as it is, as its preview; DICOM without a window gets the
    // preview's automatic one.
    if (pic.kind === "grey" && !pic.plain8) return autoWindow(pic);
    return { center: AS_STORED.center, width: AS_STORED.width };
  }

  /** Window, level and invert a picture into a canvas at its own size, kept on the picture: showing
   * it again with the same window (or after prepare()) costs nothing. */
  function render(pic, win, inverted) {
    const lut = pic.kind === "grey" && win.voi !== undefined && win.voi !== null && pic.luts ? pic.luts[win.voi] : null;
    const key = `${win.center}|${win.width}|${inverted}|${lut ? win.voi : ""}`;
    if (pic.rendered && pic.rendered.key === key) return pic.rendered.canvas;
    const { width, height } = pic;
    const canvas = pic.rendered ? pic.rendered.canvas : document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const bctx = canvas.getContext("2d");
    const out = bctx.createImageData(width, height);
    const lo = win.center - win.width / 2;
    const scale = 255 / Math.max(win.width, 1e-9);
    const flip = inverted !== pic.monochrome1;
    // The header's VOI LUT function shapes every window on the modality values; a LUT's output is
    // windowed linearly. LINEAR_EXACT (C.11.2.1.3.2) is ((x - c) / w + 0.5) clamped: this line.
    // LINEAR (C.11.2.1.2.1) is drawn the same way, as the viewer always has.
    const sigmoid = !lut && pic.voiFunction === "SIGMOID";
    const k = -4 / Math.max(win.width, 1e-9);
    const level = (m) => {
      const v = (sigmoid ? 255 / (1 + Math.exp(k * (m - win.center))) : clamp((m - lo) * scale, 0, 255)) + 0.5;
      return flip ? 255 - (v | 0) : v | 0;
    };
    // Modality value -> the LUT's output (PS3.3 C.11.2.1.1: inputs past either end take the end entry).
    const through = lut ? (m) => lut.table[clamp(rint(m) - lut.first, 0, lut.table.length - 1)] : (m) => m;
    if (pic.kind === "rgb") {
      const lut = new Uint8Array(256);
      for (let v = 0; v < 256; v += 1) lut[v] = level(v);
      const src = pic.rgba;
      const dst = out.data;
      for (let i = 0; i < src.length; i += 4) {
        dst[i] = lut[src[i]];
        dst[i + 1] = lut[src[i + 1]];
        dst[i + 2] = lut[src[i + 2]];
        dst[i + 3] = 255;
      }
    } else {
      const dst = new Uint32Array(out.data.buffer);
      const values = pic.values;
      const { slope, intercept } = pic;
      if (pic.integer && pic.storedMax - pic.storedMin < 1 << 20) {
        // One LUT entry per stored value: the per-pixel work is a table look-up.
        const base = pic.storedMin;
        const lut = new Uint32Array(pic.storedMax - base + 1);
        for (let v = 0; v < lut.length; v += 1) {
          const g = level(through((v + base) * slope + intercept));
          lut[v] = 0xff000000 | (g << 16) | (g << 8) | g;
        }
        for (let i = 0; i < values.length; i += 1) dst[i] = lut[values[i] - base];
      } else {
        for (let i = 0; i < values.length; i += 1) {
          const g = level(through(values[i] * slope + intercept));
          dst[i] = 0xff000000 | (g << 16) | (g << 8) | g;
        }
      }
    }
    bctx.putImageData(out, 0, 0);
    pic.rendered = { key, canvas };
    return canvas;
  }

  /** Render a picture as the viewer will first show it, ahead of time (the labelling queue's preload). */
  function prepare(pic) {
    if (pic.kind === "grey") autoWindow(pic); // for the presets
    render(pic, defaultWindow(pic), false);
    return pic;
  }

  // ------------------------------------------------------------------ the viewer

  function mount(element, options = {}) {
    const opts = { frames: 1, frame: 0, toolbar: true, keyboard: true, zoom: true, ...options };
    const frames = Math.max(1, Math.floor(Number(opts.frames)) || 1);
    element.classList.add("cv-viewer");
    const stage = node("div", "cv-stage");
    const canvas = node("canvas", "cv-canvas");
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", opts.label || "Image viewer. Drag to change window and level, Shift+drag to pan, wheel to zoom.");
    const status = node("div", "cv-status");
    status.setAttribute("aria-live", "polite");
    stage.append(canvas, status);
    element.replaceChildren(stage);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    let buffer = null; // the picture windowed, at its own size

    let picture = null;
    let frame = clamp(Math.floor(Number(opts.frame)) || 0, 0, frames - 1);
    let win = { center: 128, width: 256, voi: null }; // voi: the VOI LUT item windowed, or null
    let inverted = false;
    let zoom = 1;
    let pan = { x: 0, y: 0 }; // CSS pixels
    let presets = [];
    let dirty = true; // the buffer must be rebuilt (window, invert or picture changed)
    let frameRequest = 0;
    let drawn = 0;
    const overlay = { url: null, image: null, visible: false, opacity: 0.6 };
    const cache = new Map(); // frame -> picture, full depth only

    // -------------------------------------------------------------- toolbar
    const ui = {};
    if (opts.toolbar) {
      const bar = node("div", "cv-toolbar d-flex flex-wrap align-items-center gap-2 mt-2");
      ui.preset = node("select", "form-select form-select-sm w-auto cv-preset");
      ui.preset.setAttribute("aria-label", "Window preset (W)");
      ui.invert = node("button", "btn btn-sm btn-outline-secondary cv-invert", "Invert (I)");
      ui.invert.type = "button";
      ui.invert.setAttribute("aria-pressed", "false");
      ui.reset = node("button", "btn btn-sm btn-outline-secondary cv-reset", "Reset (R)");
      ui.reset.type = "button";
      ui.readout = node("span", "small font-monospace text-body-secondary cv-readout");
      bar.append(ui.preset, ui.invert, ui.reset, ui.readout);
      if (frames > 1) {
        const group = node("div", "d-flex align-items-center gap-2 flex-grow-1 cv-frames");
        ui.slider = node("input", "form-range flex-grow-1 cv-frame-slider");
        Object.assign(ui.slider, { type: "range", min: "0", max: String(frames - 1), step: "1", value: String(frame) });
        ui.slider.setAttribute("aria-label", "Frame (arrow keys, Shift+wheel)");
        ui.frameText = node("span", "small text-nowrap cv-frame-text");
        group.append(ui.slider, ui.frameText);
        bar.append(group);
        ui.slider.addEventListener("input", () => setFrame(Number(ui.slider.value)));
      }
      (opts.toolbarHost || element).append(bar);
      ui.preset.addEventListener("change", () => {
        const p = presets[Number(ui.preset.value)];
        if (p) setWindow(p.center, p.width, p.voi ?? null);
      });
      ui.invert.addEventListener("click", () => invert(!inverted));
      ui.reset.addEventListener("click", () => reset());
    }

    function updateUi() {
      element.dataset.viewerFrame = String(frame);
      element.dataset.viewerInverted = inverted ? "1" : "0";
      element.dataset.viewerSource = picture ? picture.source : "";
      if (!opts.toolbar) return;
      ui.invert.setAttribute("aria-pressed", String(inverted));
      ui.invert.classList.toggle("active", inverted);
      const fmt = (v) => (Math.abs(v) >= 100 ? Math.round(v) : Number(v.toFixed(1)));
      const through = win.voi === null ? "" : `LUT ${win.voi + 1} `;
      ui.readout.textContent = picture ? `${through}W ${fmt(win.width)} L ${fmt(win.center)}` : "";
      const index = presets.findIndex((p) => samePreset(p, win));
      ui.preset.value = index >= 0 ? String(index) : "";
      if (ui.slider) {
        ui.slider.value = String(frame);
        ui.frameText.textContent = `Frame ${frame + 1} of ${frames}`;
      }
    }

    function samePreset(p, w) {
      return (p.voi ?? null) === w.voi && Math.abs(p.center - w.center) < 1e-6 && Math.abs(p.width - w.width) < 1e-6;
    }

    function fillPresets() {
      presets = picture ? presetsFor(picture) : [];
      if (!opts.toolbar) return;
      const custom = node("option", "", "Custom window");
      custom.value = "";
      custom.disabled = true;
      ui.preset.replaceChildren(
        custom,
        ...presets.map((p, i) => {
          const o = node("option", "", `${p.name} (W ${Math.round(p.width)} L ${Math.round(p.center)})`);
          o.value = String(i);
          return o;
        }),
      );
    }

    // -------------------------------------------------------------- drawing

    /** The picture windowed into its own canvas, made once per window/invert (or ahead: prepare). */
    function rebuild() {
      dirty = false;
      if (picture) buffer = render(picture, win, inverted);
    }

    function resizeCanvas() {
      const ratio = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(stage.clientWidth * ratio));
      const h = Math.max(1, Math.round(stage.clientHeight * ratio));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
        return true;
      }
      return false;
    }

    /** Where the image lies on the canvas, in CSS pixels. */
    function placement() {
      const cw = stage.clientWidth;
      const ch = stage.clientHeight;
      if (!picture || !cw || !ch) return null;
      const fit = Math.min(cw / picture.width, ch / picture.height);
      const s = fit * zoom;
      const w = picture.width * s;
      const h = picture.height * s;
      return { x: (cw - w) / 2 + pan.x, y: (ch - h) / 2 + pan.y, w, h, s };
    }

    function paint() {
      resizeCanvas();
      if (dirty) rebuild();
      const ratio = canvas.width / Math.max(1, stage.clientWidth);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const at = placement();
      if (!at) return;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      // Magnified pixels stay square (a radiologist zooms in to see them); shrunk ones are smoothed.
      ctx.imageSmoothingEnabled = at.s < 1;
      if (buffer) ctx.drawImage(buffer, at.x, at.y, at.w, at.h);
      if (overlay.visible && overlay.image && overlay.image.complete && overlay.image.naturalWidth) {
        ctx.imageSmoothingEnabled = true;
        ctx.globalAlpha = clamp(overlay.opacity, 0, 1);
        ctx.drawImage(overlay.image, at.x, at.y, at.w, at.h);
        ctx.globalAlpha = 1;
      }
      drawn += 1;
      element.dataset.viewerDrawn = String(drawn);
    }

    let paintQueued = 0;
    function schedulePaint() {
      if (paintQueued) return;
      paintQueued = requestAnimationFrame(() => {
        paintQueued = 0;
        paint();
      });
    }

    // -------------------------------------------------------------- state changes

    /** Show a picture now (synchronously drawn). keepView: a better rendition of the same image. */
    function show(pic, keepView = false) {
      const previous = picture;
      if (previous && previous !== pic) previous.rendered = null; // one windowed copy kept: the one shown
      picture = pic;
      const sameImage = keepView && previous;
      if (!sameImage) {
        // Another image: nothing of the last one's view carries over.
        zoom = 1;
        pan = { x: 0, y: 0 };
        inverted = false;
      }
      // Another frame keeps the window (its brightness does not jump while scrolling); the
      // full-depth pixels replacing the 8-bit preview start from their own default.
      // A frame without the LUT being windowed starts from its own default too.
      const lutGone = win.voi !== null && !(pic.luts && pic.luts[win.voi]);
      if (!sameImage || previous.kind !== pic.kind || lutGone) win = { voi: null, ...defaultWindow(pic) };
      fillPresets();
      dirty = true;
      status.textContent = "";
      paint();
      updateUi();
    }

    /** voi: the VOI LUT item whose output is windowed, null for the modality values, left out: as now. */
    function setWindow(center, width, voi) {
      if (!picture || !Number.isFinite(center) || !Number.isFinite(width)) return;
      let through = voi === undefined ? win.voi : voi;
      if (through !== null && !(picture.luts && picture.luts[through])) through = null;
      win = { center, width: Math.max(width, picture.kind === "grey" && !picture.integer && through === null ? 1e-6 : 1), voi: through };
      dirty = true;
      schedulePaint();
      updateUi();
    }

    function invert(on) {
      inverted = Boolean(on);
      dirty = true;
      schedulePaint();
      updateUi();
    }

    function reset() {
      zoom = 1;
      pan = { x: 0, y: 0 };
      inverted = false;
      if (picture) win = { voi: null, ...defaultWindow(picture) };
      dirty = true;
      schedulePaint();
      updateUi();
    }

    async function loadFrame(index) {
      if (cache.has(index)) return cache.get(index);
      let pic;
      if (opts.loadFrame) pic = await pictureFrom(await opts.loadFrame(index));
      else {
        const url = opts.pixelsUrl && opts.pixelsUrl(index);
        if (!url) throw new Error("No pixels for this frame.");
        pic = await fetchPixels(url);
      }
      cache.set(index, pic);
      if (cache.size > CACHE_FRAMES) cache.delete(cache.keys().next().value);
      return pic;
    }

    async function setFrame(index) {
      const target = clamp(Math.floor(index) || 0, 0, frames - 1);
      const first = !picture;
      frame = target;
      updateUi();
      const ticket = ++frameRequest;
      if (typeof opts.onFrame === "function") opts.onFrame(target);
      if (first && !cache.has(target) && opts.previewUrl && opts.previewUrl(target)) {
        // The 8-bit preview draws first; the full-depth pixels replace it when they arrive.
        fetchImage(opts.previewUrl(target))
          .then((pic) => {
            if (ticket === frameRequest && !picture) show(pic);
          })
          .catch(() => {});
      }
      try {
        const pic = await loadFrame(target);
        if (ticket !== frameRequest) return false;
        show(pic, Boolean(picture));
        element.dataset.viewerShownFrame = String(target);
        // The neighbours load while the reader looks at this one.
        for (const next of [target + 1, target - 1]) {
          if (next >= 0 && next < frames && !cache.has(next)) loadFrame(next).catch(() => {});
        }
        return true;
      } catch (err) {
        if (ticket === frameRequest) status.textContent = err.message || "The image could not be loaded.";
        return false;
      }
    }

    function reload() {
      cache.clear();
      return setFrame(frame);
    }

    function setOverlay({ url, visible, opacity } = {}) {
      if (url !== undefined && url !== overlay.url) {
        overlay.url = url || null;
        overlay.image = null;
        if (overlay.url) {
          const image = new Image();
          image.addEventListener("load", () => {
            if (overlay.image === image) schedulePaint();
          });
          image.src = overlay.url;
          overlay.image = image;
        }
      }
      if (visible !== undefined) overlay.visible = Boolean(visible);
      if (opacity !== undefined && Number.isFinite(Number(opacity))) overlay.opacity = clamp(Number(opacity), 0, 1);
      schedulePaint();
    }

    function state() {
      return {
        frame,
        frames,
        center: win.center,
        width: win.width,
        inverted,
        zoom,
        pan: { ...pan },
        source: picture ? picture.source : null,
        overlay: { url: overlay.url, visible: overlay.visible, opacity: overlay.opacity },
        presets: presets.map((p) => ({ ...p })),
        voi: win.voi,
        voiFunction: picture && picture.kind === "grey" ? picture.voiFunction : null,
      };
    }

    // -------------------------------------------------------------- mouse

    let drag = null;
    canvas.addEventListener("pointerdown", (event) => {
      if (!picture || (event.button !== 0 && event.button !== 1)) return;
      const panning = opts.zoom && (event.shiftKey || event.button === 1);
      drag = { id: event.pointerId, x: event.clientX, y: event.clientY, mode: panning ? "pan" : "window", win: { ...win }, pan: { ...pan } };
      canvas.setPointerCapture(event.pointerId);
      canvas.focus({ preventScroll: true });
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (drag.mode === "pan") {
        pan = { x: drag.pan.x + dx, y: drag.pan.y + dy };
        schedulePaint();
        return;
      }
      // A drag across the whole viewer spans the picture's whole value range (the LUT's output range
      // when a LUT is windowed).
      const lut = drag.win.voi !== null && picture.luts ? picture.luts[drag.win.voi] : null;
      const span = Math.max(lut ? lut.hi - lut.lo : picture.max - picture.min, 1);
      const k = span / Math.max(200, stage.clientWidth);
      setWindow(drag.win.center + dy * k, Math.max(drag.win.width + dx * k, 1e-6));
    });
    const endDrag = (event) => {
      if (drag && event.pointerId === drag.id) drag = null;
    };
    canvas.addEventListener("pointerup", endDrag);
    canvas.addEventListener("pointercancel", endDrag);
    canvas.addEventListener("dblclick", () => reset());
    canvas.addEventListener(
      "wheel",
      (event) => {
        if (!picture) return;
        const delta = event.deltaY || event.deltaX;
        if (event.shiftKey && frames > 1) {
          event.preventDefault();
          if (delta) setFrame(frame + Math.sign(delta));
          return;
        }
        if (!opts.zoom || event.ctrlKey) return;
        event.preventDefault();
        zoomAt(Math.pow(1.0015, -delta), event.clientX, event.clientY);
      },
      { passive: false },
    );

    function zoomAt(factor, clientX, clientY) {
      const rect = stage.getBoundingClientRect();
      const next = clamp(zoom * factor, ZOOM_MIN, ZOOM_MAX);
      const f = next / zoom;
      // The point under the pointer stays where it is.
      const cx = (clientX === undefined ? rect.width / 2 : clientX - rect.left) - rect.width / 2;
      const cy = (clientY === undefined ? rect.height / 2 : clientY - rect.top) - rect.height / 2;
      pan = { x: cx - (cx - pan.x) * f, y: cy - (cy - pan.y) * f };
      zoom = next;
      schedulePaint();
    }

    // -------------------------------------------------------------- keys

    function onKey(event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
      if (!element.isConnected || !picture) return;
      const key = event.key;
      const step = { ArrowRight: 1, ArrowDown: 1, PageDown: 1, ArrowLeft: -1, ArrowUp: -1, PageUp: -1 }[key];
      if (step && frames > 1) {
        event.preventDefault();
        setFrame(frame + step);
      } else if (key === "i" || key === "I") {
        event.preventDefault();
        invert(!inverted);
      } else if ((key === "r" || key === "R") && !event.repeat) {
        event.preventDefault();
        reset();
      } else if ((key === "w" || key === "W") && presets.length && !event.repeat) {
        event.preventDefault();
        const index = presets.findIndex((p) => samePreset(p, win));
        const p = presets[(index + 1) % presets.length];
        setWindow(p.center, p.width, p.voi ?? null);
      } else if (opts.zoom && (key === "+" || key === "=" || key === "-")) {
        event.preventDefault();
        zoomAt(key === "-" ? 1 / 1.25 : 1.25);
      }
    }
    if (opts.keyboard) document.addEventListener("keydown", onKey);

    if (typeof ResizeObserver === "function") new ResizeObserver(() => schedulePaint()).observe(stage);
    else window.addEventListener("resize", schedulePaint);

    updateUi();
    const api = { canvas, element, show: (p, keep) => show(p, keep), setFrame, frame: () => frame, setOverlay, setWindow, invert, reset, reload, state, paint };
    if ((opts.pixelsUrl || opts.loadFrame) && opts.start !== false) setFrame(frame);
    return Object.freeze(api);
  }

  window.ClinicViewer = Object.freeze({ mount, prepare, fetchPixels, fetchImage, pictureFromImage, pictureFrom });
})();
