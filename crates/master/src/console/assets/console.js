// K3s-DaaS console: vanilla JS, no build step. The credential stays in sessionStorage and is
// only ever sent in the Authorization header, never in a URL.
'use strict';

const KEY = 'daas-console-credential';
const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  nodes: new Map(),      // name -> Node object (from the watch)
  nodeExtra: new Map(),  // name -> {renewTime, stake}
  pods: new Map(),       // ns/name -> Pod object (from the watch)
  podScope: null,        // null: cluster-wide; else the only namespace this identity may list
  timers: [],
  watchers: [],
  session: 0,           // bumped on every sign-in and sign-out: late answers of an old session are dropped
};

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function cell(label, content, cls) {
  return el('td', { 'data-label': label, class: cls }, content);
}

function badge(text, kind) {
  return el('span', { class: 'badge ' + (kind ? 'b-' + kind : '') }, text);
}

function short(s, n) {
  if (!s) return '';
  n = n || 10;
  return s.length > 2 * n + 1 ? s.slice(0, n) + '\u2026' + s.slice(-6) : s;
}

function age(ts) {
  if (!ts) return '\u2014';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + (s % 60) + 's' : '');
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd';
}

function fmt(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : (n === undefined || n === null ? '\u2014' : String(n));
}

// ---------------------------------------------------------------- API

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  const o = opts || {};
  const headers = { Accept: 'application/json', Authorization: 'Bearer ' + state.token };
  if (o.body) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method: o.method || 'GET', headers, body: o.body ? JSON.stringify(o.body) : undefined,
    signal: o.signal, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
  });
  if (o.raw) return r;
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!r.ok) throw new HttpError(r.status, (body && body.message) || text || r.statusText);
  return body;
}

function forbidden(id, err, what) {
  const p = $(id);
  if (err && err.status === 403) {
    p.textContent = 'Forbidden: your identity may not ' + what + ' (RBAC).';
    p.hidden = false;
    return true;
  }
  if (err) { p.textContent = 'Error: ' + err.message; p.hidden = false; return true; }
  p.hidden = true;
  return false;
}

// A request the network (not the API) failed is tried again shortly, in the same session only.
// (Chromium aborts every request in flight when the host's addresses change, e.g. when a pod's
// veth appears or goes on this machine.)
function retrySoon(e, f) {
  if (e && e.status) return;
  const session = state.session;
  state.timers.push(setTimeout(() => { if (session === state.session) f(); }, 2000));
}

// ---------------------------------------------------------------- watch

// List, then stream `?watch=1` (JSON lines) from the list's resourceVersion; a stream that ends
// is resumed from the last version seen; 410 Gone (or an ERROR event with code 410) relists.
class Watcher {
  constructor(path, handlers) {
    this.path = path;
    this.h = handlers;
    this.stopped = false;
    this.ctrl = null;
  }
  stop() { this.stopped = true; if (this.ctrl) this.ctrl.abort(); }
  async run() {
    let rv = null;
    while (!this.stopped) {
      try {
        if (rv === null) {
          const list = await api(this.path);
          rv = list.metadata.resourceVersion;
          this.h.reset(list.items || []);
        }
        this.h.live(true);
        rv = await this.stream(rv);
      } catch (e) {
        if (this.stopped) return;
        if (e.status === 410) { rv = null; continue; }
        // Kept for diagnosis (the page shows the latest one).
        (window.daasWatchErrors = window.daasWatchErrors || []).push(this.path + ': ' + (e.status || '') + ' ' + e.message + ' @' + new Date().toISOString());
        this.h.live(false, e);
        if (e.status === 401 || e.status === 403) { this.h.error(e); return; }
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }
  async stream(rv) {
    this.ctrl = new AbortController();
    const sep = this.path.includes('?') ? '&' : '?';
    const url = this.path + sep + 'watch=1&allowWatchBookmarks=true&resourceVersion=' + encodeURIComponent(rv);
    const r = await api(url, { raw: true, signal: this.ctrl.signal });
    if (r.status === 410) throw new HttpError(410, 'Gone');
    if (!r.ok) throw new HttpError(r.status, r.statusText);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return rv;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const ev = JSON.parse(line);
        if (ev.type === 'ERROR') {
          const code = ev.object && ev.object.code;
          throw new HttpError(code || 500, (ev.object && ev.object.message) || 'watch error');
        }
        const md = (ev.object && ev.object.metadata) || {};
        if (md.resourceVersion) rv = md.resourceVersion;
        if (ev.type !== 'BOOKMARK') this.h.event(ev.type, ev.object);
      }
    }
  }
}

