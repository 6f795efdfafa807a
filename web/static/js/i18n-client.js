// Translated strings handed over by the page as JSON (rendered by the server, never built here).
let strings = {};

export function loadStrings(id = 'call-strings') {
  const el = document.getElementById(id);
  strings = el ? JSON.parse(el.textContent) : {};
  return strings;
}

// t('net_good', {rtt: 40}) fills the gettext-style %(name)s placeholders.
export function t(key, vars = {}) {
  const text = strings[key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

// Times are shown in Rome time, whatever the device's own clock zone is.
export function timeOf(iso, lang) {
  return new Date(iso).toLocaleTimeString(lang || document.documentElement.lang || 'it',
    { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Rome' });
}
