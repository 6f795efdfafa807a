// Readings of Bluetooth LE medical devices: parsers of the Bluetooth SIG GATT characteristics
// (GATT Specification Supplement) for blood pressure, pulse oximetry, weight and glucose. Pure
// functions of a DataView, no DOM, so they run anywhere and are tested with byte sequences.
//
// Each parser returns {kind, values, unit, at, valid}: `values` in the unit the device sent
// (and glucose and weight also converted), `at` the device's own clock as an ISO date-time
// without a zone (a device knows no time zone) or null when absent or unknown, `valid` false
// when a principal value is one of IEEE 11073's special values (NaN, NRes, infinities,
// reserved: given as null) or the device flags the measurement as unusable. Data too short
// for what its flags announce, or a date that cannot be, throws an Error.

// IEEE 11073-20601 special values, as whole 16-bit and 32-bit words (exponent 0).
const SFLOAT_SPECIAL = new Map([
  [0x07ff, NaN], // NaN: not a number
  [0x0800, NaN], // NRes: not at this resolution
  [0x07fe, Infinity],
  [0x0802, -Infinity],
  [0x0801, NaN], // reserved for future use
]);
const FLOAT_SPECIAL = new Map([
  [0x007fffff, NaN],
  [0x00800000, NaN],
  [0x007ffffe, Infinity],
  [0x00800002, -Infinity],
  [0x00800001, NaN],
]);

// 1 mmol/L of glucose (180.16 g/mol) is 18.016 mg/dL.
export const GLUCOSE_MG_DL_PER_MMOL_L = 18.016;
export const KG_PER_LB = 0.45359237;

// mantissa x 10^exponent, dividing for a negative exponent: 1234 / 10 is 123.4 exactly as a
// double, while 1234 * 0.1 is 123.4000000001.
function scaled(mantissa, exponent) {
  return exponent < 0 ? mantissa / 10 ** -exponent : mantissa * 10 ** exponent;
}

// An IEEE 11073 16-bit SFLOAT: 4-bit signed exponent, 12-bit signed mantissa. Special
// values come back as NaN or an infinity; `finite` tells a usable number.
export function sfloat(raw) {
  if (SFLOAT_SPECIAL.has(raw)) return SFLOAT_SPECIAL.get(raw);
  let mantissa = raw & 0x0fff;
  let exponent = raw >> 12;
  if (mantissa >= 0x0800) mantissa -= 0x1000;
  if (exponent >= 0x8) exponent -= 0x10;
  return scaled(mantissa, exponent);
}

// An IEEE 11073 32-bit FLOAT: 8-bit signed exponent, 24-bit signed mantissa.
export function float32(raw) {
  const word = raw >>> 0;
  if (FLOAT_SPECIAL.has(word)) return FLOAT_SPECIAL.get(word);
  let mantissa = word & 0x00ffffff;
  let exponent = word >>> 24;
  if (mantissa >= 0x00800000) mantissa -= 0x01000000;
  if (exponent >= 0x80) exponent -= 0x100;
  return scaled(mantissa, exponent);
}

// A value that can be shown: null for every special value.
function finite(value) {
  return Number.isFinite(value) ? value : null;
}

// Reads little-endian fields in order and says clearly which one the data lacks.
class Cursor {
  constructor(view, name) {
    this.view = view;
    this.name = name;
    this.offset = 0;
  }

  need(bytes, field) {
    if (this.offset + bytes > this.view.byteLength) {
      throw new Error(`${this.name}: data too short for ${field} (${this.view.byteLength} bytes, `
        + `${this.offset + bytes} needed)`);
    }
  }

  u8(field) {
    this.need(1, field);
    return this.view.getUint8(this.offset++);
  }

