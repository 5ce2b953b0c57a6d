// fathom search page: plain ES2020, no dependencies, the only script of the page. Everything the
// server returns is untrusted text: the DOM is built with createElement/textContent, never innerHTML.
'use strict';
const $ = (id) => document.getElementById(id);
const KEY_NAME = 'fathom.apiKey';
const POLL_MS = 1000;

// Small helpers

/** createElement with attributes (`class`, `on*` handlers, others as attributes) and children. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c);
  return e;
}
const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many || one + 's'}`;
const splitList = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

function fmtScore(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
  return Math.abs(s) >= 100 ? s.toFixed(1) : s.toPrecision(3);
}

const rtf = typeof Intl.RelativeTimeFormat === 'function' ? new Intl.RelativeTimeFormat('en', { numeric: 'auto' }) : null;
function ago(date) {
  if (!rtf) return '';
  const secs = (date.getTime() - Date.now()) / 1000;
  const steps = [[60, 'second'], [60, 'minute'], [24, 'hour'], [30, 'day'], [12, 'month'], [Infinity, 'year']];
  let v = secs;
  for (const [size, unit] of steps) {
    if (Math.abs(v) < size) return rtf.format(Math.round(v), unit);
    v /= size;
  }
  return '';
}
function timeView(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return String(rfc3339);
  return el('time', { datetime: rfc3339, title: d.toLocaleString() }, `${d.toLocaleString()} (${ago(d)})`);
}

// API base (same origin; `?api=` only for a loopback dev setup)

const isLoopback = (h) => h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
// Paths are resolved against the page ('./search'), so the page also works behind a proxy prefix.
const API = (() => {
  const wanted = new URLSearchParams(location.search).get('api');
  if (!wanted) return '.';
  try {
    const u = new URL(wanted);
    if (/^https?:$/.test(u.protocol) && isLoopback(u.hostname) && isLoopback(location.hostname)) {
      const b = $('api-banner');
      b.textContent = `Development mode: API calls go to ${u.origin}`;
      b.hidden = false;
      return u.origin;
    }
  } catch (_) { /* fall through */ }
  queueMicrotask(() => showError('Ignored ?api=', 'only a loopback address is accepted, and only when the page itself is on one; using this origin.'));
  return '.';
})();

// API key (sessionStorage, with an in-memory fallback)

let memKey = null;
const keyStore = {
  get() { try { return sessionStorage.getItem(KEY_NAME); } catch (_) { return memKey; } },
  set(v) { memKey = v; try { sessionStorage.setItem(KEY_NAME, v); } catch (_) { /* memory only */ } },
  clear() { memKey = null; try { sessionStorage.removeItem(KEY_NAME); } catch (_) { /* ignore */ } },
};

let keyWait = null; // one prompt shared by every request that got 401
let keyResolve = null;
function askKey(rejected) {
  if (!keyWait) {
    keyWait = new Promise((resolve) => { keyResolve = resolve; });
    $('key-error').textContent = rejected ? 'The server did not accept that key; check it and try again.' : '';
    $('key-panel').hidden = false;
    const input = $('key-input');
    input.value = '';
    input.focus();
  }
  return keyWait;
}
$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = $('key-input').value.trim();
  if (!v) { $('key-error').textContent = 'Enter the API key.'; $('key-input').focus(); return; }
  keyStore.set(v);
  $('key-input').value = '';
  $('key-panel').hidden = true;
  updateKeyState();
  const resolve = keyResolve;
  keyWait = keyResolve = null;
  if (resolve) resolve();
  $('q').focus();
});
$('forget-key').addEventListener('click', () => { keyStore.clear(); updateKeyState(); announce('API key forgotten.'); });
function updateKeyState() {
  const has = Boolean(keyStore.get());
  $('forget-key').hidden = !has;
  $('key-state').textContent = has ? 'Using an API key for this tab.' : '';
}

