// A page answered at an address that must not stay in the address bar, the tab's history entry
// or a bookmark (the invitation link, /join/{token}: the token is the patient's way in) names its
// own address in <meta name="casa-address">, and this module, first in the page's script, puts
// it in place of the one used. See server/bookings/join.py for what that keeps from the token.
const meta = document.querySelector('meta[name="casa-address"]');
if (meta && meta.content.startsWith('/') && !meta.content.startsWith('//')) {
  history.replaceState(history.state, '', meta.content);
}
