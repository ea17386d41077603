// The recorder's web console: plain JavaScript, no build step, no CDN. The
// API key lives in this tab's sessionStorage only; every call sends it in
// the Authorization header (the event stream too: it is read with fetch, not
// EventSource, so the key never goes into a URL).
'use strict';

const KEY_ITEM = 'recorder.apiKey';
const $ = (sel, root = document) => root.querySelector(sel);
const key = () => sessionStorage.getItem(KEY_ITEM);
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// el builds an element; strings become text nodes (never HTML).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class APIError extends Error {
  constructor(status, message, reason) { super(message); this.status = status; this.reason = reason; }
}

async function api(method, path, body) {
  const opts = {method, headers: {'Authorization': 'Bearer ' + key(), 'Accept': 'application/json'}};
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    throw new APIError(resp.status, (data && data.message) || resp.statusText || ('HTTP ' + resp.status), data && data.reason);
  }
  return data;
}

function showError(e) {
  let msg = e ? (e.message || String(e)) : '';
  if (e && e.status === 403) msg = 'This API key may not do that: ' + msg;
  $('#error').textContent = msg;
}

const refPath = (r) => [r.conversationId, r.recorderId, r.instanceId].map(encodeURIComponent).join('/');
const recURL = (r) => '/api/recordings/' + refPath(r);

function fmtDuration(sec) {
  sec = Math.max(0, Math.floor(sec));
  const h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
  return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(s).padStart(2, '0');
}
const fmtTime = (t) => t ? new Date(t).toLocaleString() : '';
const fmtSize = (n) => n >= 1e6 ? (n / 1e6).toFixed(1) + ' MB' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' kB' : n + ' B';

// ---- views and routing ----

const views = ['login', 'live', 'search', 'recording', 'storage'];
function show(view) {
  for (const v of views) $('#' + v + '-view').hidden = v !== view;
  $('#nav').hidden = view === 'login';
  showError(null);
}

async function route() {
  if (!key()) { show('login'); $('#login-key').focus(); return; }
  if (!keyInfo && !(await loadSelf())) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  switch (parts[0]) {
    case 'rec':
      show('recording');
      current = {conversationId: parts[1], recorderId: parts[2], instanceId: parts[3]};
      await loadRecording(current).catch(showError);
      return;
    case 'search': current = null; show('search'); return;
    case 'storage': current = null; show('storage'); loadApplications(); return;
    default: current = null; show('live'); refreshLive();
  }
}
window.addEventListener('hashchange', route);

// ---- log in, and what the key may do ----

// keyInfo is the key's description (GET /api/keys/self): organization, scopes,
// applications. Elements with data-scope="X" are shown only when the key
// has scope X: the body carries a class scope-X per scope (style.css).
let keyInfo = null;
const can = (scope) => !!keyInfo && keyInfo.scopes.includes(scope);

function applyScopes() {
  for (const sc of ['admin', 'control', 'read', 'publish']) document.body.classList.toggle('scope-' + sc, can(sc));
  $('#key-info').textContent = keyInfo ? keyInfo.organizationId + ' · ' + keyInfo.scopes.join(', ') : '';
}

// loadSelf asks the recorder about the key in session storage; a refused
// key is forgotten. It reports whether the key is good.
async function loadSelf() {
  try {
    keyInfo = await api('GET', '/api/keys/self');
  } catch (e) {
    keyInfo = null;
    applyScopes();
    if (e.status === 401) {
      sessionStorage.removeItem(KEY_ITEM);
      stopEvents();
      show('login');
      $('#login-error').textContent = 'Refused: ' + e.message;
    } else {
      showError(e);
    }
    return false;
  }
  applyScopes();
  return true;
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const k = $('#login-key').value.trim();
  $('#login-error').textContent = '';
  sessionStorage.setItem(KEY_ITEM, k);
  $('#login-key').value = '';
  if (!(await loadSelf())) { // proves the key
    sessionStorage.removeItem(KEY_ITEM);
    return;
  }
  startEvents();
  if (can('read')) loadApplications();
  if (!location.hash || location.hash === '#/login') location.hash = '#/live';
  route();
});