class ApiError extends Error {
  constructor(status, type, message) { super(message); this.status = status; this.type = type; }
}

/** Calls the API; on 401 asks for the key (once for all callers) and retries. */
async function api(method, path, body) {
  for (;;) {
    const key = keyStore.get();
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (key) headers.Authorization = `Bearer ${key}`;
    let res;
    try {
      res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
    }
    if (res.status === 401) {
      if (keyStore.get() !== key) continue; // another request got a new key meanwhile
      if (key) { keyStore.clear(); updateKeyState(); }
      await askKey(Boolean(key));
      continue;
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) {
      const e = data && data.error;
      const msg = typeof e === 'string' ? e : (e && typeof e.message === 'string' ? e.message : `${res.status} ${res.statusText}`.trim());
      const type = (data && typeof data.type === 'string' && data.type) || (e && e.type) || 'http';
      throw new ApiError(res.status, type, msg);
    }
    return data;
  }
}

// Errors and announcements

function showError(context, err) {
  const msg = err instanceof Error ? err.message : String(err);
  const box = $('errors');
  box.replaceChildren(
    el('p', null, el('strong', null, `${context}: `), el('span', { 'data-testid': 'error-message' }, msg)),
    el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss error', onclick: clearError }, 'Dismiss'),
  );
}
function clearError() { $('errors').replaceChildren(); }
function announce(text) { $('announce').textContent = text; }

// Views

const VIEWS = ['search', 'collections', 'ingest'];
function show(view, focus) {
  if (!VIEWS.includes(view)) view = 'search';
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = v !== view;
    const tab = $(`tab-${v}`);
    if (v === view) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
  }
  if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  if (view === 'collections') loadCollections();
  if (view === 'ingest') refreshJobs();
  if (focus && view === 'search') $('q').focus();
}
const tabs = VIEWS.map((v) => $(`tab-${v}`));
tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => show(tab.dataset.view));
  tab.addEventListener('keydown', (ev) => { // arrows move between the view buttons too
    const d = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
    if (!d) return;
    ev.preventDefault();
    const next = tabs[(i + d + tabs.length) % tabs.length];
    next.focus();
    show(next.dataset.view);
  });
});
window.addEventListener('hashchange', () => show(location.hash.slice(1)));

// Server info

let info = null;
async function loadInfo(attempt = 0) {
  try {
    info = await api('GET', '/info');
    const parts = [info.model, `${info.dimension}d`, info.reranker && `reranker ${info.reranker.model}`,
      info.device, `v${info.version}`].filter(Boolean);
    $('server-info').textContent = parts.join(' · ');
    $('server-info').title = `architecture ${info.architecture}, ${info.dtype}, max ${info.max_seq_length} tokens`;
    $('ingest-collection').placeholder = info.default_collection || '(server default)';
    // A server with a cross-encoder offers the second stage (on by default, as for its agents).
    if (info.reranker) {
      $('rerank-field').hidden = false;
      $('rerank-label').title = `Reorder the best 50 by ${info.reranker.model} (a cross-encoder)`;
    }
    fillCollectionSelect();
  } catch (e) {
    if (e.status === 503 && attempt < 30) { // model still loading
      $('server-info').textContent = 'model loading…';
      setTimeout(() => loadInfo(attempt + 1), 2000);
      return;
    }
    showError('Server info', e);
  }
}

// Collections

let collections = null;
function fillCollectionSelect() {
  const sel = $('collection');
  const keep = sel.value;
  const def = info && info.default_collection;
  const found = (collections || []).find((c) => c.name === def);
  // The server's default collection comes first, as '' (the request then names none).
  const opts = [el('option', { value: '' }, def ? `${def} (${found ? plural(found.chunks, 'chunk') : 'empty'})` : '(server default)')];
  for (const c of collections || []) {
    if (c.name !== def) opts.push(el('option', { value: c.name }, `${c.name} (${plural(c.chunks, 'chunk')})`));
  }
  sel.replaceChildren(...opts);
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  $('collection-names').replaceChildren(...(collections || []).map((c) => el('option', { value: c.name })));
}

