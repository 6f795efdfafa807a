"""negotiation.js in the browser: two PeerLinks in one page wired through a loopback "server"
(with a delay, like a real relay) make offers at the same moment, and the call survives."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import open_page

GLARE = """
async () => {
  const { PeerLink } = await import('/static/js/negotiation.js');
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  const links = {};
  // A relay with 30 ms latency: enough for two offers to cross in flight.
  const offers = { a: 0, b: 0 };
  const relay = (other) => ({
    offer: (to, sdp) => {
      offers[other === 'b' ? 'a' : 'b'] += 1;
      setTimeout(() => links[other].description('offer', sdp), 30);
    },
    answer: (to, sdp) => setTimeout(() => links[other].description('answer', sdp), 30),
    candidate: (to, c) => setTimeout(() => links[other].candidate(c), 30),
  });
  const tracks = { a: [], b: [] };
  links.a = new PeerLink({ peerId: 'b', polite: false, offerer: true, iceServers: [],
    signal: relay('b'), onTrack: (e) => tracks.a.push(e.track) });
  links.b = new PeerLink({ peerId: 'a', polite: true, offerer: false, iceServers: [],
    signal: relay('a'), onTrack: (e) => tracks.b.push(e.track) });
  links.a.addLocal(stream);
  links.b.addLocal(stream);
  const settled = () => new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const ok = ['a', 'b'].every((k) => links[k].pc.connectionState === 'connected'
        && links[k].pc.signalingState === 'stable');
      if (ok) { clearInterval(poll); resolve(); }
      if (Date.now() - started > 10000) {
        clearInterval(poll);
        reject(new Error(['a', 'b'].map((k) => links[k].pc.connectionState + '/'
          + links[k].pc.signalingState).join(' ')));
      }
    }, 50);
  });
  await settled();
  // Glare: both sides add a screen at the same moment, so both send an offer at once.
  const screen = await navigator.mediaDevices.getUserMedia({ video: true });
  const other = new MediaStream([screen.getVideoTracks()[0].clone()]);
  const before = { ...offers };
  links.a.addScreen(screen.getVideoTracks()[0], screen);
  links.b.addScreen(other.getVideoTracks()[0], other);
  await new Promise((r) => setTimeout(r, 300));
  await settled();
  // Both negotiations went through: each side receives audio, camera and the other's screen.
  const live = (list) => list.filter((t) => t.readyState === 'live').length;
  return { a: live(tracks.a), b: live(tracks.b),
    glare: offers.a > before.a && offers.b > before.b,
    aTransceivers: links.a.pc.getTransceivers().length,
    bTransceivers: links.b.pc.getTransceivers().length };
}
"""


async def test_offers_crossing_in_flight_do_not_break_the_call(live: str, browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(live + "/precall")
    result = await w.page.evaluate(GLARE)
    assert result["glare"], result
    assert result["a"] >= 3 and result["b"] >= 3, result
    w.assert_clean()
