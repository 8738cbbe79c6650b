// Trace page: header, minimap, and the timeline / breakdown / flame graph views of one trace,
// with span detail, in-trace search, critical path and keyboard navigation.

import {API, getJSON, latestOnly, isAbort} from '../api.js';
import {setQuery} from '../router.js';
import {emptyState, errorBox, loading} from '../components/status.js';
import {debounce, fmtDuration, fmtTime, h, opLink, serviceColor, serviceLink} from '../util.js';
import {breakdownView} from '../trace/breakdown.js';
import {DetailPanel} from '../trace/detail.js';
import {FlameGraph} from '../trace/flamegraph.js';
import {Minimap} from '../trace/minimap.js';
import {buildModel} from '../trace/model.js';
import {Waterfall} from '../trace/waterfall.js';

const HELP = [
  ['↓ / j', 'next span'], ['↑ / k', 'previous span'], ['→ / l', 'expand (or go to first child)'],
  ['← / h', 'collapse (or go to parent)'], ['Enter', 'open span detail'], ['[ / ]', 'expand all / collapse all'],
  ['1–9', 'expand to that many levels'], ['c', 'toggle critical path'], ['/', 'search in trace'],
  ['n / N', 'next / previous match'], ['Esc', 'close detail, clear search'],
];

export function render(root, {match, params}) {
  const traceId = match[0].toLowerCase();
  const perf = {navStart: 0, fetched: 0, built: 0, firstRows: 0, idle: 0};
  window.__spanlakeTrace = perf;
  const state = {view: params.view || 'timeline', cp: params.cp === '1', q: params.q || '', span: params.span || ''};
  const disposers = [];
  let disposed = false;
  root.classList.add('fill');
  const done = loading(root, 'Loading trace…', 80);
  const t0 = performance.now();

  getJSON(`/traces/${encodeURIComponent(traceId)}`).then((doc) => {
    done();
    if (disposed) return;
    perf.fetched = performance.now() - t0;
    show(doc);
  }).catch((e) => {
    done();
    if (disposed) return;
    if (e.status === 404) {
      root.append(emptyState(`Trace ${traceId} not found`,
        'It may not have arrived yet, or it is older than the retention period. Check the id, or search for it.'));
    } else {
      root.append(errorBox(e, () => location.reload()));
    }
  });

  function show(doc) {
    const tb = performance.now();
    const model = buildModel(doc);
    perf.built = performance.now() - tb;
    const colors = model.services.map((s) => serviceColor(s));
    const viewHost = h('div', {class: 'trace-view'});
    const detail = new DetailPanel(traceId, {onClose: () => { waterfall.select(-1, {notify: false}); closeDetail(); }});
    const waterfall = new Waterfall(model, {onSelect: (row) => openDetail(row)});
    const minimap = new Minimap(model, colors, (v0, v1) => { waterfall.setRange(v0, v1); flame?.setRange(v0, v1); });
    let flame = null;
    let breakdown = null;
    disposers.push(() => waterfall.dispose(), () => minimap.dispose(), () => flame?.dispose());

    // --- header ---------------------------------------------------------------------------------
    const title = doc.rootService
      ? [serviceLink(doc.rootService), h('span', {class: 'sep'}, ':'), opLink(doc.rootService, doc.rootOperation)]
      : ['(root span missing)'];
    const warnings = doc.warnings.length
      ? h('details', {class: 'warnings'}, h('summary', null, `${doc.warnings.length} warning${doc.warnings.length === 1 ? '' : 's'}`),
        doc.warnings.map((w) => h('div', null, w)))
      : null;
    const services = h('span', {class: 'svc-list'}, doc.services.slice(0, 10).map((s) => serviceLink(s)),
      doc.services.length > 10 ? h('span', {class: 'muted'}, ` +${doc.services.length - 10}`) : null);
    const stat = (label, value, cls = '') => h('div', {class: `stat ${cls}`}, h('div', {class: 'stat-label'}, label), h('div', {class: 'stat-value'}, value));
    const header = h('header', {class: 'trace-header'},
      h('div', {class: 'trace-title'}, h('h1', null, title),
        h('span', {class: 'mono muted trace-id', title: 'Trace ID'}, doc.traceId),
        h('button', {class: 'btn small', title: 'Copy the trace ID', onclick: () => navigator.clipboard?.writeText(doc.traceId)}, 'Copy ID'),
        h('a', {class: 'btn small', href: `/compare?a=${doc.traceId}`}, 'Compare…')),
      h('div', {class: 'stats'},
        stat('Start', fmtTime(doc.startNs)),
        stat('Duration', fmtDuration(doc.durationNs)),
        stat('Spans', doc.spanCount.toLocaleString()),
        stat('Depth', doc.depth),
        stat('Errors', doc.errorCount, doc.errorCount ? 'err' : ''),
        stat(`Services (${doc.services.length})`, services, 'wide'),
        warnings));

    // --- toolbar --------------------------------------------------------------------------------
    const tabs = h('span', {class: 'seg', role: 'tablist'}, [['timeline', 'Timeline'], ['breakdown', 'Breakdown'], ['flame', 'Flame graph']]
      .map(([v, label]) => h('button', {role: 'tab', dataset: {view: v}, onclick: () => setView(v)}, label)));
    const searchIn = h('input', {class: 'input', type: 'search', placeholder: 'Search spans (/)', value: state.q,
      'aria-label': 'Search in trace', spellcheck: false});
    const searchInfo = h('span', {class: 'search-info muted small'});
    const cpToggle = h('button', {class: 'btn toggle', title: 'Highlight the critical path (c)', 'aria-pressed': 'false',
      onclick: () => setCp(!state.cp)}, 'Critical path');
    const levelSel = h('select', {class: 'input', 'aria-label': 'Expand to level', title: 'Expand to level'},
      h('option', {value: ''}, 'Levels…'),
      Array.from({length: Math.min(model.maxDepth + 1, 12)}, (_, k) => h('option', {value: k + 1}, `${k + 1} level${k ? 's' : ''}`)),
      h('option', {value: 'all'}, 'All levels'));
    levelSel.addEventListener('change', () => {
      if (levelSel.value === 'all') waterfall.expandAll(); else if (levelSel.value) waterfall.expandToLevel(Number(levelSel.value));
      levelSel.value = '';
    });
    const exp = `${API}/traces/${doc.traceId}/export`;
    const toolbar = h('div', {class: 'trace-toolbar'},
      tabs,
      h('span', {class: 'search-box'}, searchIn,
        h('button', {class: 'btn small icon', title: 'Previous match (N)', onclick: () => nextMatch(-1)}, '▲'),
        h('button', {class: 'btn small icon', title: 'Next match (n)', onclick: () => nextMatch(1)}, '▼'), searchInfo),
      cpToggle,
      h('span', {class: 'tree-controls'},
        h('button', {class: 'btn small', title: 'Expand all ([)', onclick: () => waterfall.expandAll()}, 'Expand all'),
        h('button', {class: 'btn small', title: 'Collapse all (])', onclick: () => waterfall.collapseAll()}, 'Collapse all'),
        levelSel),
      h('span', {class: 'spacer'}),
      h('span', {class: 'downloads', title: 'Download the trace'},
        h('a', {href: `${exp}?format=otlp`, download: `trace-${doc.traceId}.otlp.json`, class: 'btn small'}, '⤓ OTLP JSON'),
        h('a', {href: `${exp}?format=jaeger`, download: `trace-${doc.traceId}.jaeger.json`, class: 'btn small'}, '⤓ Jaeger JSON')),
      h('button', {class: 'btn small icon', title: 'Keyboard shortcuts (?)', onclick: () => toggleHelp()}, '?'));
    const legend = h('div', {class: 'wf-legend small muted'},
      h('span', null, h('i', {class: 'lg-self'}), 'self time'),
      h('span', null, h('i', {class: 'lg-wait'}), 'waiting on children'),
      h('span', null, h('i', {class: 'lg-ev'}), 'event'),
      h('span', null, h('i', {class: 'lg-err'}), 'error'),
      h('span', {class: 'cp-legend'}, h('i', {class: 'lg-cp'}), 'critical path'));
    const help = h('div', {class: 'help-pop', hidden: true}, h('b', null, 'Keyboard'),
      h('table', null, HELP.map(([k, what]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, what)))));
    const content = h('div', {class: 'trace-content'}, minimap.el, viewHost);
    root.append(header, toolbar, legend, h('div', {class: 'trace-main'}, content, detail.el), help);

    // --- views ----------------------------------------------------------------------------------
    function setView(v) {
      state.view = v;
      tabs.querySelectorAll('button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.view === v)));
      tabs.querySelectorAll('button').forEach((b) => b.classList.toggle('on', b.dataset.view === v));
      minimap.el.hidden = v === 'breakdown';
      legend.hidden = v !== 'timeline';
      if (v === 'timeline') viewHost.replaceChildren(waterfall.el);
      else if (v === 'breakdown') viewHost.replaceChildren(breakdown || (breakdown = breakdownView(doc)));
      else {
        if (!flame) {
          flame = new FlameGraph(model, colors, {onSelect: (i) => waterfall.select(i, {scroll: false}),
            onZoom: (a, b) => minimap.set(a, b)});
          flame.setRange(minimap.v0, minimap.v1);
        }
        viewHost.replaceChildren(flame.el);
        requestAnimationFrame(() => flame.draw());
      }
      syncUrl();
    }

    function setCp(on) {
      state.cp = on;
      cpToggle.classList.toggle('on', on);
      cpToggle.setAttribute('aria-pressed', String(on));
      legend.classList.toggle('cp', on);
      waterfall.setCriticalPath(on);
      syncUrl();
    }

    function syncUrl() {
      setQuery({view: state.view !== 'timeline' ? state.view : '', cp: state.cp ? '1' : '', q: state.q,
        span: waterfall.selected >= 0 ? model.spanId[waterfall.selected] : ''});
    }

    // --- detail ---------------------------------------------------------------------------------
    function openDetail(row) {
      if (row < 0) { closeDetail(); return; }
      const id = model.spanId[row];
      const occurrence = model.rowsOf(id).indexOf(row);
      root.classList.add('with-detail');
      detail.show(id, occurrence, doc.durationNs);
      flame?.select(row);
      syncUrl();
    }

    function closeDetail() {
      root.classList.remove('with-detail');
      detail.hide();
      flame?.select(-1);
      syncUrl();
    }

    // --- search in trace ------------------------------------------------------------------------
    const fetchMatches = latestOnly();
    let matchRows = [];
    let matchAt = -1;
    const runSearch = async () => {
      state.q = searchIn.value.trim();
      syncUrl();
      if (!state.q) {
        matchRows = [];
        waterfall.setMatches(null);
        searchInfo.textContent = '';
        return;
      }
      searchInfo.textContent = 'searching…';
      try {
        const res = await fetchMatches(`/traces/${doc.traceId}/search`, {q: state.q});
        const rows = new Set();
        for (const id of res.spanIds) for (const r of model.rowsOf(id)) rows.add(r);
        matchRows = [...rows].sort((a, b) => a - b);
        matchAt = -1;
        waterfall.setMatches(rows);
        searchInfo.textContent = matchRows.length ? `${matchRows.length} match${matchRows.length === 1 ? '' : 'es'}` : 'no match';
      } catch (e) {
        if (!isAbort(e)) searchInfo.textContent = `search failed: ${e.message}`;
      }
    };
    searchIn.addEventListener('input', debounce(runSearch, 250));
    searchIn.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); nextMatch(e.shiftKey ? -1 : 1); }
      if (e.key === 'Escape') { searchIn.value = ''; runSearch(); searchIn.blur(); waterfall.body.focus(); }
    });
    function nextMatch(delta) {
      if (!matchRows.length) return;
      matchAt = (matchAt + delta + matchRows.length) % matchRows.length;
      searchInfo.textContent = `${matchAt + 1} of ${matchRows.length}`;
      if (state.view !== 'timeline') setView('timeline');
      waterfall.select(matchRows[matchAt]);
    }

    // --- keyboard -------------------------------------------------------------------------------
    function toggleHelp() { help.hidden = !help.hidden; }
    const onKey = (e) => {
      if (e.target.closest('input, select, textarea') || e.metaKey || e.ctrlKey || e.altKey) return;
      const sel = waterfall.selected;
      const k = e.key;
      if (k === 'ArrowDown' || k === 'j') waterfall.step(1);
      else if (k === 'ArrowUp' || k === 'k') waterfall.step(-1);
      else if ((k === 'ArrowRight' || k === 'l') && sel >= 0) {
        if (model.childCount[sel] && waterfall.collapsed[sel]) waterfall.toggle(sel, false);
        else if (model.childCount[sel]) waterfall.select(sel + 1);
      } else if ((k === 'ArrowLeft' || k === 'h') && sel >= 0) {
        if (model.childCount[sel] && !waterfall.collapsed[sel]) waterfall.toggle(sel, true);
        else if (model.parent[sel] >= 0) waterfall.select(model.parent[sel]);
      } else if (k === 'Enter' && sel >= 0) openDetail(sel);
      else if (k === '[') waterfall.expandAll();
      else if (k === ']') waterfall.collapseAll();
      else if (/^[1-9]$/.test(k)) waterfall.expandToLevel(Number(k));
      else if (k === 'c') setCp(!state.cp);
      else if (k === '/') { searchIn.focus(); searchIn.select(); }
      else if (k === 'n') nextMatch(1);
      else if (k === 'N') nextMatch(-1);
      else if (k === '?') toggleHelp();
      else if (k === 'Escape') { if (!help.hidden) help.hidden = true; else { waterfall.select(-1, {notify: false}); closeDetail(); } }
      else return;
      e.preventDefault();
    };
    document.addEventListener('keydown', onKey);
    disposers.push(() => document.removeEventListener('keydown', onKey));

    // --- start ----------------------------------------------------------------------------------
    waterfall.onRendered = () => {
      perf.firstRows = performance.now();
      performance.mark('spanlake:rows');
      const idle = window.requestIdleCallback || ((f) => setTimeout(f, 1));
      idle(() => { perf.idle = performance.now(); performance.mark('spanlake:idle'); });
    };
    setView(state.view);
    if (state.cp) setCp(true);
    if (state.span) {
      const rows = model.rowsOf(state.span);
      if (rows.length) waterfall.select(rows[0]);
    }
    if (state.q) runSearch();
    waterfall.body.focus({preventScroll: true});
    perf.model = model;
    perf.waterfall = waterfall;
    /** Collapse everything, then time expanding all until the rows are painted again (ms). */
    perf.timeExpandAll = () => new Promise((resolve) => {
      waterfall.collapseAll();
      waterfall.renderRows();
      requestAnimationFrame(() => {
        const t = performance.now();
        waterfall.expandAll();
        waterfall.renderRows();
        requestAnimationFrame(() => resolve(performance.now() - t));
      });
    });
  }

  return () => {
    disposed = true;
    disposers.forEach((d) => d());
  };
}
