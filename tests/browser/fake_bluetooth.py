"""A stand-in for the browser's Web Bluetooth (``navigator.bluetooth``, not a part of Casa):
one device whose characteristics send what a scenario says when notifications start (or when
the control point is written), so ble-reader.js runs its real flow in Chromium. Shared by
tests/browser/test_gatt.py and the readings form's test (tests/monitoring)."""

from __future__ import annotations

import json
from typing import Any

# A function expression: (scenario, log) => installs navigator.bluetooth. Scenario: `kind`
# (unused here), `characteristics` (short UUIDs), `onNotify` {uuid: [bytes...]}, `onWrite`
# [[uuid, bytes]...], `connectFails`, `cancel` (the person closes the chooser).
INSTALL = """
(scenario, log) => {
  const full = (n) => `0000${n.toString(16).padStart(4, '0')}-0000-1000-8000-00805f9b34fb`;
  const dv = (bytes) => new DataView(new Uint8Array(bytes).buffer);
  class Characteristic extends EventTarget {
    constructor(uuid, service) {
      super();
      this.short = uuid;
      this.uuid = full(uuid);
      this.service = service;
    }
    send(bytes) {
      this.value = dv(bytes);
      this.dispatchEvent(new Event('characteristicvaluechanged'));
    }
    async startNotifications() {
      log.push(`notify ${this.short.toString(16)}`);
      for (const bytes of scenario.onNotify?.[this.short] ?? []) {
        setTimeout(() => this.send(bytes), 5);
      }
      return this;
    }
    async writeValueWithResponse(data) {
      const sent = [...new Uint8Array(data.buffer ?? data)].join(',');
      log.push(`write ${this.short.toString(16)} ${sent}`);
      for (const [uuid, bytes] of scenario.onWrite ?? []) {
        setTimeout(() => this.service.characteristics[uuid].send(bytes), 5);
      }
    }
  }
  const device = new EventTarget();
  device.gatt = {
    connected: false,
    async connect() {
      log.push('connect');
      if (scenario.connectFails) throw new DOMException('Connection failed', 'NetworkError');
      this.connected = true;
      return this;
    },
    disconnect() { log.push('disconnect'); this.connected = false; },
    async getPrimaryService(uuid) {
      log.push(`service ${uuid.toString(16)}`);
      const service = { characteristics: {} };
      for (const c of scenario.characteristics) {
        service.characteristics[c] = new Characteristic(c, service);
      }
      service.getCharacteristic = async (c) => {
        if (!service.characteristics[c]) {
          throw new DOMException('No characteristic', 'NotFoundError');
        }
        return service.characteristics[c];
      };
      return service;
    },
  };
  Object.defineProperty(navigator, 'bluetooth', { configurable: true, value: {
    async requestDevice(options) {
      log.push(`request ${JSON.stringify(options)}`);
      if (scenario.cancel) {
        throw new DOMException('User cancelled the requestDevice() chooser.', 'NotFoundError');
      }
      return device;
    },
  } });
}
"""


def init_script(scenario: dict[str, Any]) -> str:
    """For ``page.add_init_script``: the stand-in installed before any of the page's scripts,
    its log in ``window.bluetoothLog``, its scenario in ``window.bluetoothScenario`` (a test
    may change it between two readings)."""
    return (f"({INSTALL})((window.bluetoothScenario = {json.dumps(scenario)}), "
            "(window.bluetoothLog = []));")
