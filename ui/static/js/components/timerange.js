// Time range picker: lookback presets or an absolute range; kept in the URL as
// ``lookback=1h`` or ``start=<ms>&end=<ms>``.

import {h} from '../util.js';

export const LOOKBACKS = [
  ['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['30m', 'Last 30 minutes'], ['1h', 'Last hour'],
  ['3h', 'Last 3 hours'], ['6h', 'Last 6 hours'], ['12h', 'Last 12 hours'], ['24h', 'Last 24 hours'],
  ['2d', 'Last 2 days'], ['7d', 'Last 7 days'],
];

const LOOKBACK_MS = {m: 60e3, h: 3600e3, d: 86400e3};

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
}

/** Read a range from URL params: {lookback} or {start, end} (ms). */
export function rangeFromParams(p, fallback = '1h') {
  if (p.start && p.end) return {start: Number(p.start), end: Number(p.end)};
  return {lookback: p.lookback || fallback};
}

/** The range as API parameters (Unix ns). */
export function rangeToApi(r) {
  if (r.start !== undefined) return {start: String(BigInt(Math.round(r.start)) * 1000000n), end: String(BigInt(Math.round(r.end)) * 1000000n)};
  return {lookback: r.lookback};
}

export const rangeToUrl = (r) => (r.start !== undefined ? {start: r.start, end: r.end} : {lookback: r.lookback});

export function rangeLabel(r) {
  if (r.start !== undefined) return 'custom range';
  const found = LOOKBACKS.find(([v]) => v === r.lookback);
  return found ? found[1].toLowerCase() : `last ${r.lookback}`;
}

/** Lookback in ms of a range (for choosing steps). */
export function rangeMs(r) {
  if (r.start !== undefined) return r.end - r.start;
  const m = /^(\d+)([mhd])$/.exec(r.lookback);
  return m ? Number(m[1]) * LOOKBACK_MS[m[2]] : 3600e3;
}

/** A picker element; ``onChange(range)`` fires on every change. */
export function timeRangePicker(range, onChange, {compact = false} = {}) {
  const select = h('select', {class: 'input', 'aria-label': 'Time range', name: 'lookback'},
    LOOKBACKS.map(([v, label]) => h('option', {value: v}, label)),
    h('option', {value: 'custom'}, 'Custom range…'));
  const now = Date.now();
  const from = h('input', {class: 'input', type: 'datetime-local', step: 1, name: 'start', 'aria-label': 'From',
    value: toLocalInput(range.start ?? now - 3600e3)});
  const to = h('input', {class: 'input', type: 'datetime-local', step: 1, name: 'end', 'aria-label': 'To',
    value: toLocalInput(range.end ?? now)});
  const custom = h('div', {class: compact ? 'range-custom inline' : 'range-custom'},
    h('label', null, 'From', from), h('label', null, 'To', to));
  const known = LOOKBACKS.some(([v]) => v === range.lookback);
  if (range.start !== undefined) select.value = 'custom';
  else if (known) select.value = range.lookback;
  else select.prepend(h('option', {value: range.lookback, selected: true}, `Last ${range.lookback}`));
  custom.hidden = select.value !== 'custom';
  const current = () => {
    if (select.value !== 'custom') return {lookback: select.value};
    const s = new Date(from.value).getTime();
    const e = new Date(to.value).getTime();
    return {start: s, end: Math.max(e, s + 1000)};
  };
  select.addEventListener('change', () => {
    custom.hidden = select.value !== 'custom';
    onChange(current());
  });
  from.addEventListener('change', () => onChange(current()));
  to.addEventListener('change', () => onChange(current()));
  const el = h('div', {class: compact ? 'range-picker compact' : 'range-picker'}, select, custom);
  el.current = current;
  return el;
}
