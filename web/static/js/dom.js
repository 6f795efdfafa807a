// The two things every page script needs from the page itself.

export const $ = (id) => document.getElementById(id);

// The page's CSRF token (base.html's <meta name="csrf-token">), for the X-CSRF-Token header
// of every write the scripts send.
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

// A button's word, changed without its icon: the word is the button's one span.word (the
// templates' icon + word), the button itself when it has none.
export function setWord(button, text) {
  (button.querySelector('.word') || button).textContent = text;
}
