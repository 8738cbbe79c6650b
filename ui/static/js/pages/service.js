// Service dashboard: request rate, error rate and p50/p95/p99 latency over time, a latency
// histogram, the service's operations, example traces for any point or bucket, and what the
// slow (or failed) requests have in common.

import {getJSON} from '../api.js';
import {setQuery} from '../router.js';
import {histogram} from '../components/histogram.js';
import {lineChart} from '../components/linechart.js';
import {emptyState, errorBox, loading} from '../components/status.js';
import {rangeFromParams, rangeLabel, rangeToApi, rangeToUrl, timeRangePicker} from '../components/timerange.js';
import {fmtClock, fmtDuration, fmtRate, h, pct, serviceColor, serviceHref, traceLink} from '../util.js';

const OPS_COLUMNS = [
  ['name', 'Operation', (o) => o.name], ['spanKind', 'Kind', (o) => o.spanKind], ['count', 'Requests', (o) => o.count],
  ['ratePerSecond', 'Rate', (o) => o.ratePerSecond], ['errorRate', 'Errors', (o) => o.errorRate],
  ['p50Ns', 'p50', (o) => o.p50Ns], ['p95Ns', 'p95', (o) => o.p95Ns], ['p99Ns', 'p99', (o) => o.p99Ns],
  ['totalNs', 'Total time', (o) => o.totalNs],
];