let collectionsLoading = null;
function loadCollections() {
  if (!collectionsLoading) {
    collectionsLoading = (async () => {
      $('collections').setAttribute('aria-busy', 'true');
      try {
        const data = await api('GET', '/collections');
        collections = Array.isArray(data) ? data : (data && data.collections) || [];
        renderCollections();
        fillCollectionSelect();
      } catch (e) {
        showError('Collections', e);
      } finally {
        $('collections').removeAttribute('aria-busy');
        collectionsLoading = null;
      }
    })();
  }
  return collectionsLoading;
}

const expandedSources = new Set();
let renderedCollections = null;
function renderCollections() {
  const box = $('collections');
  const list = collections || [];
  const snapshot = JSON.stringify(list);
  if (snapshot === renderedCollections) return; // unchanged: keep focus and open lists as they are
  renderedCollections = snapshot;
  const focusKey = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  $('collections-status').textContent = list.length ? plural(list.length, 'collection') : 'No collections yet: ingest a folder or add documents.';
  box.replaceChildren(...list.map((c) => {
    const idx = `${c.text_index ? 'keyword' : 'no keyword index'} · ${c.vector_index ? 'vector ANN' : 'vector exact (no ANN index yet)'}`;
    const unindexed = c.vector_index && c.unindexed_rows ? ` (${num(c.unindexed_rows)} rows searched exactly until upkeep)` : '';
    const model = String(c.model || '').replace(/[\\/]+$/, '');
    const shortModel = model.split(/[\\/]/).pop() || model;
    const sources = el('div', { class: 'sources' });
    const row = (k, v, testid) => [el('dt', null, k), el('dd', { 'data-testid': testid }, v)];
    return el('article', { class: 'card', 'data-testid': 'collection', 'data-name': c.name },
      el('h3', { 'data-testid': 'collection-name' }, c.name),
      el('dl', null,
        row('Model', el('span', { title: model }, `${shortModel} (${c.dimension}d${c.normalized ? ', normalized' : ''})`), 'collection-model'),
        row('Chunks', num(c.chunks), 'collection-chunks'),
        row('Sources', num(c.sources), 'collection-sources'),
        row('Last update', timeView(c.updated_at), 'collection-updated'),
        row('Indexes', idx + unindexed, 'collection-indexes'),
        row('Version', `${num(c.version)} (${plural(c.versions, 'version')} kept, ${plural(c.fragments, 'fragment')})`, 'collection-version'),
      ),
      el('div', { class: 'actions' },
        el('button', { type: 'button', 'data-focus-key': `search:${c.name}`, onclick: () => { pickCollection(c.name); show('search', true); } }, 'Search here'),
        el('button', { type: 'button', 'aria-expanded': 'false', 'data-focus-key': `sources:${c.name}`, 'data-testid': 'collection-sources-toggle', onclick: (ev) => toggleSources(ev.currentTarget, c.name, sources) }, 'Show sources'),
      ),
      sources,
    );
  }));
  for (const b of box.querySelectorAll('[data-focus-key^="sources:"]')) {
    const name = b.dataset.focusKey.slice(8);
    if (expandedSources.has(name)) toggleSources(b, name, b.parentElement.nextElementSibling);
  }
  if (focusKey) for (const b of box.querySelectorAll('[data-focus-key]')) if (b.dataset.focusKey === focusKey) b.focus();
}
function pickCollection(name) {
  $('collection').value = info && name === info.default_collection ? '' : name;
}

