// The two things every page script needs from the page itself.

export const $ = (id) => document.getElementById(id);

// The page's CSRF token (base.html's <meta name="csrf-token">), for the X-CSRF-Token header
// of every write the scripts send.
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}
