// The clinician's end page: "Your note is not signed yet", with the way to the note editor.
// Watches the end stage rather than being called by the call's modules: the end page shows
// after the clinician ends, after the other side ends, or at once on an ended consultation.
// Asks records once whether this consultation still holds a draft of the clinician's own.

import './client-errors.js';

const reminder = document.getElementById('note-reminder');
const ended = document.getElementById('stage-ended');
let asked = false;

async function ask() {
  if (asked || ended.hidden) return;
  asked = true;
  try {
    const resp = await fetch(reminder.dataset.unsignedUrl, {
      credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    if (!resp.ok) return;
    const data = await resp.json();
    reminder.hidden = !(data.unsigned > 0);
    reminder.dataset.checked = 'true';
  } catch {
    // Offline at the end of a call: the home page and the dashboard list the draft too.
  }
}

if (reminder && ended) {
  new MutationObserver(ask).observe(ended, { attributes: true, attributeFilter: ['hidden'] });
  ask();
}