function watch(path, handlers) {
  const w = new Watcher(path, handlers);
  state.watchers.push(w);
  w.run();
  return w;
}

// ---------------------------------------------------------------- nodes

function nodeReady(n) {
  const c = ((n.status && n.status.conditions) || []).find((x) => x.type === 'Ready');
  return c ? c.status : 'Unknown';
}

function renderNodes() {
  const body = $('nodes-body');
  const names = [...state.nodes.keys()].sort();
  const rows = names.map((name) => {
    const n = state.nodes.get(name);
    const x = state.nodeExtra.get(name) || {};
    const st = x.stake || null;
    const ready = nodeReady(n);
    const readyKind = ready === 'True' ? 'ok' : ready === 'False' ? 'bad' : 'warn';
    const stStatus = st && !st.error ? st.status : null;
    const earn = st && st.earnings ? st.earnings : null;
    return el('tr', { dataset: { node: name } },
      cell('Node', el('strong', {}, name)),
      cell('Ready', badge(ready === 'True' ? 'Ready' : ready === 'False' ? 'NotReady' : 'Unknown', readyKind)),
      cell('Heartbeat', el('span', { class: 'hb', dataset: { ts: x.renewTime || '' } }, x.renewTime ? age(x.renewTime) + ' ago' : '\u2014')),
      cell('Stake', st && !st.error ? fmt(st.amount) + ' MIST' : (st && st.error ? 'ledger error' : 'none'), 'num'),
      cell('Status', stStatus ? badge(stStatus, stStatus === 'Active' ? 'ok' : stStatus === 'Slashed' ? 'bad' : 'warn') : '\u2014'),
      cell('Generation', st && !st.error ? fmt(st.generation) : '\u2014', 'num'),
      cell('Operator', st && st.operator ? el('span', { class: 'mono', title: st.operator }, short(st.operator, 8)) : '\u2014'),
      cell('Earnings', earn ? fmt(earn.balance) + ' MIST (' + fmt(earn.earned) + ' earned)' : (st && st.slashed_total ? 'slashed ' + fmt(st.slashed_total) : '\u2014'), 'num'),
    );
  });
  if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 8 }, 'No nodes.')));
  body.replaceChildren(...rows);
  const ready = names.filter((n) => nodeReady(state.nodes.get(n)) === 'True').length;
  $('nodes-summary').textContent = names.length + (names.length === 1 ? ' node' : ' nodes') + ', ' + ready + ' ready';
}

function tickHeartbeats() {
  for (const s of document.querySelectorAll('.hb[data-ts]')) {
    if (s.dataset.ts) s.textContent = age(s.dataset.ts) + ' ago';
  }
}

async function loadNodeExtra() {
  try {
    const r = await api('/api/v1/console/nodes');
    state.nodeExtra = new Map((r.items || []).map((i) => [i.name, i]));
    renderNodes();
  } catch (e) {
    if (e.status === 403) return; // the watch already says the panel is forbidden
  }
}

function startNodes() {
  watch('/api/v1/nodes', {
    reset(items) {
      state.nodes = new Map(items.map((n) => [n.metadata.name, n]));
      forbidden('nodes-forbidden');
      $('nodes-wrap').hidden = false;
      renderNodes();
    },
    event(type, n) {
      if (type === 'DELETED') state.nodes.delete(n.metadata.name); else state.nodes.set(n.metadata.name, n);
      renderNodes();
    },
    live() {},
    error(e) {
      forbidden('nodes-forbidden', e, 'list nodes');
      $('nodes-wrap').hidden = true;
      $('nodes-summary').textContent = 'not available';
    },
  });
  loadNodeExtra();
  state.timers.push(setInterval(loadNodeExtra, 5000), setInterval(tickHeartbeats, 1000));
}

// ---------------------------------------------------------------- pods

const PHASES = ['Running', 'Pending', 'Succeeded', 'Failed', 'Unknown'];
function phaseKind(p) {
  return { Running: 'ok', Succeeded: 'muted', Pending: 'warn', Failed: 'bad' }[p] || 'warn';
}

function podPhase(p) {
  if (p.metadata.deletionTimestamp) return 'Terminating';
  return (p.status && p.status.phase) || 'Unknown';
}

function restarts(p) {
  return ((p.status && p.status.containerStatuses) || []).reduce((a, c) => a + (c.restartCount || 0), 0);
}

