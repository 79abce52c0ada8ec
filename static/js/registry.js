/* clinic_ai: queue a whole project through its active ensemble, with a progress bar that follows the workers. */
(() => {
  "use strict";
  const { csrfToken } = window.clinicCommon;
  const card = document.getElementById("project-run");
  if (!card) return;
  const button = document.getElementById("queue-project");
  const text = document.getElementById("project-progress-text");
  const bar = document.getElementById("project-progress-bar");
  const wrap = document.getElementById("project-progress");
  let timer = null;

  function show(p) {
    if (!p.ensemble) return;
    const total = Math.max(p.images, 1);
    const finished = p.done + p.failed;
    bar.style.width = `${(100 * finished / total).toFixed(1)}%`;
    wrap.setAttribute("aria-valuenow", String(finished));
    wrap.setAttribute("aria-valuemax", String(p.images));
    text.textContent = `${p.ensemble}: ${p.done} of ${p.images} images done, ${p.failed} failed, ${p.queued + p.running} waiting.`;
    clearTimeout(timer);
    if (p.queued + p.running > 0) timer = setTimeout(poll, 1000);
  }

  async function poll() {
    try {
      const response = await fetch(card.dataset.progressUrl, { credentials: "same-origin" });
      if (response.ok) show(await response.json());
    } catch (err) {
      timer = setTimeout(poll, 5000);
    }
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const response = await fetch(card.dataset.queueUrl, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "Could not queue the project.");
      show(data);
    } catch (err) {
      text.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  poll();
})();