const MAX_SOURCES_SHOWN = 200;
async function toggleSources(button, name, box) {
  if (button.getAttribute('aria-expanded') === 'true') {
    expandedSources.delete(name);
    box.replaceChildren();
    button.setAttribute('aria-expanded', 'false');
    button.textContent = 'Show sources';
    return;
  }
  expandedSources.add(name);
  button.setAttribute('aria-expanded', 'true');
  button.textContent = 'Hide sources';
  box.replaceChildren(el('p', { class: 'status' }, 'Loading…'));
  try {
    const list = await api('GET', `/collections/${encodeURIComponent(name)}/sources`);
    const shown = list.slice(0, MAX_SOURCES_SHOWN);
    box.replaceChildren(el('div', null,
      el('ul', { class: 'source-list' }, shown.map((s) => el('li', null,
        el('button', { type: 'button', class: 'link', title: 'Search only this source', onclick: () => { $('f-source').value = s.source; pickCollection(name); show('search', true); } }, s.source),
        el('span', { class: 'muted' }, ` ${plural(s.chunks, 'chunk')}`)))),
      list.length > shown.length ? el('p', { class: 'status' }, `…and ${num(list.length - shown.length)} more`) : null,
    ));
  } catch (e) {
    expandedSources.delete(name);
    box.replaceChildren();
    button.setAttribute('aria-expanded', 'false');
    button.textContent = 'Show sources';
    showError(`Sources of ${name}`, e);
  }
}
$('refresh-collections').addEventListener('click', () => loadCollections());

// Search

const STOP = new Set('a an and are as at be but by do for from has have how i in into is it its of on or that the their there this to was what when where which who why will with'.split(' '));
const escRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex that finds the query's words in a passage (whole words; longer terms also as prefixes, for plurals and the like). */
function termRegex(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  const terms = [...new Set(words.filter((t) => t.length > 1 && !STOP.has(t)))].sort((a, b) => b.length - a.length);
  if (!terms.length) return null;
  const long = terms.filter((t) => t.length >= 4).map(escRe);
  const short = terms.filter((t) => t.length < 4).map(escRe);
  const alts = [];
  if (long.length) alts.push(`(?:${long.join('|')})[\\p{L}\\p{N}]*`);
  if (short.length) alts.push(`(?:${short.join('|')})(?![\\p{L}\\p{N}])`);
  try {
    return new RegExp(`(?<![\\p{L}\\p{N}])(?:${alts.join('|')})`, 'giu');
  } catch (_) { // no lookbehind (Safari < 16.4): also inside words
    return new RegExp(`(?:${alts.join('|')})`, 'giu');
  }
}

