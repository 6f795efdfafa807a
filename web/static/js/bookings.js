// Bookings pages: small progressive enhancements. Every form works without this file.
//
// Forms marked data-autosubmit reload as soon as a choice changes (centre, service, mode,
// day), so the modes and the free times shown always match the choices above them.

import "./client-errors.js";
import { t } from "./i18n-client.js";

function autosubmit(form) {
  for (const field of form.querySelectorAll("select, input[type=date], input[type=radio]")) {
    field.addEventListener("change", () => {
      if (typeof form.requestSubmit === "function") {
        form.requestSubmit();
      } else {
        form.submit();
      }
    });
  }
}

// Ask before a cancellation: it tells the patient and cannot be undone. data-confirm names
// the question among the page's words.
function confirmCancel(button) {
  button.addEventListener("click", (event) => {
    if (!window.confirm(t(button.dataset.confirm))) {
      event.preventDefault();
    }
  });
}

for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  autosubmit(form);
}
for (const button of document.querySelectorAll("button[data-confirm]")) {
  confirmCancel(button);
}

// A page that shows a join code once (the code to read aloud, the printed invitation): the
// server has already forgotten the code. If the browser keeps the page in its back-forward
// cache anyway, the code leaves the page as it is hidden, and coming back asks the server
// again, which says the code was shown.
const once = document.querySelector("[data-shown-once]");
if (once) {
  window.addEventListener("pagehide", () => {
    once.replaceChildren();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      window.location.reload();
    }
  });
}
for (const button of document.querySelectorAll("button[data-print]")) {
  button.addEventListener("click", () => window.print());
}
