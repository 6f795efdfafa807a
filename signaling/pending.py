"""Sockets that have upgraded but not yet said hello, counted per client address.

Such a socket costs memory (about 18 KiB) and has proved nothing, and the hello timeout only
closes it after 2 s: one silent host could otherwise hold thousands at a time. So each address
may hold ``MAX_PER_ADDRESS`` at once; past that its upgrades are refused before they happen
(HTTP 429, counted in ``casa_signaling_unauthenticated_refused_total``)."""

from __future__ import annotations

# A real client says hello within milliseconds of its upgrade, so even a clinic's kiosks and
# staff behind one NAT, or a carrier's many phones behind one address, rarely have more
# than a few pending at once; 64 is a crowd arriving together, 10,000 an attack.
MAX_PER_ADDRESS = 64


class Pending:
    """Counts of sockets without hello, by address (an address leaves once it has none)."""

    def __init__(self, limit: int = MAX_PER_ADDRESS) -> None:
        self.limit = limit
        self._by_address: dict[str, int] = {}

    def enter(self, address: str) -> bool:
        """Count one more socket for ``address``; False (nothing counted) when it is full."""
        n = self._by_address.get(address, 0)
        if n >= self.limit:
            return False
        self._by_address[address] = n + 1
        return True

    def leave(self, address: str) -> None:
        """The socket said hello, or is gone."""
        n = self._by_address.get(address, 0)
        if n <= 1:
            self._by_address.pop(address, None)
        else:
            self._by_address[address] = n - 1

    def __len__(self) -> int:
        """Sockets without hello, all addresses together."""
        return sum(self._by_address.values())