function highlight(text, re) {
  const frag = document.createDocumentFragment();
  text = String(text == null ? '' : text);
  if (!re) { frag.append(text); return frag; }
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    frag.append(el('mark', null, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

const MODE_NAMES = { hybrid: 'hybrid', vector: 'vector', text: 'keyword' };
const SCORE_HELP = {
  hybrid: 'Reciprocal rank fusion of the vector and keyword ranks; higher is better',
  vector: 'Cosine similarity; higher is better',
  text: 'BM25 keyword score; higher is better',
  rerank: "The cross-encoder's relevance score (the reranker's activation, usually 0 to 1); higher is better",
};

function metadataView(meta) {
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return null;
  const entries = Object.entries(meta);
  if (!entries.length) return null;
  return el('ul', { class: 'chips', 'aria-label': 'Metadata' }, entries.map(([k, v]) => {
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    const simple = v === null || typeof v !== 'object';
    return el('li', null, simple
      ? el('button', { type: 'button', class: 'chip', title: 'Filter by this value', onclick: () => { $('f-meta').value = `${k}=${value}`; $('search-form').requestSubmit(); } }, `${k}: ${value}`)
      : el('span', { class: 'chip' }, `${k}: ${value}`));
  }));
}

// Where in its document a hit is, as a person would cite it (the same labels as the CLI's).
function locationLabel(loc) {
  if (!loc || typeof loc !== 'object') return null;
  switch (loc.kind) {
    case 'page': return `p. ${loc.page}`;
    case 'slide': return `slide ${loc.slide}`;
    case 'sheet': return loc.sheet ? `sheet ${loc.sheet}, row ${loc.row}` : `row ${loc.row}`;
    case 'message': return loc.subject ? `message ${loc.message}: ${loc.subject}` : `message ${loc.message}`;
    case 'cell': return `cell ${loc.cell}`;
    case 'chapter': return loc.title ? `chapter ${loc.chapter}: ${loc.title}` : `chapter ${loc.chapter}`;
    default: return null;
  }
}

function renderHits(hits, query, mode) {
  const re = termRegex(query);
  $('results').replaceChildren(...hits.map((h, i) => el('li', { class: 'hit', 'data-testid': 'hit', 'data-source': h.source },
    el('div', { class: 'hit-head' },
      el('span', { class: 'rank', 'aria-hidden': 'true' }, `${i + 1}`),
      el('span', { class: 'source', 'data-testid': 'hit-source', title: h.source }, h.source),
      ...(locationLabel(h.location) ? [el('span', { class: 'location', 'data-testid': 'hit-location' }, locationLabel(h.location))] : []),
    ),
    el('p', { class: 'passage', 'data-testid': 'hit-text' }, highlight(h.text, re)),
    el('p', { class: 'hit-foot' },
      el('span', { 'data-testid': 'hit-score', title: SCORE_HELP[mode] }, `score ${fmtScore(h.score)}`),
      el('span', { 'data-testid': 'hit-offsets', title: `bytes ${h.byte_start}–${h.byte_end}` }, `chars ${num(h.char_start)}–${num(h.char_end)}`),
      el('span', null, `chunk ${num(h.chunk_index)}`),
    ),
    metadataView(h.metadata),
  )));
}

let searchSeq = 0;
async function runSearch(ev) {
  ev.preventDefault();
  const query = $('q').value.trim();
  if (!query) { showError('Search', 'type something to search for'); $('q').focus(); return; }
  const mode = (document.querySelector('input[name="mode"]:checked') || {}).value || 'hybrid';
  const body = { query, mode };
  const k = parseInt($('k').value, 10);
  if (Number.isFinite(k)) body.k = k;
  const filters = [];
  const src = $('f-source').value.trim();
  if (src) filters.push(/^source[:=]/.test(src) ? src : `source:${src}`);
  const meta = $('f-meta').value.trim().replace(/^meta\./, '');
  if (meta) {
    const m = /^([^=]+)=(.*)$/.exec(meta);
    if (!m || !m[1].trim()) { showError('Metadata filter', 'write it as key=value'); $('f-meta').focus(); return; }
    filters.push(`meta.${m[1].trim()}=${m[2].trim()}`);
  }
  if (filters.length) body.filter = filters;
  if ($('collection').value) body.collection = $('collection').value;
  const reranked = !$('rerank-field').hidden && $('rerank').checked;
  if (reranked) body.rerank = true;

  const seq = ++searchSeq;
  const results = $('results');
  results.setAttribute('aria-busy', 'true');
  $('search-status').textContent = 'Searching…';
  const t0 = performance.now();
  try {
    const data = await api('POST', '/search', body);
    if (seq !== searchSeq) return;
    const hits = (data && data.hits) || [];
    renderHits(hits, query, reranked ? 'rerank' : mode);
    clearError();
    const ms = Math.round(performance.now() - t0);
    $('search-status').textContent = hits.length
      ? `${plural(hits.length, 'result')} for “${query}” · ${MODE_NAMES[mode]}${reranked ? ', reranked' : ''} · ${ms} ms`
      : `No results for “${query}” (${MODE_NAMES[mode]}${filters.length ? ', filtered' : ''}).`;
  } catch (e) {
    if (seq !== searchSeq) return;
    results.replaceChildren();
    $('search-status').textContent = '';
    showError('Search failed', e);
  } finally {
    if (seq === searchSeq) {
      results.removeAttribute('aria-busy');
      results.dataset.seq = String(seq);
    }
  }
}
$('search-form').addEventListener('submit', runSearch);
// A new mode (or the rerank toggle) applies at once when there is a query.
for (const r of document.querySelectorAll('input[name="mode"], #rerank')) {
  r.addEventListener('change', () => { if ($('q').value.trim()) $('search-form').requestSubmit(); });
}

// Ingest jobs

const jobs = new Map(); // id -> JobStatus
let jobsListRoute = true; // GET /jobs exists (older servers only have GET /jobs/{id})
let pollTimer = null;
let polling = false;
const ACTIVE = new Set(['queued', 'running']);
const jobNo = (id) => { const m = /(\d+)$/.exec(id); return m ? Number(m[1]) : 0; };
const startedHere = new Map(); // job id -> when this page started it

async function refreshJobs() {
  if (polling) return;
  polling = true;
  const before = new Map(jobs);
  const asked = performance.now();
  try {
    let listed = false;
    if (jobsListRoute) {
      try {
        const data = await api('GET', '/jobs');
        const list = Array.isArray(data) ? data : (data && data.jobs) || [];
        const current = new Map(jobs);
        jobs.clear();
        for (const j of list) jobs.set(j.id, j);
        // A job started while this list was on its way is not in it yet.
        for (const [id, at] of startedHere) if (at > asked && !jobs.has(id) && current.has(id)) jobs.set(id, current.get(id));
        listed = true;
      } catch (e) {
        if (e.status === 404 || e.status === 405) jobsListRoute = false; else throw e;
      }
    }
    if (!listed) {
      await Promise.all([...jobs.values()].filter((j) => ACTIVE.has(j.state)).map(async (j) => {
        try { jobs.set(j.id, await api('GET', `/jobs/${encodeURIComponent(j.id)}`)); } catch (e) {
          if (e.status === 404) jobs.set(j.id, { ...j, state: 'failed', error: 'the server no longer knows this job (restarted?)' }); else throw e;
        }
      }));
    }
    let finished = false;
    for (const [id, j] of jobs) {
      const was = before.get(id);
      if (was && ACTIVE.has(was.state) && !ACTIVE.has(j.state)) {
        finished = true;
        announce(`Ingest ${id} ${j.state}${j.summary ? `: ${summaryText(j.summary)}` : ''}`);
      }
    }
    renderJobs();
    if (finished) loadCollections();
  } catch (e) {
    showError('Ingest jobs', e);
  } finally {
    polling = false;
    schedulePoll();
  }
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = null;
  if ([...jobs.values()].some((j) => ACTIVE.has(j.state))) pollTimer = setTimeout(refreshJobs, POLL_MS);
}

function summaryText(s) {
  const secs = typeof s.seconds === 'number' ? `${s.seconds.toFixed(1)} s` : '';
  return `${num(s.added)} added, ${num(s.updated)} updated, ${num(s.deleted)} deleted, ${num(s.unchanged)} unchanged, ${num(s.skipped)} skipped` +
    `${s.kept ? `, ${num(s.kept)} kept` : ''}; ${plural(s.chunks, 'chunk')}, ${plural(s.tokens, 'token')}${secs ? ` in ${secs}` : ''}`;
}

// Job items are updated in place while they run, so that focus (on Cancel) and screen readers
// are not disturbed every second; an item is rebuilt only when the job finishes.
const jobEls = new Map(); // id -> { li, sig, badge, progress, counts }
function jobElement(j) {
  const active = ACTIVE.has(j.state);
  const sig = JSON.stringify([active, j.summary, j.error, j.path, j.collection]);
  let rec = jobEls.get(j.id);
  if (!rec || rec.sig !== sig) {
    const badge = el('span', { 'data-testid': 'job-state' });
    const progress = el('progress', { 'aria-label': `Files read by ${j.id}`, 'data-testid': 'job-progress' });
    const counts = el('span', { 'data-testid': 'job-counts' });
    const errors = (j.summary && j.summary.errors) || [];
    const li = el('li', { class: 'job', 'data-testid': 'job', 'data-job-id': j.id, 'data-path': j.path, 'data-collection': j.collection },
      el('div', { class: 'job-head' },
        el('strong', null, j.id),
        el('span', { class: 'job-path' }, `${j.path || '.'} → ${j.collection}`),
        badge,
        active ? el('button', { type: 'button', class: 'small', 'data-testid': 'job-cancel', 'aria-label': `Cancel ${j.id}`, onclick: () => cancelJob(j.id) }, 'Cancel') : null,
      ),
      el('div', { class: 'job-progress' }, progress, counts),
      j.summary ? el('p', { class: 'summary', 'data-testid': 'job-summary' }, summaryText(j.summary)) : null,
      j.error ? el('p', { class: 'error-text', 'data-testid': 'job-error' }, j.error) : null,
      errors.length ? el('details', { class: 'job-errors' }, el('summary', null, plural(errors.length, 'file problem')), el('ul', null, errors.map((e) => el('li', null, e)))) : null,
    );
    if (rec) rec.li.replaceWith(li);
    rec = { li, sig, badge, progress, counts };
    jobEls.set(j.id, rec);
  }
  const total = j.files_to_read || 0;
  const read = j.files_read || 0;
  rec.li.dataset.state = j.state;
  rec.badge.className = `badge ${j.state}`;
  rec.badge.textContent = j.state;
  rec.progress.max = Math.max(total, 1);
  if (total || !active) rec.progress.value = total ? Math.min(read, total) : 1;
  else rec.progress.removeAttribute('value'); // indeterminate until the folder is walked
  rec.counts.textContent = `${num(read)} / ${total || (active ? '?' : 0)} files · ${plural(j.chunks_embedded || 0, 'chunk')} · ${plural(j.tokens_embedded || 0, 'token')}`;
  return rec.li;
}

function renderJobs() {
  const list = [...jobs.values()].sort((a, b) => jobNo(b.id) - jobNo(a.id));
  const ul = $('jobs');
  $('jobs-empty').hidden = list.length > 0;
  const ids = new Set(list.map((j) => j.id));
  for (const [id, rec] of jobEls) if (!ids.has(id)) { rec.li.remove(); jobEls.delete(id); }
  list.forEach((j, i) => {
    const li = jobElement(j);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
}

async function cancelJob(id) {
  try {
    const j = await api('DELETE', `/jobs/${encodeURIComponent(id)}`);
    if (j && j.id) jobs.set(j.id, j);
    renderJobs();
    announce(`Cancelling ${id}…`);
    schedulePoll();
  } catch (e) {
    showError(`Cancel ${id}`, e);
  }
}

let ingestBusy = false;
$('ingest-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const path = $('ingest-path').value.trim();
  if (!path) { showError('Ingest', 'enter a folder under the ingest root (`.` for the whole root)'); $('ingest-path').focus(); return; }
  const body = { path };
  const collection = $('ingest-collection').value.trim();
  if (collection) body.collection = collection;
  const include = splitList($('ingest-include').value);
  const exclude = splitList($('ingest-exclude').value);
  if (include.length) body.include = include;
  if (exclude.length) body.exclude = exclude;
  if (ingestBusy) return;
  ingestBusy = true;
  try {
    const j = await api('POST', '/ingest', body);
    jobs.set(j.id, j);
    startedHere.set(j.id, performance.now());
    clearError();
    renderJobs();
    announce(`Started ${j.id} for ${j.path}`);
    schedulePoll();
  } catch (e) {
    showError('Ingest', e);
  } finally {
    ingestBusy = false;
  }
});
$('refresh-jobs').addEventListener('click', () => refreshJobs());

// Start

updateKeyState();
show(location.hash.slice(1) || 'search');
loadInfo();
loadCollections();
refreshJobs();