$('#logout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_ITEM);
  keyInfo = null;
  applyScopes();
  stopEvents();
  location.hash = '#/login';
  route();
});

// ---- live recordings, kept current by the event stream ----

let liveRows = [];
let current = null; // the recording shown on the recording page
let refreshTimer = null;

async function refreshLive() {
  if (!can('read')) { liveRows = []; renderLive(); return; }
  try {
    const l = await api('GET', '/api/recordings?state=INITIALISED,ACTIVE,PENDING_RECOVERY&limit=100');
    liveRows = l.recordings;
    renderLive();
  } catch (e) { showError(e); }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshLive();
    if (current && !$('#recording-view').hidden) loadRecording(current).catch(showError);
  }, 150);
}

function stateText(r) {
  let s = r.state;
  if (r.paused) s += ' · paused';
  if (r.blackedOut && r.blackedOut.length) s += ' · blacked out: ' + r.blackedOut.join(', ');
  return s;
}

function actionButtons(r) {
  const act = (label, action, fn) => el('button', {type: 'button', 'data-action': action, 'data-scope': 'control',
    onclick: async (ev) => {
      ev.stopPropagation();
      ev.target.disabled = true;
      try { await fn(); scheduleRefresh(); } catch (e) { showError(e); } finally { ev.target.disabled = false; }
    }}, label);
  const out = [];
  if (r.state === 'ACTIVE') {
    out.push(r.paused ? act('Resume', 'resume', () => api('POST', recURL(r) + '/resume'))
                      : act('Pause', 'pause', () => api('POST', recURL(r) + '/pause')));
    out.push(act('Stop', 'stop', () => api('POST', recURL(r) + '/stop')));
    for (const u of r.participants || []) {
      const on = (r.blackedOut || []).includes(u);
      out.push(act((on ? 'End blackout ' : 'Blackout ') + u, on ? 'blackout-stop' : 'blackout-start',
        () => api('POST', '/api/blackouts/' + (on ? 'stop' : 'start'), {userId: u, conferenceId: r.conferenceId})));
    }
  }
  return out;
}

function renderLive() {
  const tbody = $('#live-table tbody');
  tbody.replaceChildren(...liveRows.map((r) => el('tr', {'data-ref': refPath(r), 'data-instance': r.instanceId,
    onclick: () => { location.hash = '#/rec/' + refPath(r); }},
    el('td', {}, el('code', {}, r.conversationId), el('br'), el('small', {class: 'note'}, r.instanceId)),
    el('td', {class: 'state state-' + r.state}, stateText(r)),
    el('td', {class: 'participants'}, (r.participants || []).join(', ')),
    el('td', {class: 'duration', 'data-started': r.started || ''}, r.started ? fmtDuration(r.duration) : ''),
    el('td', {class: 'actions'}, actionButtons(r)))));
  $('#live-empty').hidden = liveRows.length > 0;
}

setInterval(() => {
  for (const td of document.querySelectorAll('#live-table td.duration[data-started]')) {
    const s = td.getAttribute('data-started');
    if (s) td.textContent = fmtDuration((Date.now() - Date.parse(s)) / 1000);
  }
}, 1000);

let eventsAbort = null;
function setLiveStatus(text, cls) {
  const b = $('#live-status');
  b.textContent = text;
  b.className = 'badge ' + (cls || '');
}

