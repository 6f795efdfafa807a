// The neutral page a quick exit lands on: one more entry of itself, so a Back press stays here
// rather than going back towards the page that was left.
history.pushState(null, '', location.href);
