// Bookings pages: small progressive enhancements. Every form works without this file.
//
// Forms marked data-autosubmit reload as soon as a choice changes (centre, service, mode,
// day), so the modes and the free times shown always match the choices above them.

import "./client-errors.js";

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

// Ask before a cancellation: it tells the patient and cannot be undone.
function confirmCancel(button) {
  button.addEventListener("click", (event) => {
    const question = button.dataset.confirm;
    if (question && !window.confirm(question)) {
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
