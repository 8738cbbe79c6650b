// Search page: the form (kept in the URL), a scatter plot of results and a sortable list.

import {getJSON, isAbort} from '../api.js';
import {navigate, setQuery} from '../router.js';
import {errorBox, emptyState, loading} from '../components/status.js';
import {scatterPlot} from '../components/scatter.js';
import {rangeFromParams, rangeToApi, rangeToUrl, timeRangePicker} from '../components/timerange.js';
import {fmtAgo, fmtDuration, fmtTime, h, parseDuration, serviceColor, serviceHref, traceHref} from '../util.js';

const SORTS = {
  newest: ['Most recent', (a, b) => b.startNs - a.startNs],
  slowest: ['Longest first', (a, b) => b.durationNs - a.durationNs],
  fastest: ['Shortest first', (a, b) => a.durationNs - b.durationNs],
  spans: ['Most spans', (a, b) => b.spanCount - a.spanCount],
  errors: ['Most errors', (a, b) => b.errorCount - a.errorCount || b.startNs - a.startNs],
};

/** ``a=1 b="x y"`` -> ['a=1', 'b=x y'], or throws with the bad token. */
export function parseTags(text) {
  const out = [];
  const re = /\s*([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)\s*/y;
  let i = 0;
  const t = text.trim();
  while (i < t.length) {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) throw new Error(`cannot read "${t.slice(i).split(/\s/)[0]}": write attributes as key=value`);
    out.push(`${m[1]}=${m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]}`);
    i = re.lastIndex;
  }
  return out;
}