function renderPods() {
  const filter = $('ns-filter').value;
  const all = [...state.pods.values()];
  // Namespace choices follow what is listed.
  const nss = [...new Set(all.map((p) => p.metadata.namespace))].sort();
  const sel = $('ns-filter');
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join('\n') !== nss.join('\n')) {
    sel.replaceChildren(el('option', { value: '' }, 'All namespaces'), ...nss.map((n) => el('option', { value: n }, n)));
    sel.value = nss.includes(filter) ? filter : '';
  }
  const pods = all.filter((p) => !sel.value || p.metadata.namespace === sel.value);
  const groups = new Map();
  for (const p of pods) {
    const node = (p.spec && p.spec.nodeName) || '';
    if (!groups.has(node)) groups.set(node, []);
    groups.get(node).push(p);
  }
  const nodes = [...groups.keys()].sort((a, b) => (a === '') - (b === '') || a.localeCompare(b));
  const out = nodes.map((node) => {
    const list = groups.get(node).sort((a, b) => (a.metadata.namespace + '/' + a.metadata.name).localeCompare(b.metadata.namespace + '/' + b.metadata.name));
    const counts = {};
    for (const p of list) { const ph = podPhase(p); counts[ph] = (counts[ph] || 0) + 1; }
    const id = 'grp-' + (node || 'unscheduled').replace(/[^a-z0-9-]/gi, '_');
    return el('section', { class: 'group', 'aria-labelledby': id, dataset: { group: node || '(unscheduled)' } },
      el('h3', { id }, node || 'Not scheduled', ...Object.entries(counts).map(([ph, n]) => badge(n + ' ' + ph, phaseKind(ph)))),
      el('div', { class: 'table-wrap' },
        el('table', { class: 'stack' },
          el('caption', { class: 'sr-only' }, 'Pods on ' + (node || 'no node')),
          el('thead', {}, el('tr', {}, ...['Namespace', 'Pod', 'Phase', 'Restarts', 'Age'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, ...list.map((p) => {
            const ph = podPhase(p);
            return el('tr', { dataset: { pod: p.metadata.namespace + '/' + p.metadata.name } },
              cell('Namespace', p.metadata.namespace),
              cell('Pod', el('strong', {}, p.metadata.name)),
              cell('Phase', badge(ph, phaseKind(ph)), 'phase'),
              cell('Restarts', restarts(p), 'num'),
              cell('Age', age(p.metadata.creationTimestamp)));
          })))));
  });
  if (!out.length) out.push(el('p', { class: 'muted' }, 'No pods' + (sel.value ? ' in ' + sel.value : '') + '.'));
  $('pods-groups').replaceChildren(...out);
  const byPhase = {};
  for (const p of pods) { const ph = podPhase(p); byPhase[ph] = (byPhase[ph] || 0) + 1; }
  const parts = PHASES.concat(['Terminating']).filter((ph) => byPhase[ph]).map((ph) => byPhase[ph] + ' ' + ph);
  $('pods-summary').textContent = pods.length + (pods.length === 1 ? ' pod' : ' pods') + (parts.length ? ': ' + parts.join(', ') : '');
}

function podKey(p) { return p.metadata.namespace + '/' + p.metadata.name; }

function podHandlers() {
  return {
    reset(items) { state.pods = new Map(items.map((p) => [podKey(p), p])); renderPods(); },
    event(type, p) {
      if (type === 'DELETED') state.pods.delete(podKey(p)); else state.pods.set(podKey(p), p);
      renderPods();
    },
    live(on, e) {
      const s = $('pods-live');
      s.classList.toggle('off', !on);
      s.textContent = on ? 'live' + (state.podScope ? ' (namespace ' + state.podScope + ')' : '') : 'reconnecting' + (e ? ': ' + e.message : '');
    },
    error(e) { forbidden('pods-forbidden', e, 'list pods'); },
  };
}

// The namespace a user-tier identity owns (group daas:namespace:<ns>), from a SelfSubjectReview.
async function ownNamespace() {
  try {
    const r = await api('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      method: 'POST', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    const groups = (r.status && r.status.userInfo && r.status.userInfo.groups) || [];
    const g = groups.find((x) => x.startsWith('daas:namespace:'));
    return g ? g.slice('daas:namespace:'.length) : null;
  } catch (_) { return null; }
}

async function startPods(attempt) {
  const session = state.session;
  try {
    await api('/api/v1/pods?limit=1');
    state.podScope = null;
    watch('/api/v1/pods', podHandlers());
  } catch (e) {
    if (session !== state.session) return;
    if (!e.status) {
      // The network, not the API, failed: try again shortly.
      forbidden('pods-forbidden', e);
      state.timers.push(setTimeout(() => { if (session === state.session) startPods((attempt || 0) + 1); }, 2000));
      return;
    }
    if (e.status !== 403) { forbidden('pods-forbidden', e); return; }
    const ns = await ownNamespace();
    if (!ns) { forbidden('pods-forbidden', e, 'list pods'); return; }
    state.podScope = ns;
    const p = $('pods-forbidden');
    p.textContent = 'Showing your namespace ' + ns + ' only: this identity may not list pods cluster-wide.';
    p.hidden = false;
    watch('/api/v1/namespaces/' + encodeURIComponent(ns) + '/pods', podHandlers());
  }
}

// ---------------------------------------------------------------- ledger events

const EVENT_KIND = {
  Staked: 'info', Slashed: 'bad', Deposited: 'ok', Charged: 'warn', Settled: 'ok', UsageSkipped: 'warn',
  EarningsWithdrawn: 'muted', EscrowWithdrawn: 'muted', TreasuryWithdrawn: 'muted', Withdrawn: 'muted',
  UnstakeRequested: 'warn', PricesSet: 'info',
};

async function loadEvents() {
  let r;
  try { r = await api('/api/v1/console/ledger-events'); } catch (e) { forbidden('events-forbidden', e, 'read the ledger events'); retrySoon(e, loadEvents); return; }
  forbidden('events-forbidden');
  const items = r.items || [];
  const rows = items.map((ev) => {
    const addr = ev.user || ev.operator || ev.staker || ev.owner || ev.recipient || ev.address || '';
    const who = ev.node_id ? ev.node_id : addr;
    const amount = ev.amount !== undefined ? ev.amount : (ev.charged !== undefined ? ev.charged : ev.charged_total);
    const iso = ev.timestamp_ms ? new Date(ev.timestamp_ms).toISOString() : null;
    const today = new Date().toISOString().slice(0, 10);
    const when = iso ? el('time', { datetime: iso, title: iso }, iso.slice(0, 10) === today ? iso.slice(11, 19) + 'Z' : iso.slice(0, 10))
      : (ev.epoch !== undefined ? 'epoch ' + ev.epoch : '');
    const detail = [ev.role, ev.status, ev.reason, ev.period !== undefined ? 'period ' + ev.period : null,
      ev.lines !== undefined ? ev.lines + ' lines' : null].filter(Boolean).join(', ');
    return el('tr', { dataset: { event: ev.kind } },
      cell('Event', el('span', {}, badge(ev.kind, EVENT_KIND[ev.kind]), detail ? el('span', { class: 'muted' }, ' ' + detail) : null)),
      cell('Who', el('span', { class: ev.node_id ? '' : 'mono', title: addr }, ev.node_id ? who : (who ? short(who, 8) : '\u2014'))),
      cell('Amount (MIST)', fmt(amount), 'num'),
      cell('When', when));
  });
  if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 4 }, 'No ledger events yet.')));
  $('events-body').replaceChildren(...rows);
  const extra = r.treasury !== undefined && r.treasury !== null ? ' \u00b7 treasury ' + fmt(r.treasury) + ' MIST' : '';
  $('events-summary').textContent = items.length + ' recent' + extra;
}