  u16(field) {
    this.need(2, field);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  s16(field) {
    this.need(2, field);
    const v = this.view.getInt16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u24(field) {
    this.need(3, field);
    const v = this.view.getUint16(this.offset, true) | (this.view.getUint8(this.offset + 2) << 16);
    this.offset += 3;
    return v;
  }

  sfloat(field) {
    return sfloat(this.u16(field));
  }

  dateTime(field) {
    this.need(7, field);
    const v = dateTime(new DataView(this.view.buffer, this.view.byteOffset + this.offset, 7));
    this.offset += 7;
    return v;
  }
}

function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

// The Date Time characteristic's structure (7 bytes: year, month, day, hours, minutes,
// seconds), as 'YYYY-MM-DDTHH:MM:SS', or null when the year, month or day is 0 (unknown).
export function dateTime(view) {
  const c = new Cursor(view, 'Date Time');
  const year = c.u16('year');
  const month = c.u8('month');
  const day = c.u8('day');
  const hours = c.u8('hours');
  const minutes = c.u8('minutes');
  const seconds = c.u8('seconds');
  if (year === 0 || month === 0 || day === 0) return null;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (year < 1582 || year > 9999 || month > 12 || date.getUTCDate() !== day || hours > 23
      || minutes > 59 || seconds > 59) {
    throw new Error(`Date Time: not a date (${year}-${month}-${day} ${hours}:${minutes}:${seconds})`);
  }
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hours)}:${pad(minutes)}:${pad(seconds)}`;
}

// A local date-time plus minutes, still without a zone.
function plusMinutes(iso, minutes) {
  const t = new Date(`${iso}Z`);
  t.setUTCMinutes(t.getUTCMinutes() + minutes);
  return t.toISOString().slice(0, 19);
}

function bits(value, names) {
  const out = {};
  for (const [bit, name] of Object.entries(names)) out[name] = Boolean(value & (1 << Number(bit)));
  return out;
}

// Blood Pressure Measurement (0x2A35).
export function bloodPressure(view) {
  const c = new Cursor(view, 'Blood Pressure Measurement');
  const flags = c.u8('flags');
  const systolic = c.sfloat('systolic');
  const diastolic = c.sfloat('diastolic');
  const meanArterial = c.sfloat('mean arterial pressure');
  const at = flags & 0x02 ? c.dateTime('time stamp') : null;
  const pulse = flags & 0x04 ? finite(c.sfloat('pulse rate')) : null;
  let user = null;
  if (flags & 0x08) {
    const id = c.u8('user id');
    user = id === 0xff ? null : id; // 0xFF: unknown user
  }
  let status = null;
  if (flags & 0x10) {
    const s = c.u16('measurement status');
    status = {
      ...bits(s, { 0: 'bodyMovement', 1: 'cuffTooLoose', 2: 'irregularPulse', 5: 'improperPosition' }),
      // Bits 3-4: 0 within range, 1 above the upper limit, 2 below the lower limit.
      pulseRateRange: ['within', 'above', 'below', 'reserved'][(s >> 3) & 0x3],
    };
  }
  const values = {
    systolic: finite(systolic), diastolic: finite(diastolic),
    meanArterial: finite(meanArterial), pulse, user, status,
  };
  return {
    kind: 'blood_pressure', values, unit: flags & 0x01 ? 'kPa' : 'mmHg', at,
    valid: values.systolic !== null && values.diastolic !== null,
  };
}

// Device and Sensor Status bits that make an oximeter's reading unusable: equipment
// malfunction, sensor unconnected to the user, sensor malfunctioning, sensor disconnected.
const PLX_DEVICE_UNUSABLE = (1 << 1) | (1 << 11) | (1 << 14) | (1 << 15);
// Measurement Status bits: data for demonstration, data for testing, measurement
// unavailable, invalid measurement detected.
const PLX_MEASUREMENT_UNUSABLE = (1 << 10) | (1 << 11) | (1 << 13) | (1 << 15);

function plxStatus(measurement, device) {
  return {
    measurement: measurement === null ? null : bits(measurement, {
      5: 'ongoing', 6: 'earlyEstimate', 7: 'validated', 8: 'fullyQualified', 9: 'fromStorage',
      10: 'demonstration', 11: 'testing', 12: 'calibrationOngoing', 13: 'unavailable',
      14: 'questionable', 15: 'invalid',
    }),
    device: device === null ? null : bits(device, {
      0: 'extendedDisplayUpdate', 1: 'equipmentMalfunction', 2: 'signalProcessingIrregularity',
      3: 'inadequateSignal', 4: 'poorSignal', 5: 'lowPerfusion', 6: 'erraticSignal',
      7: 'nonpulsatileSignal', 8: 'questionablePulse', 9: 'signalAnalysisOngoing',
      10: 'sensorInterference', 11: 'sensorUnconnected', 12: 'unknownSensor',
      13: 'sensorDisplaced', 14: 'sensorMalfunction', 15: 'sensorDisconnected',
    }),
  };
}

function plxReading(spo2, pulse, measurement, device, at, extra) {
  const values = { spo2: finite(spo2), pulse: finite(pulse), ...extra,
    status: plxStatus(measurement, device) };
  const unusable = ((measurement ?? 0) & PLX_MEASUREMENT_UNUSABLE)
    || ((device ?? 0) & PLX_DEVICE_UNUSABLE);
  return { kind: 'spo2', values, unit: '%', at,
    valid: values.spo2 !== null && values.pulse !== null && !unusable };
}

// PLX Spot-Check Measurement (0x2A5E).
export function plxSpotCheck(view) {
  const c = new Cursor(view, 'PLX Spot-Check Measurement');
  const flags = c.u8('flags');
  const spo2 = c.sfloat('SpO2');
  const pulse = c.sfloat('pulse rate');
  let at = flags & 0x01 ? c.dateTime('timestamp') : null;
  const measurement = flags & 0x02 ? c.u16('measurement status') : null;
  const device = flags & 0x04 ? c.u24('device and sensor status') : null;
  const pai = flags & 0x08 ? finite(c.sfloat('pulse amplitude index')) : null;
  // Bit 4: the device's clock is not set, so its timestamp means nothing.
  if (flags & 0x10) at = null;
  return plxReading(spo2, pulse, measurement, device, at, { pulseAmplitudeIndex: pai });
}

// PLX Continuous Measurement (0x2A5F): no timestamp; the normal-averaging values lead, the
// fast and slow ones follow when present.
export function plxContinuous(view) {
  const c = new Cursor(view, 'PLX Continuous Measurement');
  const flags = c.u8('flags');
  const spo2 = c.sfloat('SpO2');
  const pulse = c.sfloat('pulse rate');
  const fast = flags & 0x01
    ? { spo2: finite(c.sfloat('fast SpO2')), pulse: finite(c.sfloat('fast pulse rate')) } : null;
  const slow = flags & 0x02
    ? { spo2: finite(c.sfloat('slow SpO2')), pulse: finite(c.sfloat('slow pulse rate')) } : null;
  const measurement = flags & 0x04 ? c.u16('measurement status') : null;
  const device = flags & 0x08 ? c.u24('device and sensor status') : null;
  const pai = flags & 0x10 ? finite(c.sfloat('pulse amplitude index')) : null;
  return plxReading(spo2, pulse, measurement, device, null,
    { fast, slow, pulseAmplitudeIndex: pai });
}

// Weight Measurement (0x2A9D): unsigned 16-bit weight, 0.005 kg (SI) or 0.01 lb (imperial)
// per step; 0xFFFF is "measurement unsuccessful".
export function weight(view) {
  const c = new Cursor(view, 'Weight Measurement');
  const flags = c.u8('flags');
  const imperial = Boolean(flags & 0x01);
  const raw = c.u16('weight');
  const at = flags & 0x02 ? c.dateTime('time stamp') : null;
  let user = null;
  if (flags & 0x04) {
    const id = c.u8('user id');
    user = id === 0xff ? null : id;
  }
  let bmi = null;
  let height = null;
  if (flags & 0x08) {
    bmi = c.u16('BMI') / 10;
    const h = c.u16('height');
    // SI: 0.001 m per step; imperial: 0.1 inch.
    height = imperial ? h / 10 : h / 1000;
  }
  const failed = raw === 0xffff;
  // In whole thousandths of a kilogram or hundredths of a pound, then divided: exact steps.
  const value = failed ? null : (imperial ? raw / 100 : (raw * 5) / 1000);
  const kg = value === null ? null
    : (imperial ? Math.round(value * KG_PER_LB * 1000) / 1000 : value);
  return {
    kind: 'weight', values: { weight: value, weightKg: kg, bmi, height, heightUnit: imperial ? 'in' : 'm', user },
    unit: imperial ? 'lb' : 'kg', at, valid: !failed,
  };
}

const GLUCOSE_TYPES = {
  1: 'capillary_whole_blood', 2: 'capillary_plasma', 3: 'venous_whole_blood',
  4: 'venous_plasma', 5: 'arterial_whole_blood', 6: 'arterial_plasma',
  7: 'undetermined_whole_blood', 8: 'undetermined_plasma', 9: 'interstitial_fluid',
  10: 'control_solution',
};
const GLUCOSE_LOCATIONS = {
  1: 'finger', 2: 'alternate_site', 3: 'earlobe', 4: 'control_solution', 15: null,
};
// Sensor Status Annunciation bits 1-10 (sensor malfunction, sample size, strip insertion,
// strip type, result too high, too low, temperature too high, too low, read interrupted,
// general device fault) make the result unusable; bit 0 (battery low) does not, and bit 11
// (time fault) only makes the time unknown.
const GLUCOSE_UNUSABLE = 0x07fe;

function round(value, decimals) {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

// Glucose Measurement (0x2A18): the concentration comes in kg/L or mol/L and is given in
// mg/dL (1 kg/L = 100,000 mg/dL) and mmol/L (1 mol/L = 1,000 mmol/L).
export function glucose(view) {
  const c = new Cursor(view, 'Glucose Measurement');
  const flags = c.u8('flags');
  const sequence = c.u16('sequence number');
  const base = c.dateTime('base time');
  const offset = flags & 0x01 ? c.s16('time offset') : 0;
  let at = base === null ? null : plusMinutes(base, offset);
  let concentration = null;
  let type = null;
  let location = null;
  const molar = Boolean(flags & 0x04);
  if (flags & 0x02) {
    concentration = finite(c.sfloat('glucose concentration'));
    const nibbles = c.u8('type and sample location');
    type = GLUCOSE_TYPES[nibbles & 0x0f] ?? 'reserved';
    const where = nibbles >> 4;
    location = where in GLUCOSE_LOCATIONS ? GLUCOSE_LOCATIONS[where] : 'reserved';
  }
  let status = null;
  let statusBits = 0;
  if (flags & 0x08) {
    statusBits = c.u16('sensor status annunciation');
    status = bits(statusBits, {
      0: 'batteryLow', 1: 'sensorMalfunction', 2: 'sampleSizeInsufficient',
      3: 'stripInsertionError', 4: 'stripTypeIncorrect', 5: 'resultTooHigh',
      6: 'resultTooLow', 7: 'temperatureTooHigh', 8: 'temperatureTooLow',
      9: 'readInterrupted', 10: 'deviceFault', 11: 'timeFault',
    });
    if (statusBits & (1 << 11)) at = null;
  }
  let mgDl = null;
  let mmolL = null;
  if (concentration !== null) {
    if (molar) {
      mmolL = round(concentration * 1000, 3);
      mgDl = round(mmolL * GLUCOSE_MG_DL_PER_MMOL_L, 1);
    } else {
      mgDl = round(concentration * 100000, 3);
      mmolL = round(mgDl / GLUCOSE_MG_DL_PER_MMOL_L, 2);
    }
  }
  const control = type === 'control_solution' || location === 'control_solution';
  return {
    kind: 'glucose',
    values: { mgDl, mmolL, deviceUnit: molar ? 'mol/L' : 'kg/L', sequence, type, location,
      status, contextFollows: Boolean(flags & 0x10) },
    unit: 'mg/dL', at,
    valid: mgDl !== null && !control && !(statusBits & GLUCOSE_UNUSABLE),
  };
}

export const PARSERS = {
  0x2a35: bloodPressure,
  0x2a5e: plxSpotCheck,
  0x2a5f: plxContinuous,
  0x2a9d: weight,
  0x2a18: glucose,
};

// A characteristic's 16-bit number from 0x2A35, '2a35', '0x2A35' or its full UUID
// '00002a35-0000-1000-8000-00805f9b34fb' (what Web Bluetooth gives).
export function shortUuid(uuid) {
  if (typeof uuid === 'number') return uuid;
  const text = String(uuid).toLowerCase();
  const full = /^0000([0-9a-f]{4})-0000-1000-8000-00805f9b34fb$/.exec(text);
  const short = /^(?:0x)?([0-9a-f]{4})$/.exec(text);
  const hex = (full || short || [])[1];
  if (!hex) throw new Error(`not a Bluetooth SIG characteristic: ${uuid}`);
  return parseInt(hex, 16);
}

// The parser of a characteristic, applied to its value.
export function parse(characteristicUuid, view) {
  const parser = PARSERS[shortUuid(characteristicUuid)];
  if (!parser) throw new Error(`no parser for characteristic ${characteristicUuid}`);
  return parser(view);
}