export function render(root, {params}) {
  const state = {
    service: params.service || '',
    operation: params.operation || '',
    tags: params.tags || '',
    range: rangeFromParams(params),
    minDuration: params.minDuration || '',
    maxDuration: params.maxDuration || '',
    limit: Number(params.limit) || 20,
    sort: SORTS[params.sort] ? params.sort : 'newest',
  };
  const selected = new Set();
  let results = null;
  let aborted = false;
  let controller = null;

  const serviceSel = h('select', {class: 'input', name: 'service', 'aria-label': 'Service'},
    h('option', {value: ''}, 'All services'));
  const opSel = h('select', {class: 'input', name: 'operation', 'aria-label': 'Operation'},
    h('option', {value: ''}, 'All operations'));
  const tagsIn = h('input', {class: 'input', name: 'tags', value: state.tags, spellcheck: false,
    placeholder: 'http.response.status_code=500 error=true'});
  const minIn = h('input', {class: 'input', name: 'minDuration', value: state.minDuration, placeholder: 'e.g. 100ms'});
  const maxIn = h('input', {class: 'input', name: 'maxDuration', value: state.maxDuration, placeholder: 'e.g. 2s'});
  const limitIn = h('input', {class: 'input', name: 'limit', type: 'number', min: 1, max: 1500, value: state.limit});
  const picker = timeRangePicker(state.range, (r) => { state.range = r; });
  const formError = h('div', {class: 'form-error', role: 'alert'});
  const form = h('form', {class: 'search-form panel', autocomplete: 'off'},
    h('h2', null, 'Find traces'),
    h('label', null, 'Service', serviceSel),
    h('label', null, 'Operation', opSel),
    h('label', null, 'Attributes', tagsIn, h('span', {class: 'hint'}, 'key=value pairs, space separated')),
    h('label', null, 'Time range', picker),
    h('div', {class: 'row2'}, h('label', null, 'Min duration', minIn), h('label', null, 'Max duration', maxIn)),
    h('label', null, 'Limit', limitIn),
    formError,
    h('button', {class: 'btn primary', type: 'submit'}, 'Find traces'));

  const results$ = h('section', {class: 'results'});
  root.append(h('div', {class: 'search-layout'}, form, results$));

  async function loadServices() {
    try {
      const {services} = await getJSON('/services');
      for (const name of services) serviceSel.append(h('option', {value: name}, name));
      if (state.service && !services.includes(state.service)) serviceSel.append(h('option', {value: state.service}, state.service));
      serviceSel.value = state.service;
      await loadOperations();
    } catch (e) {
      if (!aborted) formError.replaceChildren(`Services could not be loaded: ${e.message}`);
    }
  }

  async function loadOperations() {
    opSel.replaceChildren(h('option', {value: ''}, 'All operations'));
    if (!serviceSel.value) return;
    const {operations} = await getJSON(`/services/${encodeURIComponent(serviceSel.value)}/operations`);
    for (const name of [...new Set(operations.map((o) => o.name))]) opSel.append(h('option', {value: name}, name));
    if (state.operation) {
      if (![...opSel.options].some((o) => o.value === state.operation)) opSel.append(h('option', {value: state.operation}, state.operation));
      opSel.value = state.operation;
    }
  }

  serviceSel.addEventListener('change', () => { state.operation = ''; loadOperations().catch(() => {}); });

  function readForm() {
    formError.replaceChildren();
    const tags = parseTags(tagsIn.value);
    for (const [name, input] of [['Min duration', minIn], ['Max duration', maxIn]]) {
      if (Number.isNaN(parseDuration(input.value))) throw new Error(`${name}: write a duration such as 250ms or 1.5s`);
    }
    Object.assign(state, {
      service: serviceSel.value, operation: opSel.value, tags: tagsIn.value.trim(), range: picker.current(),
      minDuration: minIn.value.trim(), maxDuration: maxIn.value.trim(),
      limit: Math.min(Math.max(Number(limitIn.value) || 20, 1), 1500),
    });
    return tags;
  }

  function urlParams() {
    return {service: state.service, operation: state.operation, tags: state.tags, ...rangeToUrl(state.range),
      minDuration: state.minDuration, maxDuration: state.maxDuration, limit: state.limit !== 20 ? state.limit : '',
      sort: state.sort !== 'newest' ? state.sort : ''};
  }

  async function search(push) {
    let tags;
    try {
      tags = readForm();
    } catch (e) {
      formError.replaceChildren(e.message);
      return;
    }
    setQuery(urlParams(), {replace: !push});
    if (controller) controller.abort();
    controller = new AbortController();
    results$.replaceChildren();
    selected.clear();
    const done = loading(results$, 'Searching…');
    const dmin = parseDuration(state.minDuration);
    const dmax = parseDuration(state.maxDuration);
    try {
      results = await getJSON('/traces', {
        service: state.service, operation: state.operation, attr: tags, ...rangeToApi(state.range),
        minDuration: dmin === null ? '' : Math.round(dmin), maxDuration: dmax === null ? '' : Math.round(dmax),
        limit: state.limit,
      }, {signal: controller.signal});
      done();
      showResults();
    } catch (e) {
      done();
      if (!isAbort(e)) results$.replaceChildren(errorBox(e, () => search(false)));
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); search(true); });

  function showResults() {
    const traces = results.traces;
    results$.replaceChildren();
    if (!traces.length) {
      results$.append(emptyState('No traces in this range',
        'Widen the time range, or remove filters (service, operation, attributes, durations).'));
      return;
    }
    const sortSel = h('select', {class: 'input', 'aria-label': 'Sort', name: 'sort'},
      Object.entries(SORTS).map(([k, [label]]) => h('option', {value: k, selected: k === state.sort}, label)));
    const compareBtn = h('button', {class: 'btn', disabled: true, onclick: () => {
      const [a, b] = [...selected];
      navigate(`/compare?a=${a}&b=${b}`);
    }}, 'Compare selected');
    const list = h('div', {class: 'result-list'});
    const maxDur = Math.max(...traces.map((t) => t.durationNs), 1);
    const drawList = () => {
      const sorted = [...traces].sort(SORTS[state.sort][1]);
      list.replaceChildren(...sorted.map((t) => resultItem(t, maxDur)));
    };
    const resultItem = (t, max) => {
      const check = h('input', {type: 'checkbox', 'aria-label': 'Select for comparison', checked: selected.has(t.traceId),
        onchange: () => {
          if (check.checked) selected.add(t.traceId); else selected.delete(t.traceId);
          if (selected.size > 2) {
            const first = [...selected][0];
            selected.delete(first);
            list.querySelector(`[data-trace-id="${first}"] input`).checked = false;
          }
          compareBtn.disabled = selected.size !== 2;
        }});
      const title = t.rootService ? `${t.rootService}: ${t.rootOperation}` : '(root span missing)';
      return h('div', {class: 'result', dataset: {traceId: t.traceId}},
        h('div', {class: 'result-head'},
          check,
          h('a', {class: 'result-title', href: traceHref(t.traceId)},
            h('i', {class: 'chip', style: {background: serviceColor(t.rootService || '')}}), title),
          h('span', {class: 'mono muted id'}, t.traceId.slice(0, 12)),
          h('span', {class: 'result-dur'}, fmtDuration(t.durationNs))),
        h('div', {class: 'result-bar'}, h('i', {style: {width: `${Math.max(0.5, (t.durationNs / max) * 100)}%`}})),
        h('div', {class: 'result-meta'},
          h('span', null, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
          t.errorCount ? h('span', {class: 'err-badge'}, `${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`) : null,
          h('span', {class: 'badges'}, t.services.map((sv) => h('a', {class: 'badge', href: serviceHref(sv.name),
            title: `${sv.name}: ${sv.spanCount} spans, ${sv.errorCount} errors`},
          h('i', {class: 'chip', style: {background: serviceColor(sv.name)}}), `${sv.name} ${sv.spanCount}`,
          sv.errorCount ? h('b', {class: 'err'}, ` ⚠${sv.errorCount}`) : null))),
          h('span', {class: 'when', title: fmtTime(t.startNs)}, `${fmtTime(t.startNs).slice(0, 19)} · ${fmtAgo(t.startNs)}`)));
    };
    sortSel.addEventListener('change', () => { state.sort = sortSel.value; setQuery(urlParams()); drawList(); });
    const scatter = scatterPlot(traces.map((t) => ({x: t.startNs / 1e6, y: t.durationNs, error: t.errorCount > 0,
      label: `${t.rootService}: ${t.rootOperation}`, id: t.traceId, service: t.rootService})),
    {onClick: (p) => navigate(traceHref(p.id))});
    results$.append(
      h('div', {class: 'panel'}, scatter),
      h('div', {class: 'results-bar'},
        h('strong', null, `${traces.length} trace${traces.length === 1 ? '' : 's'}`),
        traces.length >= results.limit ? h('span', {class: 'muted'}, ` (the limit; raise it or narrow the search for more)`) : null,
        h('span', {class: 'spacer'}), compareBtn, h('label', {class: 'inline'}, 'Sort ', sortSel)),
      list);
    drawList();
  }

  loadServices().finally(() => { if (!aborted) search(false); });
  return () => { aborted = true; if (controller) controller.abort(); };
}
