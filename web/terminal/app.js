// berth's web terminal page (issue 16, seed 004): tabs over one
// `/terminal/ws/multi` WebSocket, each tab an xterm.js terminal showing one
// engine session.
//
// Resume: every `output`/`scrollback` message carries the session's output
// offset after its bytes (berth's extension). After a dropped connection the
// page still shows what it had, so it reattaches each tab with that offset
// and gets only what it missed (or the current screen when the ring dropped
// it). After a reload the terminals are empty, so it reattaches with no
// offset and gets the whole output (or the screen once the ring wrapped):
// the same screens. sessionStorage keeps, per browser tab, the open tabs'
// ids and names, their order, the active tab and the last offsets seen.
//
// Plain JS on the UMD builds of xterm.js and its addons (globals
// `Terminal`, `FitAddon`, `WebLinksAddon`); no framework, no bundler.
(() => {
  'use strict';

  const params = new URLSearchParams(location.search);
  const workspace = params.get('workspace') || params.get('workspaceId') || '';
  const key = (k) => `berth.terminal.${workspace}.${k}`;

  const tabsEl = document.getElementById('tabs');
  const termsEl = document.getElementById('terms');
  const statusEl = document.getElementById('status');

  /** id -> {id, name, term, fit, el, tabEl, labelEl, offset, pending, timer, sentAt} */
  const tabs = new Map();
  let active = sessionStorage.getItem(key('active')) || null;
  let saved = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(key('tabs')) || '[]');
  } catch (_) {
    saved = [];
  }
  let ws = null;
  let retries = 0;
  let lastHeard = 0;
  let listed = false;

  // The server closes a socket that sends more than 30 messages a second
  // (burst 60): keystrokes are coalesced to at most one message per 40 ms.
  const INPUT_GAP_MS = 40;

  function setStatus(text, down) {
    statusEl.textContent = text;
    statusEl.classList.toggle('down', !!down);
  }

  function save() {
    const list = [...tabs.values()].map((t) => ({ id: t.id, name: t.name, offset: t.offset }));
    sessionStorage.setItem(key('tabs'), JSON.stringify(list));
    sessionStorage.setItem(key('active'), active || '');
  }

  let saveTimer = null;
  function saveSoon() {
    if (saveTimer === null) {
      saveTimer = setTimeout(() => {
        saveTimer = null;
        save();
      }, 250);
    }
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  function newId() {
    const r = new Uint8Array(6);
    crypto.getRandomValues(r);
    return 't-' + Date.now().toString(36) + '-' + [...r].map((b) => b.toString(16).padStart(2, '0')).join('');
  }

  function flushInput(t) {
    t.timer = null;
    if (!t.pending) return;
    if (send({ type: 'input', sessionId: t.id, data: t.pending })) {
      t.pending = '';
      t.sentAt = performance.now();
    }
  }

  function queueInput(t, data) {
    t.pending += data;
    if (t.timer !== null) return;
    const wait = t.sentAt + INPUT_GAP_MS - performance.now();
    if (wait <= 0) flushInput(t);
    else t.timer = setTimeout(() => flushInput(t), wait);
  }

  async function copySelection(t) {
    const text = t.term.getSelection();
    if (text) {
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        setStatus('copy refused by the browser: ' + e.message, true);
      }
    }
  }

  function addTab(id, name) {
    if (tabs.has(id)) return tabs.get(id);
    const el = document.createElement('div');
    el.className = 'term';
    el.dataset.sessionId = id;
    termsEl.appendChild(el);
    const term = new Terminal({
      cursorBlink: true,
      scrollback: 5000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      theme: { background: '#1e1e1e' },
    });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.loadAddon(new WebLinksAddon.WebLinksAddon());
    term.open(el);
    try {
      fit.fit();
    } catch (_) {
      // not laid out yet
    }

    const tabEl = document.createElement('div');
    tabEl.className = 'tab';
    tabEl.setAttribute('role', 'tab');
    tabEl.dataset.sessionId = id;
    const labelEl = document.createElement('span');
    labelEl.className = 'label';
    labelEl.title = 'Double-click to rename';
    const closeEl = document.createElement('button');
    closeEl.className = 'close';
    closeEl.type = 'button';
    closeEl.title = 'Close this terminal (ends its shell)';
    closeEl.textContent = '×';
    tabEl.append(labelEl, closeEl);
    tabsEl.appendChild(tabEl);

    const t = { id, name, term, fit, el, tabEl, labelEl, offset: null, pending: '', timer: null, sentAt: 0, ready: false };
    labelEl.textContent = name;
    tabs.set(id, t);

    tabEl.addEventListener('click', () => activate(id));
    labelEl.addEventListener('dblclick', () => {
      const next = prompt('Rename terminal', t.name);
      if (next && next !== t.name) send({ type: 'rename_session', sessionId: id, name: next });
    });
    closeEl.addEventListener('click', (e) => {
      e.stopPropagation();
      send({ type: 'close_session', sessionId: id });
    });
    term.onData((d) => queueInput(t, d));
    term.onBinary((d) => queueInput(t, d));
    // A session being created gets its size in create_session.
    term.onResize(({ rows, cols }) => {
      if (t.ready) send({ type: 'resize', sessionId: id, rows, cols });
    });
    // Ctrl+Shift+C copies the selection (plain Ctrl+C is the terminal's
    // interrupt). Ctrl+Shift+V is left to the browser, whose paste event
    // xterm.js turns into input (bracketed when the program asked).
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        copySelection(t);
        return false;
      }
      if (e.code === 'KeyV') return false;
      return true;
    });
    save();
    return t;
  }

  function removeTab(id) {
    const t = tabs.get(id);
    if (!t) return;
    if (t.timer !== null) clearTimeout(t.timer);
    t.term.dispose();
    t.el.remove();
    t.tabEl.remove();
    tabs.delete(id);
    if (active === id) {
      const next = tabs.keys().next();
      active = null;
      if (!next.done) activate(next.value);
    }
    save();
  }

  /** Fits every tab to the window (hidden tabs keep their layout). */
  function fitAll() {
    for (const t of tabs.values()) {
      try {
        t.fit.fit();
      } catch (_) {
        // not laid out yet
      }
    }
  }

  function activate(id) {
    const t = tabs.get(id);
    if (!t) return;
    active = id;
    for (const o of tabs.values()) {
      const on = o.id === id;
      o.el.classList.toggle('active', on);
      o.tabEl.classList.toggle('active', on);
      o.tabEl.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    fitAll();
    t.term.focus();
    save();
  }

  function createTab() {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      setStatus('not connected: cannot open a terminal now', true);
      return;
    }
    const id = newId();
    const t = addTab(id, 'Terminal ' + (tabs.size + 1));
    t.offset = 0; // a new session: everything it prints is live
    activate(id);
    send({ type: 'create_session', sessionId: id, name: t.name, rows: t.term.rows, cols: t.term.cols });
  }

  function onList(sessions) {
    const live = new Map(sessions.map((s) => [s.sessionId, s]));
    for (const id of [...tabs.keys()]) if (!live.has(id)) removeTab(id);
    const known = saved.map((s) => s.id).filter((id) => live.has(id));
    const rest = sessions
      .filter((s) => !known.includes(s.sessionId))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
      .map((s) => s.sessionId);
    for (const id of [...known, ...rest]) {
      const s = live.get(id);
      const t = tabs.get(id) || addTab(id, s.name || id);
      t.ready = true;
      if (s.name && s.name !== t.name) {
        t.name = s.name;
        t.labelEl.textContent = s.name;
      }
    }
    if (!active || !tabs.has(active)) active = tabs.keys().next().value || null;
    if (active) activate(active);
    for (const t of tabs.values()) {
      // A terminal that still shows output asks only for what it missed;
      // an empty one (a reload) asks for the screen.
      const msg = { type: 'reattach_session', sessionId: t.id, rows: t.term.rows, cols: t.term.cols };
      if (t.offset !== null) msg.offset = t.offset;
      send(msg);
    }
    if (tabs.size === 0 && !listed) createTab();
    listed = true;
    save();
  }

  function onMessage(m) {
    const t = m.sessionId ? tabs.get(m.sessionId) : null;
    switch (m.type) {
      case 'output':
      case 'scrollback':
        if (!t) return;
        t.term.write(m.data);
        if (typeof m.offset === 'number') t.offset = m.offset;
        saveSoon();
        break;
      case 'session_list':
        onList(m.sessions || []);
        break;
      case 'session_created':
        if (t) {
          t.ready = true;
          // The window may have changed while the session started.
          fitAll();
          send({ type: 'resize', sessionId: t.id, rows: t.term.rows, cols: t.term.cols });
        }
        break;
      case 'session_closed':
        if (t) removeTab(m.sessionId);
        break;
      case 'session_renamed':
        if (t) {
          t.name = m.name;
          t.labelEl.textContent = m.name;
          save();
        }
        break;
      case 'error':
        setStatus(m.error || 'error', true);
        break;
      default:
        break;
    }
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/terminal/ws/multi?workspace=${encodeURIComponent(workspace)}`;
    setStatus(retries ? 'reconnecting…' : 'connecting…', retries > 0);
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      retries = 0;
      lastHeard = performance.now();
      setStatus('connected');
      send({ type: 'list_sessions' });
    };
    sock.onmessage = (e) => {
      lastHeard = performance.now();
      if (typeof e.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      onMessage(m);
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      retries += 1;
      const delay = Math.min(500 * 2 ** Math.min(retries - 1, 3), 4000);
      const why = e.code === 1008 ? ' (too many messages)' : '';
      setStatus(`disconnected${why}; retrying in ${(delay / 1000).toFixed(1)} s`, true);
      setTimeout(connect, delay);
    };
  }

  // A dead network does not always close the socket: ask for a pong every
  // 20 s and reconnect when nothing was heard for 45 s.
  setInterval(() => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (performance.now() - lastHeard > 45000) {
      ws.close();
      return;
    }
    send({ type: 'ping' });
  }, 20000);

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitAll, 60);
  });
  window.addEventListener('pagehide', save);
  document.getElementById('new-tab').addEventListener('click', createTab);

  // Read-only view for people debugging the page (and the browser test).
  window.berthTerminal = {
    tabs: () => [...tabs.values()].map((t) => ({ id: t.id, name: t.name, rows: t.term.rows, cols: t.term.cols, offset: t.offset })),
    active: () => active,
    connected: () => !!ws && ws.readyState === WebSocket.OPEN,
    /** The buffer's lines (scrollback and screen), trailing blanks cut. */
    text: (id) => {
      const t = tabs.get(id || active);
      if (!t) return null;
      const b = t.term.buffer.active;
      const lines = [];
      for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
      while (lines.length && lines[lines.length - 1] === '') lines.pop();
      return lines.join('\n');
    },
    /** The visible rows only. */
    screen: (id) => {
      const t = tabs.get(id || active);
      if (!t) return null;
      const b = t.term.buffer.active;
      const lines = [];
      for (let i = 0; i < t.term.rows; i++) {
        const l = b.getLine(b.viewportY + i);
        lines.push(l ? l.translateToString(true) : '');
      }
      return lines.join('\n');
    },
    /** Closes the socket as a network drop would; the page reconnects. */
    dropConnection: () => {
      if (ws) ws.close();
    },
  };

  connect();
})();
