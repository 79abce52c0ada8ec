/*
 * clinic_ai: helpers shared by the page scripts (upload.js, mask.js). Loaded by base.html first.
 * Plain ES2020, no build step, no dependencies.
 */
(() => {
  "use strict";

  /** An element with a class and text; text is set with textContent, never parsed as HTML. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Only http(s) or same-origin relative URLs from the server are followed, fetched or put into href/src. */
  function safeUrl(value) {
    if (typeof value !== "string" || value === "") return null;
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  function csrfToken() {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    if (input && input.value) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  window.clinicCommon = Object.freeze({ el, safeUrl, csrfToken });
})();
