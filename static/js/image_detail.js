/*
 * clinic_ai: the image page. Mounts the viewer (static/js/viewer.js) on the released image: full
 * bit depth pixels, the 8-bit preview drawn first, frames changed without a reload (the address
 * keeps ?frame= so a reload or a shared link opens the same frame). inference.js draws the heatmap
 * through window.clinicImageViewer.
 */
(() => {
  "use strict";
  const host = document.getElementById("image-viewer");
  if (!host || !window.ClinicViewer) return;
  const { safeUrl } = window.clinicCommon;
  const pixels = safeUrl(host.dataset.pixelsUrl);
  const preview = safeUrl(host.dataset.previewUrl);
  if (!pixels) return;
  const frameUrl = (frame) => pixels.replace(/\/pixels\/0\/$/, `/pixels/${frame}/`);
  window.clinicImageViewer = window.ClinicViewer.mount(host, {
    frames: Number(host.dataset.frames) || 1,
    frame: Number(host.dataset.frame) || 0,
    pixelsUrl: frameUrl,
    previewUrl: preview ? (frame) => `${preview}?frame=${frame}` : null,
    label: "The image. Drag to change window and level, Shift+drag to pan, wheel to zoom.",
    onFrame: (frame) => {
      const url = new URL(window.location.href);
      if (frame) url.searchParams.set("frame", String(frame));
      else url.searchParams.delete("frame");
      window.history.replaceState(null, "", url.href);
    },
  });
})();
