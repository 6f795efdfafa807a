// The one way the scripts get their words: the server translates them and hands them to the
// page as JSON blocks, <script type="application/json" data-strings> (data, not script: the
// CSP allows it); the scripts never build a sentence themselves. A page may have several blocks
// (the call's, the dashboard's own), and HTML fetched later (the notes editor in the call page)
// brings its own: loadStrings(itsRoot) adds them.
const strings = {};

export function loadStrings(scope = document) {
  for (const el of scope.querySelectorAll('script[type="application/json"][data-strings]')) {
    Object.assign(strings, JSON.parse(el.textContent));
  }
  return strings;
}

// The page's words when they come with its scripts (server/bundles.py puts the call of this in
// the page's one script, cached per language, instead of a block in every page).
export function addStrings(more) {
  Object.assign(strings, more);
}

loadStrings();

// t('net_good', {rtt: 40}) fills the gettext-style %(name)s placeholders. Text values (names)
// are wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE, the plain-text <bdi>: a name
// in another script (or with a stray override character) cannot reorder the sentence around
// it. Numbers need no isolating and stay as they are.
export function t(key, vars = {}) {
  const text = strings[key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (whole, name) => {
    if (!(name in vars)) return whole;
    const value = vars[name];
    return typeof value === 'number' ? numberText(value) : isolated(String(value));
  });
}

export function isolated(text) {
  return `\u2068${text}\u2069`;
}

// An element holding a name or a message typed by someone: its direction is its own and it
// never changes the order of the text around it (<bdi> is isolated by the browser itself).
export function bdi(text) {
  const el = document.createElement('bdi');
  el.textContent = text;
  return el;
}

// The Intl locale of a page language, where it is not the code itself: the same table as the
// server's CLDR_LOCALES (server/consultations/languages.py), so a time reads the same in the
// page's HTML and in what the script writes later.
const INTL_LOCALES = { en: 'en-GB', zh: 'zh-Hans-CN', tl: 'fil' };

export function intlLocale(lang) {
  const code = lang || document.documentElement.lang || 'it';
  return INTL_LOCALES[code] || code;
}

// Times are shown in Rome time, whatever the device's own clock zone is.
export function timeOf(iso, lang) {
  return new Date(iso).toLocaleTimeString(intlLocale(lang),
    { hour: 'numeric', minute: '2-digit', timeZone: 'Europe/Rome' });
}

// Numbers (a round trip in ms, minutes to wait) in the page language's digits and grouping.
export function numberText(value, lang) {
  return new Intl.NumberFormat(intlLocale(lang)).format(value);
}
