// Client-side routing: page routes map to page modules; links navigate without reloading.

const routes = [
  [/^\/(?:search)?$/, () => import('./pages/search.js'), 'search'],
  [/^\/trace\/([^/]+)$/, () => import('./pages/trace.js'), 'trace'],
  [/^\/compare$/, () => import('./pages/compare.js'), 'compare'],
  [/^\/map$/, () => import('./pages/map.js'), 'map'],
  [/^\/service\/(.+)$/, () => import('./pages/service.js'), 'service'],
];

let cleanup = null;
let renderSeq = 0;

export function navigate(url, {replace = false} = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

/** Change the query string without re-rendering (pages that keep their state in the URL). */
export function setQuery(params, {replace = true} = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v === true ? '1' : v);
  }
  const s = q.toString();
  const url = location.pathname + (s ? `?${s}` : '');
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}

export async function render() {
  const seq = ++renderSeq;
  const root = document.getElementById('app');
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const path = decodeURI(location.pathname);
  const found = routes.map(([re, load, name]) => [path.match(re), load, name]).find(([m]) => m);
  document.querySelectorAll('.topnav a').forEach((a) => a.classList.toggle('active', found && a.dataset.nav === found[2]));
  root.replaceChildren();
  root.className = 'page';
  if (!found) {
    root.innerHTML = '<div class="empty"><div class="empty-title">Page not found</div>' +
      '<div class="empty-hint"><a href="/search">Search traces</a></div></div>';
    return;
  }
  const [m, load, name] = found;
  root.classList.add(`page-${name}`);
  let mod;
  try {
    mod = await load();
  } catch (e) {
    root.innerHTML = '<div class="message error">This page failed to load; reload to try again.</div>';
    throw e;
  }
  if (seq !== renderSeq) return;
  const params = Object.fromEntries(new URLSearchParams(location.search));
  const query = new URLSearchParams(location.search);
  cleanup = mod.render(root, {match: m.slice(1).map(decodeURIComponent), params, query}) || null;
}

export function start() {
  window.addEventListener('popstate', render);
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a');
    if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (a.pathname.startsWith('/api/') || a.pathname.startsWith('/static/')) return;
    e.preventDefault();
    if (a.pathname + a.search !== location.pathname + location.search) navigate(a.pathname + a.search);
  });
  render();
}
