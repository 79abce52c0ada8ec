/*
 * clinic_ai: the review page's keyboard. A agree, U ungradable, D then a number key for the correct
 * class (multi-label: number keys toggle, Enter saves), N or J the next image, H the heatmap, C the
 * comment, Esc to cancel. The form works without this file; the file only presses its buttons.
 * In a file, not inline: the Content-Security-Policy allows no inline code.
 */
(() => {
  "use strict";
  const form = document.getElementById("review-form");
  if (!form) return;
  const multilabel = form.dataset.multilabel === "1";
  const fields = document.getElementById("disagree-fields");
  const mode = document.getElementById("review-mode");
  const comment = form.querySelector("textarea[name=comment]");
  const host = document.getElementById("image-viewer");
  const heatmapUrl = host ? host.dataset.heatmapUrl || "" : "";
  const toggle = document.getElementById("heatmap-toggle");
  const next = document.getElementById("next-link");
  let disagreeing = false;
  let sent = false;

  function setDisagreeing(on) {
    disagreeing = on;
    fields.classList.toggle("is-active", on);
    mode.textContent = on
      ? (multilabel ? "Disagree: number keys toggle the classes, Enter saves, Esc cancels." : "Disagree: press the number of the correct class, Esc cancels.")
      : "";
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button && !sent) form.requestSubmit(button);
  }

  // The heatmap is drawn by the shared viewer (image_detail.js mounts it as window.clinicImageViewer).
  function showHeatmap() {
    const viewer = window.clinicImageViewer;
    if (viewer && toggle && heatmapUrl) viewer.setOverlay({ url: heatmapUrl, visible: toggle.checked });
  }

  // One submission per page: a double click or a key held down sends the decision once (the server
  // also stores a repeated request id once).
  form.addEventListener("submit", (event) => {
    if (sent) {
      event.preventDefault();
      return;
    }
    sent = true;
    mode.textContent = "Saving…";
  });

  document.addEventListener("keydown", (event) => {
    // A key held down repeats: it must not decide image after image as each one is shown.
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target === comment || (target instanceof HTMLElement && target.matches("input[type=text], textarea, select"))) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if (disagreeing && /^[1-9]$/.test(key)) {
      const box = fields.querySelector(`input[data-key="${key}"]`);
      if (!box) return;
      event.preventDefault();
      if (multilabel) {
        box.checked = !box.checked;
      } else {
        box.checked = true;
        press("decide-disagree");
      }
      return;
    }
    if (disagreeing && key === "enter" && multilabel) {
      event.preventDefault();
      press("decide-disagree");
      return;
    }
    switch (key) {
      case "a":
        event.preventDefault();
        setDisagreeing(false);
        press("decide-agree");
        break;
      case "u":
        event.preventDefault();
        setDisagreeing(false);
        press("decide-ungradable");
        break;
      case "d":
        event.preventDefault();
        setDisagreeing(!disagreeing);
        break;
      case "escape":
        setDisagreeing(false);
        break;
      case "n":
      case "j":
        if (next) {
          event.preventDefault();
          window.location.assign(next.href);
        }
        break;
      case "h":
        if (toggle) {
          event.preventDefault();
          toggle.checked = !toggle.checked;
          showHeatmap();
        }
        break;
      case "c":
        event.preventDefault();
        comment.focus();
        break;
      default:
        break;
    }
  });

  if (toggle) toggle.addEventListener("change", showHeatmap);
  // A click on a class also means disagree (the Disagree button then saves it).
  fields.addEventListener("change", () => setDisagreeing(true));
  document.documentElement.dataset.reviewReady = "1";
})();