async function startEvents() {
  stopEvents();
  const abort = new AbortController();
  eventsAbort = abort;
  let last = '';
  while (!abort.signal.aborted && key() && can('read')) {
    try {
      const headers = {'Authorization': 'Bearer ' + key(), 'Accept': 'text/event-stream'};
      if (last) headers['Last-Event-ID'] = last;
      const resp = await fetch('/api/events', {headers, signal: abort.signal});
      if (!resp.ok) throw new APIError(resp.status, 'event stream: HTTP ' + resp.status);
      setLiveStatus('live', 'ok');
      scheduleRefresh(); // what happened while not connected
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('data:')) data += line.slice(5).trim();
            else if (line.startsWith('id:')) last = line.slice(3).trim();
          }
          if (data) scheduleRefresh();
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e.status === 401) { sessionStorage.removeItem(KEY_ITEM); route(); return; }
    }
    setLiveStatus('reconnecting', 'bad');
    await sleep(2000);
  }
}

function stopEvents() {
  if (eventsAbort) eventsAbort.abort();
  eventsAbort = null;
  setLiveStatus('offline', '');
}

$('#start-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    const r = await api('POST', '/api/recordings/start', {applicationId: f.applicationId.value,
      conferenceId: f.conferenceId.value, conversationId: f.conversationId.value, video: f.video.checked});
    showError(r.error ? new Error(r.error.message) : null);
    scheduleRefresh();
  } catch (e) { showError(e); }
});

// ---- search ----

