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
