// One reading from a Bluetooth LE medical device, through Web Bluetooth: the browser's
// chooser shows the devices offering the measurement's standard service, the page connects,
// listens to the measurement characteristic and gives back the first valid reading (parsed by
// gatt.js) for the person to confirm. Whatever happens, the device is disconnected after.
//
// Errors are BluetoothReadError with a `code` the page turns into words: unavailable,
// unknown_kind, no_measurement (the device lacks the characteristic), timeout, disconnected,
// no_record (a glucose meter with nothing stored), refused (the meter refused the request),
// no_valid_reading. The chooser's own refusal (the person closed it: NotFoundError) passes
// through as the browser gives it.

import { parse } from './gatt.js';

// GATT services and their measurement characteristics. An oximeter offers spot-check,
// continuous or both; a glucose meter sends stored records when asked through its Record
// Access Control Point.
export const DEVICES = {
  blood_pressure: { service: 0x1810, measurements: [0x2a35] },
  spo2: { service: 0x1822, measurements: [0x2a5e, 0x2a5f] },
  weight: { service: 0x181d, measurements: [0x2a9d] },
  glucose: { service: 0x1808, measurements: [0x2a18], recordAccess: 0x2a52 },
};
export const READ_TIMEOUT_MS = 60000;
// Record Access Control Point: "report stored records" (opcode 0x01) with the operator
// "last record" (0x06); the answer is "response code" (0x06) for request 0x01 and a result.
const RACP_REPORT_LAST = [0x01, 0x06];
const RACP_RESPONSE = 0x06;
const RACP_SUCCESS = 0x01;
const RACP_NO_RECORDS = 0x06;

export class BluetoothReadError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'BluetoothReadError';
    this.code = code;
  }
}

// Web Bluetooth exists here and may be used: it needs a secure context (HTTPS or localhost).
export function bluetoothAvailable() {
  return Boolean(window.isSecureContext && navigator.bluetooth
    && typeof navigator.bluetooth.requestDevice === 'function');
}

async function measurementCharacteristics(service, uuids) {
  const found = [];
  for (const uuid of uuids) {
    try {
      found.push(await service.getCharacteristic(uuid));
    } catch (err) {
      // An oximeter may offer only one of its two measurements: look for the other.
      if (err.name !== 'NotFoundError') throw err;
    }
  }
  if (found.length === 0) {
    throw new BluetoothReadError('no_measurement', 'the device offers no measurement to read');
  }
  return found;
}

// The first valid reading of `kind` ("blood_pressure", "spo2", "weight", "glucose").
// `timeoutMs` counts from the moment a device is chosen (the chooser is the person's time).
export async function readFromDevice(kind, { timeoutMs = READ_TIMEOUT_MS } = {}) {
  const plan = DEVICES[kind];
  if (!plan) throw new BluetoothReadError('unknown_kind', `no device reads ${kind}`);
  if (!bluetoothAvailable()) {
    throw new BluetoothReadError('unavailable', 'Web Bluetooth is not available here');
  }
  const device = await navigator.bluetooth.requestDevice({
    filters: [{ services: [plan.service] }],
  });
  const listening = [];
  const listen = (target, type, handler) => {
    target.addEventListener(type, handler);
    listening.push([target, type, handler]);
  };
  let timer = null;
  let settle = null;
  const outcome = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  // What went wrong with the readings so far, for the timeout's message.
  let problem = '';
  try {
    timer = setTimeout(() => settle.reject(new BluetoothReadError('timeout',
      `no valid reading within ${timeoutMs / 1000} s${problem}`)), timeoutMs);
    listen(device, 'gattserverdisconnected', () => settle.reject(
      new BluetoothReadError('disconnected', 'the device disconnected before a reading')));
    const run = async () => {
      const server = await device.gatt.connect();
      const service = await server.getPrimaryService(plan.service);
      const characteristics = await measurementCharacteristics(service, plan.measurements);
      for (const characteristic of characteristics) {
        listen(characteristic, 'characteristicvaluechanged', (event) => {
          try {
            const reading = parse(event.target.uuid, event.target.value);
            if (reading.valid) settle.resolve(reading);
            else problem = ' (the device sent only readings it marks as unusable)';
          } catch (err) {
            problem = ` (${err.message})`;
          }
        });
        await characteristic.startNotifications();
      }
      if (plan.recordAccess) await askLastRecord(service, plan.recordAccess, listen, settle);
    };
    run().catch((err) => settle.reject(err));
    return await outcome;
  } finally {
    clearTimeout(timer);
    for (const [target, type, handler] of listening) target.removeEventListener(type, handler);
    // Also ends a connection still being made when the time ran out.
    device.gatt.disconnect();
  }
}

// A glucose meter sends stored records only when asked: "report the last stored record".
// The records come as measurement notifications, then the control point's answer.
async function askLastRecord(service, uuid, listen, settle) {
  const control = await service.getCharacteristic(uuid);
  listen(control, 'characteristicvaluechanged', (event) => {
    const v = event.target.value;
    if (v.byteLength < 4 || v.getUint8(0) !== RACP_RESPONSE || v.getUint8(2) !== RACP_REPORT_LAST[0]) {
      return;
    }
    const result = v.getUint8(3);
    if (result === RACP_NO_RECORDS) {
      settle.reject(new BluetoothReadError('no_record', 'the meter has no stored reading'));
    } else if (result !== RACP_SUCCESS) {
      settle.reject(new BluetoothReadError('refused', `the meter refused the request (${result})`));
    } else {
      // Every record came before this answer: none of them was valid (a first valid one has
      // already settled the outcome, and settling twice changes nothing).
      settle.reject(new BluetoothReadError('no_valid_reading', 'the last stored reading is not usable'));
    }
  });
  await control.startNotifications();
  const request = new Uint8Array(RACP_REPORT_LAST);
  if (typeof control.writeValueWithResponse === 'function') {
    await control.writeValueWithResponse(request);
  } else {
    await control.writeValue(request);
  }
}