let nextPage = '';
async function search(append) {
  const f = $('#search-form');
  const q = new URLSearchParams();
  for (const name of ['conversationId', 'conferenceId', 'participant', 'state']) {
    if (f[name].value) q.set(name, f[name].value);
  }
  for (const name of ['from', 'to']) {
    if (f[name].value) q.set(name, new Date(f[name].value).toISOString().replace(/\.\d+Z$/, 'Z'));
  }
  q.set('limit', f.limit.value || '20');
  if (append && nextPage) q.set('pageToken', nextPage);
  try {
    const l = await api('GET', '/api/recordings?' + q);
    const rows = l.recordings.map((r) => el('tr', {'data-ref': refPath(r), 'data-instance': r.instanceId,
      onclick: () => { location.hash = '#/rec/' + refPath(r); }},
      el('td', {}, el('code', {}, r.conversationId), el('br'), el('small', {class: 'note'}, r.instanceId)),
      el('td', {class: 'state state-' + r.state}, stateText(r)),
      el('td', {}, (r.participants || []).join(', ')),
      el('td', {}, fmtTime(r.started)),
      el('td', {}, fmtDuration(r.duration))));
    const tbody = $('#search-table tbody');
    if (append) tbody.append(...rows); else tbody.replaceChildren(...rows);
    nextPage = l.nextPageToken || '';
    $('#search-more').hidden = !nextPage;
  } catch (e) { showError(e); }
}
$('#search-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(false); });
$('#search-more').addEventListener('click', () => search(true));

// ---- one recording ----

let shownMix = '';
async function loadRecording(ref) {
  const [rec, files] = await Promise.all([api('GET', recURL(ref)), api('GET', recURL(ref) + '/files')]);
  if (current !== ref) return;
  $('#rec-id').textContent = ref.conversationId + '/' + ref.recorderId + '/' + ref.instanceId;
  const dl = el('dl', {class: 'grid'});
  const row = (k, v) => { if (v) dl.append(el('dt', {}, k), el('dd', {id: 'rec-' + k.replace(/\W/g, '')}, v)); };
  row('state', rec.state + (rec.paused ? ' · paused' : ''));
  row('conference', rec.conferenceId);
  row('started', fmtTime(rec.started));
  row('stopped', fmtTime(rec.stopped));
  row('recovered', fmtTime(rec.recovered));
  if (rec.storageProfile) row('storage', rec.storageProfile.provider + ' ' + rec.storageProfile.url);
  if (rec.error) row('error', rec.error.code + ': ' + rec.error.message);
  $('#rec-summary').replaceChildren(dl);
  const summary = {...ref, state: rec.state, paused: rec.paused, conferenceId: rec.conferenceId,
    participants: [...new Set((rec.streams || []).map((s) => s.userId))],
    blackedOut: (liveRows.find((r) => r.instanceId === ref.instanceId) || {}).blackedOut || []};
  $('#rec-actions').replaceChildren(...actionButtons(summary));

  const byKind = (k) => files.files.filter((f) => f.kind === k);
  const mix = byKind('mix')[0];
  const audio = $('#mix');
  if (mix && mix.url) {
    if (shownMix !== mix.file + ref.instanceId) { audio.src = mix.url; shownMix = mix.file + ref.instanceId; }
  } else {
    audio.removeAttribute('src');
    shownMix = '';
  }
  $('#rec-tracks').replaceChildren(...byKind('track').map((f) => el('div', {class: 'track'},
    el('span', {}, (f.userId || '') + ' ', el('small', {class: 'note'}, f.file)),
    f.url ? el('audio', {controls: true, preload: 'metadata', src: f.url, 'data-file': f.file}) : el('span', {class: 'note'}, 'not uploaded yet'))));
  $('#rec-files tbody').replaceChildren(...files.files.map((f) => el('tr', {},
    el('td', {}, f.url ? el('a', {href: f.url, download: f.file.split('/').pop()}, f.file) : f.file),
    el('td', {}, f.kind), el('td', {}, f.size ? fmtSize(f.size) : ''),
    el('td', {}, el('small', {}, (f.sha256 || '').slice(0, 16))),
    el('td', {class: f.error ? 'error' : ''}, f.error ? 'failed: ' + f.error.message : f.uploaded ? 'uploaded ' + fmtTime(f.uploaded) : 'pending'))));

  let manifest = null;
  const mf = byKind('manifest')[0];
  if (mf && mf.url) {
    try { manifest = await (await fetch(mf.url)).json(); } catch (e) { manifest = null; }
  }
  $('#rec-manifest').textContent = manifest ? JSON.stringify(manifest, null, 2) : 'written when the recording ends';
  $('#rec-metadata').textContent = manifest && manifest.metadata ? JSON.stringify(manifest.metadata, null, 2) : '(none)';
  await showChat(byKind('chat')[0]);
  const sessions = (manifest && manifest.cobrowse) || [];
  $('#rec-cobrowse').replaceChildren(...(byKind('cobrowse').length ? byKind('cobrowse').map((f) => {
    const s = sessions.find((c) => c.file === f.file) || {};
    return el('div', {class: 'cobrowse-session', 'data-session': s.sessionId || ''},
      s.sessionId ? 'session ' + s.sessionId + (s.entries ? ' · ' + s.entries + ' events · ' : ' · ') : '',
      f.url ? el('a', {href: f.url}, f.file) : f.file);
  }) : [el('span', {class: 'note'}, '(none)')]));
  if (mix && mix.url && manifest) drawWaveform(mix.url, manifest).catch(() => {});
}

async function showChat(f) {
  const box = $('#rec-chat');
  if (!f || !f.url) { box.replaceChildren(el('span', {class: 'note'}, '(none)')); return; }
  try {
    const chat = await (await fetch(f.url)).json(); // {conversationId, chatTranscriptList: [seed 004's ChatTranscriptEntry]}
    const entries = chat.chatTranscriptList || [];
    box.replaceChildren(...entries.map((m) => el('div', {class: 'chat-entry'},
      el('small', {class: 'note'}, fmtTime(m.timeStamp)), ' ', el('strong', {}, m.userDisplayName || m.userId), ': ', m.transcript)),
      el('a', {href: f.url}, f.file));
  } catch (e) {
    box.replaceChildren(el('a', {href: f.url}, f.file));
  }
}

// drawWaveform draws the mix's envelope with the pause and blackout spans.
let drawn = '';
async function drawWaveform(url, manifest) {
  if (drawn === url) return;
  drawn = url;
  const canvas = $('#waveform');
  const g = canvas.getContext('2d');
  const data = await (await fetch(url)).arrayBuffer();
  const ctx = new (window.AudioContext || window.webkitAudioContext)();
  const buf = await ctx.decodeAudioData(data);
  ctx.close();
  const pcm = buf.getChannelData(0), W = canvas.width, H = canvas.height;
  g.clearRect(0, 0, W, H);
  const dur = buf.duration || 1;
  const spans = []; // what is marked, in seconds of the mix (data-spans, for tests and tools)
  const span = (kind, a, b, color, who) => {
    spans.push({kind, start: a, end: b, userId: who});
    g.fillStyle = color;
    g.fillRect(a / dur * W, 0, Math.max(1, (b - a) / dur * W), H);
  };
  const css = getComputedStyle(document.documentElement);
  for (const p of manifest.pauses || []) span('pause', p.mixStart ?? p.start, p.mixEnd ?? p.end, css.getPropertyValue('--pause'));
  for (const b of manifest.blackouts || []) span('blackout', b.mixStart ?? b.start, b.mixEnd ?? b.end, css.getPropertyValue('--blackout'), b.userId);
  canvas.setAttribute('data-spans', JSON.stringify(spans));
  canvas.title = spans.map((s) => s.kind + (s.userId ? ' ' + s.userId : '') + ' ' + s.start.toFixed(2) + '–' + s.end.toFixed(2) + ' s').join('; ');
  g.fillStyle = '#1b5fd1';
  const step = Math.max(1, Math.floor(pcm.length / W));
  for (let x = 0; x < W; x++) {
    let lo = 0, hi = 0;
    for (let i = x * step; i < Math.min(pcm.length, (x + 1) * step); i++) { lo = Math.min(lo, pcm[i]); hi = Math.max(hi, pcm[i]); }
    g.fillRect(x, (1 - hi) * H / 2, 1, Math.max(1, (hi - lo) * H / 2));
  }
  canvas.setAttribute('data-drawn', String(dur));
}

// ---- applications, their storage profiles, verification ----

async function loadApplications() {
  try {
    const l = await api('GET', '/api/applications');
    const sel = $('#verify-form select[name=applicationId]');
    const was = sel.value;
    sel.replaceChildren(...l.applications.map((a) => el('option', {value: a.applicationId}, a.applicationId)));
    if (l.applications.some((a) => a.applicationId === was)) sel.value = was;
    $('#verify-form button').disabled = l.applications.length === 0;
    $('#app-table tbody').replaceChildren(...l.applications.map((a) => el('tr', {'data-app': a.applicationId},
      el('td', {}, el('code', {}, a.applicationId)), el('td', {}, a.conference),
      el('td', {}, a.storage.provider), el('td', {}, a.storage.name), el('td', {}, a.storage.prefix || ''),
      el('td', {}, a.backupStorage ? a.backupStorage.provider + ' ' + a.backupStorage.name : ''))));
    $('#app-empty').hidden = l.applications.length > 0;
    $('#app-any').hidden = !l.anyApplication;
    $('#app-options').replaceChildren(...l.applications.map((a) => el('option', {value: a.applicationId})));
  } catch (e) { showError(e); }
}

$('#verify-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const app = ev.target.applicationId.value;
  if (!app) return;
  try {
    const r = await api('POST', '/api/storageproviders/' + encodeURIComponent(app) + '/verify');
    const checks = [['bucket', r.bucketTestResult], ['write', r.writeTestResult], ['read', r.readTestResult],
      ['modify', r.modifyTestResult], ['delete', r.deleteTestResult]];
    $('#verify-table tbody').replaceChildren(...checks.map(([name, c]) => el('tr', {'data-check': name},
      el('td', {}, name), el('td', {class: c && c.passed ? 'badge ok' : 'badge bad'}, c && c.passed ? 'passed' : 'failed'),
      el('td', {}, (c && c.message) || ''))));
  } catch (e) { showError(e); }
});

(async () => {
  if (key() && await loadSelf()) {
    startEvents();
    if (can('read')) loadApplications(); // the start form's list
  }
  route();
})();