export function render(root, {match, params}) {
  const service = match[0];
  const state = {range: rangeFromParams(params), operation: params.operation || ''};
  const disposers = [];
  let seq = 0;

  const opSel = h('select', {class: 'input', name: 'operation', 'aria-label': 'Operation'},
    h('option', {value: ''}, 'All requests (entry spans)'));
  opSel.addEventListener('change', () => { state.operation = opSel.value; syncUrl(); load(); });
  const picker = timeRangePicker(state.range, (r) => { state.range = r; syncUrl(); load(); }, {compact: true});
  const body = h('div');
  root.append(
    h('div', {class: 'svc-head'},
      h('h1', null, h('i', {class: 'chip', style: {background: serviceColor(service), width: '14px', height: '14px'}}), service),
      opSel, picker, h('span', {class: 'spacer'}),
      h('a', {class: 'btn small', href: `/search?service=${encodeURIComponent(service)}${state.operation ? `&operation=${encodeURIComponent(state.operation)}` : ''}`}, 'Search its traces'),
      h('a', {class: 'btn small', href: '/map'}, 'Service map')),
    body);

  function syncUrl() { setQuery({operation: state.operation, ...rangeToUrl(state.range)}); }

  getJSON(`/services/${encodeURIComponent(service)}/operations`).then(({operations}) => {
    for (const name of [...new Set(operations.map((o) => o.name))]) opSel.append(h('option', {value: name}, name));
    if (state.operation && ![...opSel.options].some((o) => o.value === state.operation)) opSel.append(h('option', {value: state.operation}, state.operation));
    opSel.value = state.operation;
  }).catch(() => {});

  function filter() {
    return state.operation ? {service, operation: state.operation} : {service, entryOnly: true};
  }

  async function load() {
    const my = ++seq;
    disposers.splice(0).forEach((d) => d());
    body.replaceChildren();
    const done = loading(body, 'Computing latency…');
    try {
      const [lat, ops] = await Promise.all([
        getJSON('/latency', {...filter(), ...rangeToApi(state.range)}),
        getJSON(`/services/${encodeURIComponent(service)}/operations/stats`, rangeToApi(state.range)),
      ]);
      done();
      if (my === seq) show(lat, ops);
    } catch (e) {
      done();
      if (my === seq) body.append(errorBox(e, load));
    }
  }

  function show(lat, ops) {
    const sum = lat.summary;
    if (!sum.count) {
      body.append(emptyState(`No spans of ${service}${state.operation ? `: ${state.operation}` : ''} in the ${rangeLabel(state.range)}`,
        'Widen the time range, or pick another operation.'));
      return;
    }
    const tile = (label, value, cls = '') => h('div', {class: `tile ${cls}`}, h('div', {class: 'stat-label'}, label), h('div', {class: 'stat-value'}, value));
    const sample = lat.truncated
      ? h('div', {class: 'message warn small'}, `Figures from the ${lat.tracesScanned} most recent matching traces (since ${fmtClock(lat.coveredStartNs)}); narrow the range for complete figures.`)
      : null;
    const times = lat.series.map((p) => p.timeNs / 1e6);
    const stepMs = lat.stepNs / 1e6;
    const examples = h('div', {class: 'panel examples'}, h('div', {class: 'chart-title'}, 'Example traces'),
      h('div', {class: 'muted small'}, 'Click a point of a chart or a histogram bar to list example traces.'));
    const showExamples = (title, ids, searchParams) => {
      examples.replaceChildren(h('div', {class: 'chart-title'}, title),
        ids.length ? h('ul', null, ids.map((id) => h('li', null, traceLink(id)))) : h('div', {class: 'muted small'}, 'No traces here.'),
        searchParams ? h('a', {class: 'small', href: `/search?${new URLSearchParams(searchParams)}`}, 'Search all traces of this window →') : null);
    };
    const onPoint = (i) => {
      const p = lat.series[i];
      const startMs = p.timeNs / 1e6;
      showExamples(`Slowest traces ${fmtClock(p.timeNs)}–${fmtClock(p.timeNs + lat.stepNs)} (${p.count} spans, p95 ${fmtDuration(p.p95Ns)})`,
        p.exampleTraceIds, {service, ...(state.operation ? {operation: state.operation} : {}), start: Math.floor(startMs), end: Math.ceil(startMs + stepMs)});
    };
    const charts = [
      lineChart({title: 'Request rate', times, stepMs, onClick: onPoint, format: fmtRate,
        series: [{label: 'requests/s', color: '#4e79a7', values: lat.series.map((p) => p.ratePerSecond)}]}),
      lineChart({title: 'Error rate', times, stepMs, onClick: onPoint, format: (v) => pct(v, v < 0.1 ? 1 : 0),
        series: [{label: 'errors', color: '#d92d20', values: lat.series.map((p) => (p.count ? p.errorRate : null))}]}),
      lineChart({title: 'Latency', times, stepMs, onClick: onPoint, format: fmtDuration,
        series: [['p50', '#59a14f', 'p50Ns'], ['p95', '#f28e2b', 'p95Ns'], ['p99', '#b07aa1', 'p99Ns']].map(([label, color, k]) => (
          {label, color, values: lat.series.map((p) => p[k])}))}),
    ];
    const hist = histogram({title: 'Latency distribution', buckets: lat.histogram,
      marks: [{ns: sum.p50Ns, label: 'p50'}, {ns: sum.p99Ns, label: 'p99'}],
      onClick: (i) => {
        const b = lat.histogram[i];
        showExamples(`Traces with spans of ${fmtDuration(b.lowerNs)}–${fmtDuration(b.upperNs)} (${b.count} spans)`, b.exampleTraceIds,
          {service, ...(state.operation ? {operation: state.operation} : {}), ...rangeToUrl(state.range),
            minDuration: `${Math.floor(b.lowerNs / 1e3)}us`, maxDuration: `${Math.ceil(b.upperNs / 1e3)}us`});
      }});
    [...charts, hist].forEach((c) => disposers.push(() => c.dispose()));
    if (sample) body.append(sample);
    body.append(
      h('div', {class: 'tiles'},
        tile('Requests', `${sum.count.toLocaleString()}`), tile('Rate', fmtRate(sum.ratePerSecond)),
        tile('Error rate', pct(sum.errorRate), sum.errorCount ? 'err' : ''), tile('p50', fmtDuration(sum.p50Ns)),
        tile('p95', fmtDuration(sum.p95Ns)), tile('p99', fmtDuration(sum.p99Ns))),
      h('div', {class: 'charts'}, charts.map((c) => h('div', {class: 'panel'}, c))),
      h('div', {class: 'charts-2'}, h('div', {class: 'panel'}, hist), examples),
      operationsTable(ops),
      differencesPanel());
  }

  function operationsTable(ops) {
    let key = 'totalNs';
    let desc = true;
    const wrap = h('div');
    const draw = () => {
      const col = OPS_COLUMNS.find(([k]) => k === key);
      const rows = [...ops.operations].sort((a, b) => {
        const x = col[2](a);
        const y = col[2](b);
        const c = typeof x === 'string' ? x.localeCompare(y) : (x ?? 0) - (y ?? 0);
        return desc ? -c : c;
      });
      wrap.replaceChildren(h('table', {class: 'table ops-table'},
        h('thead', null, h('tr', null, OPS_COLUMNS.map(([k, label]) => h('th', {
          class: `sortable${k === 'name' || k === 'spanKind' ? '' : ' num'}${k === key ? (desc ? ' desc' : ' asc') : ''}`,
          onclick: () => { if (key === k) desc = !desc; else { key = k; desc = k !== 'name' && k !== 'spanKind'; } draw(); }}, label)))),
        h('tbody', null, rows.map((o) => h('tr', {class: o.name === state.operation ? 'selected' : ''},
          h('td', null, h('a', {href: serviceHref(service, {operation: o.name, ...rangeToUrl(state.range)})}, o.name)),
          h('td', {class: 'muted'}, o.spanKind),
          h('td', {class: 'num'}, o.count.toLocaleString()),
          h('td', {class: 'num'}, fmtRate(o.ratePerSecond)),
          h('td', {class: `num${o.errorCount ? ' err' : ''}`}, pct(o.errorRate)),
          h('td', {class: 'num'}, fmtDuration(o.p50Ns)),
          h('td', {class: 'num'}, fmtDuration(o.p95Ns)),
          h('td', {class: 'num'}, fmtDuration(o.p99Ns)),
          h('td', {class: 'num'}, fmtDuration(o.totalNs)))))));
    };
    draw();
    return h('div', null, h('div', {class: 'section-title'}, h('h2', null, 'Operations'),
      h('span', {class: 'note'}, 'every span of the service, by name and kind')), wrap);
  }

  function differencesPanel() {
    const out = h('div', {class: 'panel'}, h('div', {class: 'muted small'},
      'Compare the slowest 5% of requests, or the failed ones, with the rest: which attribute values do they share?'));
    const run = async (errors) => {
      out.replaceChildren();
      const done = loading(out, 'Comparing attribute values…');
      try {
        const res = await getJSON('/attributes/differences', {...filter(), ...rangeToApi(state.range), errors: errors || ''});
        done();
        const what = errors ? 'failed requests' : `requests slower than ${fmtDuration(res.thresholdNs)}`;
        if (!res.selectedCount || !res.differences.length) {
          out.append(h('div', {class: 'muted'}, res.selectedCount ? `Nothing stands out among the ${res.selectedCount} ${what}.` : `No ${what} in this range.`));
          return;
        }
        out.append(h('div', {class: 'small', style: {marginBottom: '6px'}}, `${res.selectedCount} ${what} against ${res.restCount} others:`),
          h('table', {class: 'table diff-table'},
            h('thead', null, h('tr', null, ['Attribute', 'Value', 'Selected', 'Others', 'Difference'].map((t, i) => h('th', {class: i > 1 ? 'num' : ''}, t)))),
            h('tbody', null, res.differences.map((d) => h('tr', null,
              h('td', null, d.scope === 'resource' ? h('span', {class: 'muted'}, 'resource.') : null, d.key),
              h('td', {class: 'mono'}, h('a', {href: `/search?${new URLSearchParams({service, tags: `${d.scope === 'resource' ? 'resource.' : ''}${d.key}=${/\s/.test(d.value) ? JSON.stringify(d.value) : d.value}`, ...rangeToUrl(state.range)})}`,
                title: 'Search traces with this value'}, d.value)),
              h('td', {class: 'num'}, `${pct(d.selectedFrequency, 0)} (${d.selectedCount})`),
              h('td', {class: 'num'}, `${pct(d.restFrequency, 0)} (${d.restCount})`),
              h('td', {class: 'num'}, h('span', {class: 'diff-bar'}, h('i', {style: {width: `${Math.max(d.difference, 0) * 100}%`}})), ` ${pct(d.difference, 0)}`))))));
      } catch (e) {
        done();
        out.append(errorBox(e));
      }
    };
    return h('div', null,
      h('div', {class: 'section-title'}, h('h2', null, 'What is different about the slow ones?'),
        h('button', {class: 'btn small', onclick: () => run(false)}, 'Slowest 5% vs the rest'),
        h('button', {class: 'btn small', onclick: () => run(true)}, 'Errors vs the rest')),
      out);
  }

  load();
  return () => { seq++; disposers.forEach((d) => d()); };
}