// ---------------------------------------------------------------- attestation

function yes(v) { return v === true ? badge('yes', 'ok') : v === false ? badge('no', 'bad') : badge('unknown', 'warn'); }

async function loadAttestation() {
  let a;
  try { a = await api('/api/v1/console/attestation'); } catch (e) { forbidden('att-forbidden', e, 'read the attestation'); retrySoon(e, loadAttestation); return; }
  forbidden('att-forbidden');
  const v = a.verified || {};
  const main = [];
  const add = (list, k, val, attrs) => list.push(el('dt', {}, k), el('dd', attrs || {}, val));
  add(main, 'Enclave kind', a.kind, { class: 'plain', dataset: { field: 'kind' } });
  add(main, 'Registered on the ledger', el('span', {}, yes(v.registered), v.reason ? ' ' + v.reason : ''), { class: 'plain', dataset: { field: 'registered' } });
  if (v.current !== undefined) add(main, 'Current (not stale)', yes(v.current), { class: 'plain', dataset: { field: 'current' } });
  if (v.pcrs_match !== undefined) add(main, 'PCRs match the config', yes(v.pcrs_match), { class: 'plain' });
  if (v.public_key_matches !== undefined) add(main, 'Key matches the ledger', yes(v.public_key_matches), { class: 'plain' });
  if (v.config_version !== undefined) add(main, 'Config version', 'ledger v' + v.config_version + ', enclave registered at v' + v.enclave_config_version, { class: 'plain' });
  if (v.enclave_object_id) add(main, 'Enclave object', v.enclave_object_id);
  if (v.enclave_config_id) add(main, 'Enclave config', v.enclave_config_id + (v.config_name ? ' (' + v.config_name + ')' : ''));
  add(main, 'Public key', a.public_key, { dataset: { field: 'public_key' } });
  add(main, 'TLS certificate SHA-256', a.tls_certificate_sha256, { dataset: { field: 'tls' } });
  add(main, 'Cluster', a.cluster_id);
  // PCRs: the measured ones in full, the all-zero (unused) ones folded away.
  const zeros = [];
  for (const i of Object.keys(a.pcrs || {}).sort((x, y) => x - y)) {
    const val = a.pcrs[i];
    add(/^0*$/.test(val) ? zeros : main, 'PCR' + i, val, { dataset: { pcr: i } });
  }
  const parts = [el('dl', { class: 'kv' }, ...main)];
  if (zeros.length) {
    parts.push(el('details', { class: 'zeros' },
      el('summary', {}, (zeros.length / 2) + ' more PCRs, all zero (unused)'),
      el('dl', { class: 'kv' }, ...zeros)));
  }
  $('att').replaceChildren(...parts);
  const ok = v.registered && v.current && v.pcrs_match && v.public_key_matches;
  $('att-summary').textContent = ok ? 'verified against the ledger' : 'not verified' + (v.reason ? ': ' + v.reason : '');
}

