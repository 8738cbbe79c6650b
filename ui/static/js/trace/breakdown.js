// Breakdown table: per service or per (service, operation): count, total, self time, share of
// the trace, critical-path time, errors. Sortable by every column.

import {fmtDuration, h, opLink, pct, serviceLink} from '../util.js';

const COLUMNS = [
  ['service', 'Service', (g) => g.service],
  ['operation', 'Operation', (g) => g.operation || ''],
  ['count', 'Count', (g) => g.count],
  ['totalNs', 'Total time', (g) => g.totalNs],
  ['selfNs', 'Self time', (g) => g.selfNs],
  ['shareOfTrace', 'Self share', (g) => g.shareOfTrace],
  ['criticalPathNs', 'Critical path', (g) => g.criticalPathNs],
  ['errors', 'Errors', (g) => g.errors],
];

export function breakdownView(doc) {
  let by = 'operation';
  let sortKey = 'selfNs';
  let desc = true;
  const el = h('div', {class: 'breakdown'});
  const draw = () => {
    const groups = [...(by === 'service' ? doc.byService : doc.byOperation)];
    const col = COLUMNS.find(([k]) => k === sortKey);
    groups.sort((a, b) => {
      const x = col[2](a);
      const y = col[2](b);
      const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
      return desc ? -c : c;
    });
    const cols = COLUMNS.filter(([k]) => by === 'operation' || k !== 'operation');
    const head = h('tr', null, cols.map(([k, label]) => h('th', {
      class: `sortable${k === sortKey ? (desc ? ' desc' : ' asc') : ''}`,
      onclick: () => { if (sortKey === k) desc = !desc; else { sortKey = k; desc = k !== 'service' && k !== 'operation'; } draw(); },
    }, label)));
    const body = groups.map((g) => h('tr', null,
      h('td', null, serviceLink(g.service)),
      by === 'operation' ? h('td', null, opLink(g.service, g.operation)) : null,
      h('td', {class: 'num'}, g.count),
      h('td', {class: 'num'}, fmtDuration(g.totalNs)),
      h('td', {class: 'num'}, fmtDuration(g.selfNs)),
      h('td', {class: 'num share'}, h('span', {class: 'share-bar'}, h('i', {style: {width: `${Math.min(g.shareOfTrace, 1) * 100}%`}})), pct(g.shareOfTrace)),
      h('td', {class: 'num'}, g.criticalPathNs ? `${fmtDuration(g.criticalPathNs)} (${pct(g.criticalPathShare)})` : '–'),
      h('td', {class: g.errors ? 'num err' : 'num'}, g.errors)));
    el.replaceChildren(
      h('div', {class: 'toolbar-row'},
        h('span', {class: 'seg'},
          h('button', {class: by === 'operation' ? 'on' : '', onclick: () => { by = 'operation'; draw(); }}, 'By operation'),
          h('button', {class: by === 'service' ? 'on' : '', onclick: () => { by = 'service'; draw(); }}, 'By service')),
        h('span', {class: 'muted small'}, 'Self share: self time as a share of the trace duration (parallel work can exceed 100% in total).')),
      h('table', {class: 'table'}, h('thead', null, head), h('tbody', null, body)));
  };
  draw();
  return el;
}
