/*
 * clinic_ai: the image page. Choosing a frame shows it at once (the form still works without JS).
 * In a file rather than an onchange attribute: the Content-Security-Policy allows no inline code.
 */
(() => {
  "use strict";
  const select = document.getElementById("frame");
  if (select && select.form) select.addEventListener("change", () => select.form.submit());
})();