// ---------------------------------------------------------------- session

function stopAll() {
  for (const w of state.watchers) w.stop();
  for (const t of state.timers) { clearInterval(t); clearTimeout(t); }
  state.watchers = []; state.timers = []; state.nodes.clear(); state.pods.clear(); state.nodeExtra.clear();
}

async function whoami() {
  try {
    const r = await api('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      method: 'POST', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    return (r.status && r.status.userInfo && r.status.userInfo.username) || null;
  } catch (_) { return null; }
}

async function signIn(token) {
  state.session += 1;
  state.token = token;
  // Any authenticated identity may read the attestation: a 401 here means the credential is bad.
  try {
    await api('/api/v1/console/attestation');
  } catch (e) {
    if (e.status === 401) {
      state.token = null;
      sessionStorage.removeItem(KEY);
      throw new Error('The master did not accept this credential (401 Unauthorized).');
    }
  }
  sessionStorage.setItem(KEY, token);
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  const name = await whoami();
  $('who').textContent = name ? 'Signed in as ' + name : 'Signed in';
  startNodes();
  startPods();
  loadEvents();
  loadAttestation();
  state.timers.push(setInterval(loadEvents, 10000), setInterval(loadAttestation, 30000));
  $('main').focus({ preventScroll: true });
}

// Forget everything the previous identity saw: nothing of it may stay in the page.
function clearPanels() {
  for (const id of ['nodes-body', 'pods-groups', 'events-body', 'att']) $(id).replaceChildren();
  for (const id of ['nodes-summary', 'pods-summary', 'events-summary', 'att-summary', 'pods-live']) $(id).textContent = '';
  for (const id of ['nodes-forbidden', 'pods-forbidden', 'events-forbidden', 'att-forbidden']) $(id).hidden = true;
  $('nodes-wrap').hidden = false;
  $('ns-filter').replaceChildren(el('option', { value: '' }, 'All namespaces'));
}

function signOut() {
  state.session += 1;
  stopAll();
  clearPanels();
  sessionStorage.removeItem(KEY);
  state.token = null;
  $('dash').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('who').textContent = '';
  $('token').value = '';
  $('token').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    $('login-error').textContent = '';
    if (!t) return;
    try {
      await signIn(t);
      $('token').value = '';
    } catch (e) {
      $('login-error').textContent = e.message;
      // Back to the field with its text selected: typing replaces it.
      $('token').focus();
      $('token').select();
    }
  });
  $('logout').addEventListener('click', signOut);
  $('ns-filter').addEventListener('change', renderPods);
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved).catch(() => signOut());
  else $('token').focus();
});
