// Compare page: two traces side by side, merged by span path, differences highlighted.

import {getJSON} from '../api.js';
import {navigate} from '../router.js';
import {emptyState, errorBox, loading} from '../components/status.js';
import {fmtDuration, fmtTime, h, opLink, pct, serviceColor, serviceLink, traceHref, traceLink} from '../util.js';

// A change counts when it exceeds 10% of the span's duration in A and 50µs: less is noise.
const significant = (durationDelta, selfDelta, baseNs) => {
  const floor = Math.max(5e4, 0.1 * baseNs);
  return Math.abs(durationDelta) > floor || Math.abs(selfDelta) > floor;
};

export function render(root, {params}) {
  const aIn = h('input', {class: 'input', name: 'a', value: params.a || '', placeholder: 'baseline trace ID', spellcheck: false});
  const bIn = h('input', {class: 'input', name: 'b', value: params.b || '', placeholder: 'trace ID to compare', spellcheck: false});
  const form = h('form', {class: 'compare-form panel'},
    h('label', null, h('span', null, h('span', {class: 'tag a'}, 'A'), ' Baseline'), aIn),
    h('label', null, h('span', null, h('span', {class: 'tag b'}, 'B'), ' Compared'), bIn),
    h('button', {class: 'btn', type: 'button', title: 'Swap A and B', onclick: () => { [aIn.value, bIn.value] = [bIn.value, aIn.value]; }}, '⇄'),
    h('button', {class: 'btn primary', type: 'submit'}, 'Compare'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const a = aIn.value.trim().toLowerCase();
    const b = bIn.value.trim().toLowerCase();
    if (a && b) navigate(`/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  });
  const out = h('div');
  root.append(h('h2', null, 'Compare two traces'), form, out);
  if (!params.a || !params.b) {
    out.append(emptyState('Pick two traces',
      'Enter two trace IDs, or tick two traces in the search results and press "Compare selected".'));
    return null;
  }
  let disposed = false;
  const done = loading(out, 'Comparing…');
  getJSON('/compare', {a: params.a, b: params.b}).then((res) => {
    done();
    if (!disposed) show(out, res);
  }).catch((e) => {
    done();
    if (!disposed) out.append(errorBox(e));
  });
  return () => { disposed = true; };
}

function card(tag, t) {
  return h('div', {class: 'panel compare-card', dataset: {side: tag.toLowerCase()}},
    h('h3', null, h('span', {class: `tag ${tag.toLowerCase()}`}, tag),
      t.rootService ? [serviceLink(t.rootService), ': ', opLink(t.rootService, t.rootOperation)] : '(root span missing)'),
    h('div', null, traceLink(t.traceId)),
    h('div', {class: 'muted small'},
      `${fmtTime(t.startNs)} · ${fmtDuration(t.durationNs)} · ${t.spanCount} spans · ${t.errorCount} errors`));
}

function delta(ns, base) {
  if (!ns) return h('span', {class: 'muted'}, '±0');
  const rel = base ? ` (${ns > 0 ? '+' : ''}${pct(ns / base, 0)})` : '';
  return h('span', {class: ns > 0 ? 'delta-up' : 'delta-down'}, `${ns > 0 ? '+' : ''}${fmtDuration(ns)}${rel}`);
}

function show(out, res) {
  const {a, b} = res;
  const d = res.durationDeltaNs;
  const verdict = h('div', {class: 'verdict'},
    'B took ', delta(d, a.durationNs), d >= 0 ? ' compared with A. ' : ' compared with A. ',
    `${res.matched} spans matched, ${res.changed.filter((c) => significant(c.durationDeltaNs, c.selfDeltaNs, c.durationANs)).length} ` +
    `changed by more than 10%, ${res.onlyInA.length} only in A, ${res.onlyInB.length} only in B.`);
  const top = res.changed.slice(0, 12);
  const changes = top.length ? h('table', {class: 'table'},
    h('thead', null, h('tr', null, ['Span (service: operation)', 'A', 'B', 'Δ duration', 'Δ self time'].map((t, i) => h('th', {class: i ? 'num' : ''}, t)))),
    h('tbody', null, top.map((c) => h('tr', null,
      h('td', null, serviceLink(c.service), ': ', opLink(c.service, c.operation)),
      h('td', {class: 'num'}, h('a', {href: traceHref(a.traceId, {span: c.spanIdA})}, fmtDuration(c.durationANs))),
      h('td', {class: 'num'}, h('a', {href: traceHref(b.traceId, {span: c.spanIdB})}, fmtDuration(c.durationBNs))),
      h('td', {class: 'num'}, delta(c.durationDeltaNs, c.durationANs)),
      h('td', {class: 'num'}, delta(c.selfDeltaNs, c.selfANs))))))
    : h('div', {class: 'muted'}, 'No matched span changed.');

  const scale = Math.max(a.durationNs, b.durationNs, 1);
  const bar = (side, color) => {
    const cell = h('div', {class: 'cmp-bar'});
    if (side) cell.append(h('i', {style: {left: `${(side.startNs / scale) * 100}%`, width: `${(side.durationNs / scale) * 100}%`, background: color}}));
    return cell;
  };
  const rows = res.rows.map((r) => {
    const only = !r.a ? 'only-b' : !r.b ? 'only-a' : '';
    const dd = r.a && r.b ? r.b.durationNs - r.a.durationNs : null;
    const ds = r.a && r.b ? r.b.selfNs - r.a.selfNs : null;
    const changed = dd !== null && significant(dd, ds, r.a.durationNs);
    const color = serviceColor(r.service);
    return h('tr', {class: only || (changed ? 'changed' : '')},
      h('td', {class: 'name', style: {paddingLeft: `${10 + Math.min(r.depth, 30) * 14}px`}},
        h('i', {class: 'chip', style: {background: color}}), h('b', null, r.service), ' ', r.operation,
        only ? h('span', {class: `pill ${only}`}, only === 'only-a' ? 'only in A' : 'only in B') : null),
      h('td', {class: 'bars'}, bar(r.a, '#6b7a99')),
      h('td', {class: 'bars'}, bar(r.b, color)),
      h('td', {class: 'num'}, r.a ? h('a', {href: traceHref(a.traceId, {span: r.a.spanId})}, fmtDuration(r.a.durationNs)) : '–'),
      h('td', {class: 'num'}, r.b ? h('a', {href: traceHref(b.traceId, {span: r.b.spanId})}, fmtDuration(r.b.durationNs)) : '–'),
      h('td', {class: 'num'}, dd === null ? '' : delta(dd)),
      h('td', {class: 'num'}, ds === null ? '' : delta(ds)));
  });
  out.replaceChildren(
    h('div', {class: 'compare-cards'}, card('A', a), card('B', b)),
    verdict,
    h('div', {class: 'section-title'}, h('h2', null, 'Both traces, merged by span path'),
      h('span', {class: 'note'}, 'red: only in A · green: only in B · orange edge: changed by more than 10%')),
    res.rows.length
      ? h('div', {class: 'cmp-wrap'}, h('table', {class: 'table cmp-table'},
        h('thead', null, h('tr', null, h('th', null, 'Span'), h('th', null, 'A timeline'), h('th', null, 'B timeline'),
          h('th', {class: 'num'}, 'A'), h('th', {class: 'num'}, 'B'), h('th', {class: 'num'}, 'Δ duration'), h('th', {class: 'num'}, 'Δ self'))),
        h('tbody', null, rows)))
      : h('div', {class: 'muted'}, 'The traces are too large to lay out side by side; the changes above are complete.'),
    res.rowsTruncated && res.rows.length ? h('div', {class: 'note'}, `Showing the first ${res.rows.length} rows.`) : '',
    h('div', {class: 'section-title'}, h('h2', null, 'Largest changes'), h('span', {class: 'note'}, 'matched spans, by change in self time')),
    h('div', {class: 'panel'}, changes));
}
