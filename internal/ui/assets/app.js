// weir dashboard. Plain JavaScript, no framework and nothing fetched from
// elsewhere: the server sends a snapshot of the cluster over server-sent
// events when the page connects, then the objects that changed.
(() => {
  'use strict';

  const SVG = 'http://www.w3.org/2000/svg';
  const NODE_W = 158, NODE_H = 46, COL_GAP = 46, ROW_GAP = 14, PAD = 24, INDENT = 22;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const actingAs = document.querySelector('meta[name="acting-as"]').content;
  const STATE_WORDS = {
    ready: 'Ready', failed: 'Failed', waiting: 'Waiting', progressing: 'Progressing',
    suspended: 'Suspended', missing: 'Missing',
  };
  const SHORT_KIND = {
    Kustomization: 'KS', HelmRelease: 'HR', GitRepository: 'GIT', OCIRepository: 'OCI',
    HelmRepository: 'HELM', HelmChart: 'CHART',
  };

  // Set once: tests check that a change arrives without a reload.
  window.__loadedAt = Date.now();

  const $ = (sel) => document.querySelector(sel);
  const clip = document.querySelector('#node-clip rect');
  clip.setAttribute('width', NODE_W);
  clip.setAttribute('height', NODE_H);
  const ui = {
    svg: $('#svg'), viewport: $('#viewport'), edges: $('#edges'), nodes: $('#nodes'),
    empty: $('#graph-empty'), detail: $('#detail'), sourcesBody: $('#sources tbody'),
    filter: $('#filter'), live: $('#live'), toasts: $('#toasts'),
  };

  const model = {
    nodes: new Map(), // id -> node (graph nodes)
    sources: new Map(), // id -> source
    edges: [],
    counts: null,
    selected: null, // id of the object in the detail pane
    detail: null, // its last Detail
    pos: new Map(), // id -> {x, y}
    size: { w: 0, h: 0 },
  };
  const view = { x: 0, y: 0, k: 1, moved: false };
  let stateFilter = null;

  // ---- small helpers ----------------------------------------------------

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function s(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c) e.append(c);
    return e;
  }

  const abbreviate = (str) => (str || '').replace(/\b[a-f0-9]{40,128}\b/g, (x) => x.slice(0, 8));

  function pad2(n) { return String(n).padStart(2, '0'); }

  // clock is a time as 12:01:03 today, or with its date otherwise.
  function clock(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    const hms = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return hms;
    return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${hms}`;
  }

  function ago(iso) {
    if (!iso) return '';
    const secs = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (secs < 60) return `${secs}s ago`;
    const mins = Math.round(secs / 60);
    if (mins < 60) return `${mins}m ago`;
    const hours = Math.round(mins / 60);
    if (hours < 48) return `${hours}h ago`;
    return `${Math.round(hours / 24)}d ago`;
  }

  function timeEl(iso) {
    return h('span', { class: 'time', title: iso ? new Date(iso).toLocaleString() : '' }, ago(iso));
  }

  const measure = document.createElement('canvas').getContext('2d');
  function fit(text, font, width) {
    measure.font = font;
    if (measure.measureText(text).width <= width) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (measure.measureText(text.slice(0, mid) + '…').width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + '…';
  }
  const bodyFont = getComputedStyle(document.body).fontFamily;

  function lookup(id) { return model.nodes.get(id) || model.sources.get(id); }

  // ---- the stream -------------------------------------------------------

  function connect() {
    const es = new EventSource('api/stream');
    // Live once the first snapshot is in: the server sends it when it has
    // read the cluster.
    es.addEventListener('error', () => setLive(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting'));
    es.addEventListener('snapshot', (e) => { setLive('open'); applySnapshot(JSON.parse(e.data)); });
    es.addEventListener('update', (e) => applyUpdate(JSON.parse(e.data)));
  }

  function setLive(state) {
    ui.live.dataset.live = state;
    ui.live.textContent = { open: 'live', connecting: 'reconnecting', closed: 'disconnected: reload the page' }[state];
  }

  function applySnapshot(snap) {
    model.nodes = new Map(snap.nodes.map((n) => [n.id, n]));
    model.sources = new Map((snap.sources || []).map((n) => [n.id, n]));
    model.edges = snap.edges || [];
    model.counts = snap.counts;
    renderGraph();
    renderSources();
    renderCounts();
    if (model.selected && lookup(model.selected)) refreshDetail();
    else if (model.selected) renderDetailGone();
    else if (location.hash.length > 1) select(decodeURIComponent(location.hash.slice(1)), false);
  }

  function applyUpdate(u) {
    let selectedChanged = false;
    for (const n of u.nodes) {
      model.nodes.set(n.id, n);
      selectedChanged ||= n.id === model.selected;
    }
    for (const n of u.sources) {
      model.sources.set(n.id, n);
      selectedChanged ||= n.id === model.selected;
    }
    model.counts = u.counts;
    for (const n of u.nodes) updateNode(n);
    styleEdges();
    if (u.sources.length) renderSources();
    renderCounts();
    if (selectedChanged) refreshDetail();
  }

  // ---- the graph --------------------------------------------------------

  function renderGraph() {
    const nodes = [...model.nodes.values()];
    ui.empty.hidden = nodes.length > 0;
    const columns = new Map(); // level -> number of nodes
    const indents = new Map(); // level -> deepest indent
    for (const n of nodes) {
      columns.set(n.level, (columns.get(n.level) || 0) + 1);
      indents.set(n.level, Math.max(indents.get(n.level) || 0, n.indent || 0));
    }
    const tallest = Math.max(1, ...columns.values());
    const levels = Math.max(0, ...nodes.map((n) => n.level)) + 1;
    const colX = [PAD];
    for (let l = 0; l < levels; l++) colX.push(colX[l] + NODE_W + (indents.get(l) || 0) * INDENT + COL_GAP);
    // Edges that close a cycle loop over the top: leave room for them.
    const top = PAD + (model.edges.some((e) => e.type === 'dependsOn' &&
      (model.nodes.get(e.from) || {}).level >= (model.nodes.get(e.to) || {}).level) ? NODE_H : 0);
    model.pos.clear();
    for (const n of nodes) {
      const inColumn = columns.get(n.level);
      model.pos.set(n.id, {
        x: colX[n.level] + (n.indent || 0) * INDENT,
        y: top + (n.row + (tallest - inColumn) / 2) * (NODE_H + ROW_GAP),
      });
    }
    model.size = {
      w: colX[levels] - COL_GAP + PAD,
      h: top + PAD + tallest * NODE_H + (tallest - 1) * ROW_GAP,
    };

    ui.edges.replaceChildren(...model.edges.map(edgeElement).filter(Boolean));
    ui.nodes.replaceChildren(...nodes.map(nodeElement));
    styleEdges();
    applyFilter();
    if (!view.moved) fitView();
    const hint = $('#graph-hint');
    const ks = nodes.filter((n) => n.kind === 'Kustomization' && n.state !== 'missing').length;
    const hr = nodes.filter((n) => n.kind === 'HelmRelease' && n.state !== 'missing').length;
    hint.textContent = `${ks} Kustomization${ks === 1 ? '' : 's'}, ${hr} HelmRelease${hr === 1 ? '' : 's'}`;
  }

  function edgeElement(e) {
    const a = model.pos.get(e.from), b = model.pos.get(e.to);
    if (!a || !b) return null;
    const attrs = { class: `edge ${e.type}`, 'data-from': e.from, 'data-to': e.to, 'data-type': e.type };
    if (e.type === 'applied' && b.x > a.x && b.x - a.x <= INDENT && b.y > a.y) {
      // What a Kustomization applied hangs below it, as in a tree.
      attrs.d = `M${a.x + 10},${a.y + NODE_H} V${b.y + NODE_H / 2} H${b.x - 1}`;
      return s('path', attrs);
    }
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    if (x2 > x1) {
      const dx = Math.max(24, (x2 - x1) / 2);
      attrs.d = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
    } else {
      // An edge back to the left closes a cycle: from the top of one node
      // to the top of the other, over what lies between.
      const ax = a.x + NODE_W / 2, bx = b.x + NODE_W / 2, ay = a.y, by = b.y - 2;
      const high = Math.min(ay, by) - NODE_H;
      attrs.d = `M${ax},${ay} C${ax},${high} ${bx},${high} ${bx},${by}`;
    }
    return s('path', attrs);
  }

  function nodeElement(n) {
    const p = model.pos.get(n.id);
    const g = s('g', {
      class: 'node', transform: `translate(${p.x},${p.y})`, tabindex: '0', role: 'button',
      'data-id': n.id,
    });
    const badge = SHORT_KIND[n.kind] || n.kind;
    g.append(
      s('title'),
      s('g', { 'clip-path': 'url(#node-clip)' },
        s('rect', { class: 'tint', width: NODE_W, height: NODE_H }),
        s('rect', { class: 'bar', width: 5, height: NODE_H })),
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 8 }),
      s('rect', { class: 'badge-box', x: 13, y: 7, width: badge.length * 6.5 + 8, height: 14, rx: 3 }),
      s('text', { class: 'badge', x: 17, y: 17.5, text: badge }),
      s('text', { class: 'meta', x: 13 + badge.length * 6.5 + 14, y: 18 }),
      s('text', { class: 'name', x: 13, y: 37 }),
      s('circle', { class: 'status', cx: NODE_W - 14, cy: 14, r: 5 }),
    );
    g.addEventListener('click', (ev) => { if (!dragged) { ev.stopPropagation(); select(n.id, true); } });
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(n.id, true); } });
    fillNode(g, n);
    return g;
  }

  function fillNode(g, n) {
    g.dataset.kind = n.kind;
    g.dataset.namespace = n.namespace;
    g.dataset.name = n.name;
    g.dataset.ready = n.ready;
    g.dataset.state = n.state;
    g.dataset.reason = n.reason || '';
    g.classList.toggle('selected', n.id === model.selected);
    const badgeW = (SHORT_KIND[n.kind] || n.kind).length * 6.5 + 8;
    g.querySelector('.meta').textContent = fit(n.state === 'missing' ? `missing · ${n.namespace}` : n.namespace,
      `11px ${bodyFont}`, NODE_W - badgeW - 44);
    g.querySelector('.name').textContent = fit(n.name, `600 13.5px ${bodyFont}`, NODE_W - 22);
    g.querySelector('title').textContent = `${n.kind} ${n.namespace}/${n.name}: ${STATE_WORDS[n.state]}` +
      (n.why ? `\n${n.why}` : '');
    g.setAttribute('aria-label', `${n.kind} ${n.namespace}/${n.name}, ${STATE_WORDS[n.state]}`);
  }

  function updateNode(n) {
    const g = ui.nodes.querySelector(`g.node[data-id="${CSS.escape(n.id)}"]`);
    if (!g) return;
    const before = g.dataset.state;
    fillNode(g, n);
    if (before !== n.state) {
      g.classList.remove('flash');
      void g.getBBox();
      g.classList.add('flash');
    }
  }

  // styleEdges marks the arrows out of objects that are not Ready: what
  // they lead to waits.
  function styleEdges() {
    for (const p of ui.edges.children) {
      const from = model.nodes.get(p.dataset.from);
      const held = p.dataset.type === 'dependsOn' && from && from.state !== 'ready';
      p.classList.toggle('held', held);
      const hl = model.selected && (p.dataset.from === model.selected || p.dataset.to === model.selected);
      p.classList.toggle('hl', !!hl);
      p.setAttribute('marker-end', `url(#${p.dataset.type === 'applied' ? 'arrow-applied' : held && !hl ? 'arrow-held' : 'arrow'})`);
    }
  }

  // ---- pan and zoom -----------------------------------------------------

  function setView() {
    ui.viewport.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`);
  }

  function fitView() {
    const r = ui.svg.getBoundingClientRect();
    if (!r.width || !r.height) return;
    const k = Math.min(1.15, r.width / model.size.w, r.height / model.size.h);
    view.k = Math.max(0.2, k);
    view.x = (r.width - model.size.w * view.k) / 2;
    view.y = (r.height - model.size.h * view.k) / 2;
    setView();
  }

  let drag = null, dragged = false;
  ui.svg.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    dragged = false;
  });
  window.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    dragged = true;
    ui.svg.classList.add('dragging');
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    view.moved = true;
    setView();
  });
  window.addEventListener('pointerup', () => {
    drag = null;
    ui.svg.classList.remove('dragging');
    setTimeout(() => { dragged = false; }, 0);
  });
  ui.svg.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = ui.svg.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const k = Math.min(2.5, Math.max(0.2, view.k * Math.exp(-e.deltaY * 0.0015)));
    view.x = px - (px - view.x) * (k / view.k);
    view.y = py - (py - view.y) * (k / view.k);
    view.k = k;
    view.moved = true;
    setView();
  }, { passive: false });
  ui.svg.addEventListener('click', () => { if (!dragged) select(null, true); });
  $('#fit').addEventListener('click', () => { view.moved = false; fitView(); });
  window.addEventListener('resize', () => { if (!view.moved) fitView(); });

  // ---- filter -----------------------------------------------------------

  function matches(n) {
    const q = ui.filter.value.trim().toLowerCase();
    const text = !q || `${n.namespace}/${n.name} ${n.kind}`.toLowerCase().includes(q);
    const st = !stateFilter || n.state === stateFilter || (stateFilter === 'progressing' && n.state === 'waiting');
    return text && st;
  }

  function applyFilter() {
    const active = ui.filter.value.trim() !== '' || stateFilter;
    for (const g of ui.nodes.children) {
      const n = model.nodes.get(g.dataset.id);
      g.classList.toggle('dim', !!active && !!n && !matches(n));
    }
    for (const p of ui.edges.children) {
      const a = model.nodes.get(p.dataset.from), b = model.nodes.get(p.dataset.to);
      p.classList.toggle('dim', !!active && !(a && matches(a) && b && matches(b)));
    }
    for (const tr of ui.sourcesBody.children) {
      const n = model.sources.get(tr.dataset.id);
      tr.hidden = !!n && !matches(n);
    }
  }
  ui.filter.addEventListener('input', applyFilter);
  for (const b of document.querySelectorAll('.count')) {
    b.addEventListener('click', () => {
      stateFilter = stateFilter === b.dataset.state ? null : b.dataset.state;
      for (const o of document.querySelectorAll('.count')) o.setAttribute('aria-pressed', String(o.dataset.state === stateFilter));
      applyFilter();
    });
  }

  // ---- header and sources -----------------------------------------------

  function renderCounts() {
    const c = model.counts || { ready: 0, failed: 0, progressing: 0, suspended: 0 };
    for (const b of document.querySelectorAll('.count')) {
      const v = c[b.dataset.state] || 0;
      b.querySelector('b').textContent = v;
      b.classList.toggle('nonzero', v > 0);
    }
  }

  function renderSources() {
    const rows = [...model.sources.values()].map((n) => {
      const tr = h('tr', {
        'data-id': n.id, 'data-kind': n.kind, 'data-namespace': n.namespace, 'data-name': n.name,
        'data-ready': n.ready, 'data-state': n.state, class: n.id === model.selected ? 'selected' : '',
        onclick: () => select(n.id, true),
      },
      h('td', { class: 'kind' }, n.kind),
      h('td', {}, h('span', { class: 'ns' }, `${n.namespace}/`), n.name),
      h('td', { class: 'url', title: n.url || '' }, n.url || ''),
      h('td', { class: 'mono', title: n.revision || '' }, abbreviate(n.revision)),
      h('td', { class: 'status', title: n.why || n.message || '' },
        h('i', { class: `dot state-${n.state}` }), STATE_WORDS[n.state]));
      return tr;
    });
    if (!rows.length) rows.push(h('tr', { class: 'none' }, h('td', { colspan: '5', class: 'muted' }, 'No GitRepositories, OCIRepositories, HelmRepositories or HelmCharts.')));
    ui.sourcesBody.replaceChildren(...rows);
    const count = model.sources.size;
    $('#sources-hint').textContent = count ? `${count} source${count === 1 ? '' : 's'}` : 'none';
    applyFilter();
  }

  // ---- detail pane ------------------------------------------------------

  function select(id, push) {
    model.selected = id && lookup(id) ? id : null;
    model.detail = null;
    for (const g of ui.nodes.children) g.classList.toggle('selected', g.dataset.id === model.selected);
    for (const tr of ui.sourcesBody.children) tr.classList.toggle('selected', tr.dataset.id === model.selected);
    styleEdges();
    if (push) history.replaceState(null, '', model.selected ? `#${encodeURIComponent(model.selected)}` : location.pathname);
    if (!model.selected) {
      ui.detail.replaceChildren(h('div', { class: 'detail-empty' },
        h('h2', {}, 'Select an object'),
        h('p', {}, 'Click a node of the graph or a source to see its conditions, source and revision, what it applied, its recent events and, when it is not Ready, what holds it.')));
      return;
    }
    renderDetail();
    refreshDetail();
  }

  let fetching = null, refetch = false;
  async function refreshDetail() {
    if (fetching) { refetch = true; return; }
    const id = model.selected;
    const n = lookup(id);
    if (!n || n.state === 'missing') { renderDetail(); return; }
    const q = new URLSearchParams({ kind: n.kind, namespace: n.namespace, name: n.name });
    fetching = fetch(`api/object?${q}`, { headers: { Accept: 'application/json' } })
      .then(async (r) => {
        const body = await r.json().catch(() => ({}));
        if (model.selected !== id) return;
        model.detail = r.ok ? body : { error: body.error || `${r.status} ${r.statusText}` };
        renderDetail();
      })
      .catch((err) => { if (model.selected === id) { model.detail = { error: String(err) }; renderDetail(); } })
      .finally(() => {
        fetching = null;
        if (refetch) { refetch = false; refreshDetail(); }
      });
  }

  function renderDetailGone() {
    ui.detail.replaceChildren(h('div', { class: 'detail-empty' },
      h('h2', {}, 'This object is gone'),
      h('p', {}, `${model.selected.replaceAll('/', ' ')} was deleted.`)));
  }

  function refLink(id, label) {
    const known = lookup(id);
    if (!known) return h('span', {}, label || id.replace('/', ' '));
    return h('a', { class: 'ref', href: `#${encodeURIComponent(id)}`, onclick: (e) => { e.preventDefault(); select(id, true); } },
      label || `${known.kind} ${known.namespace}/${known.name}`);
  }

  // The pane keeps its parts across renders, and the action buttons as long
  // as they stay the same, so that a click never lands on a button that a
  // refresh has just replaced.
  const pane = { head: null, why: null, actions: null, body: null, actionsKey: '' };

  function renderDetail() {
    const id = model.selected;
    const n = lookup(id);
    if (!n) { renderDetailGone(); return; }
    const d = model.detail && !model.detail.error ? model.detail : null;
    const isGraph = model.nodes.has(id);
    if (!pane.head || !ui.detail.contains(pane.head)) {
      pane.head = h('div', { class: 'detail-head' });
      pane.why = h('div', { class: 'why', id: 'why' });
      pane.actions = h('div', { class: 'actions' });
      pane.body = h('div', { class: 'detail-body' });
      pane.actionsKey = '';
      ui.detail.replaceChildren(pane.head, pane.why, pane.actions, pane.body);
    }
    ui.detail.dataset.id = id;
    ui.detail.toggleAttribute('data-loaded', !!d);

    pane.head.replaceChildren(
      h('div', { class: 'detail-kind' }, n.kind),
      h('div', { class: 'detail-title' },
        h('h2', {}, n.name),
        h('span', { class: 'pill', 'data-state': n.state }, h('i', { class: `dot state-${n.state}` }), STATE_WORDS[n.state])),
      h('div', { class: 'detail-ns' }, `namespace ${n.namespace}`));

    pane.why.hidden = n.state === 'ready' || !n.why;
    pane.why.dataset.state = n.state;
    const since = n.since ? h('span', { class: 'since', title: new Date(n.since).toLocaleString() }, ` (since ${clock(n.since)})`) : null;
    pane.why.replaceChildren((n.why || '').replace(/\.$/, ''), since || '');

    const actionsKey = n.state === 'missing' ? 'none' : `${id}|${!!n.suspended}`;
    if (actionsKey !== pane.actionsKey) {
      pane.actionsKey = actionsKey;
      const btn = (action, label, primary) => h('button', {
        type: 'button', 'data-action': action, class: primary ? 'primary' : '',
        onclick: (e) => act(action, lookup(id), e.currentTarget),
      }, label);
      pane.actions.hidden = n.state === 'missing';
      pane.actions.replaceChildren(...(n.state === 'missing' ? [] : [
        btn('reconcile', 'Reconcile', true),
        n.suspended ? btn('resume', 'Resume', false) : btn('suspend', 'Suspend', false),
        actingAs ? h('span', { class: 'as', title: 'Actions impersonate this user, so the cluster\'s RBAC decides' }, `as ${actingAs}`) : null,
      ].filter(Boolean)));
    }
    const parts = [];

    if (model.detail && model.detail.error) {
      parts.push(h('div', { class: 'section' }, h('p', { class: 'muted' }, model.detail.error)));
    }

    // Overview
    const facts = [];
    const fact = (k, ...v) => { if (v.some((x) => x !== '' && x !== null && x !== undefined)) facts.push(h('dt', {}, k), h('dd', {}, ...v)); };
    if (d && d.source) fact('Source', refLink(d.source.id, `${d.source.kind} ${d.source.namespace}/${d.source.name}`));
    if (n.url) fact('URL', h('span', { class: 'mono' }, n.url));
    if (d && d.path) fact('Path', h('span', { class: 'mono' }, d.path));
    if (d && d.artifactRevision) fact('Revision', h('span', { class: 'mono', title: d.artifactRevision }, abbreviate(d.artifactRevision)));
    if (d && d.lastAppliedRevision) fact('Applied', h('span', { class: 'mono', title: d.lastAppliedRevision }, abbreviate(d.lastAppliedRevision)));
    if (d && d.lastAttemptedRevision && d.lastAttemptedRevision !== d.lastAppliedRevision) {
      fact('Attempted', h('span', { class: 'mono', title: d.lastAttemptedRevision }, abbreviate(d.lastAttemptedRevision)));
    }
    if (!d && n.revision) fact('Revision', h('span', { class: 'mono' }, abbreviate(n.revision)));
    if (isGraph) {
      const deps = model.edges.filter((e) => e.to === id && e.type === 'dependsOn').map((e) => refLink(e.from));
      const dependents = model.edges.filter((e) => e.from === id && e.type === 'dependsOn').map((e) => refLink(e.to));
      if (deps.length) fact('Depends on', h('div', { class: 'refs' }, deps));
      if (dependents.length) fact('Dependents', h('div', { class: 'refs' }, dependents));
      if (n.appliedBy) fact('Applied by', refLink(n.appliedBy));
    }
    if (d && d.interval) fact('Interval', d.interval);
    if (d) fact('Generation', `${d.generation}` + (d.observedGeneration !== d.generation ? ` (reconciled: ${d.observedGeneration || 'none'})` : ''));
    if (d && d.requestedAt) {
      fact('Requested', h('span', { title: d.requestedAt }, clock(d.requestedAt)),
        d.handledAt === d.requestedAt ? ' · handled' : ' · not handled yet');
    }
    if (facts.length) parts.push(h('div', { class: 'section' }, h('dl', { class: 'facts' }, facts)));

    if (d) {
      parts.push(section('Conditions', d.conditions ? d.conditions.length : 0,
        d.conditions && d.conditions.length
          ? h('div', { class: 'conds' }, d.conditions.map((c) => h('div', { class: 'cond', 'data-type': c.type },
            h('span', {}, h('span', { class: 'type' }, c.type), ' ', h('span', { class: `st ${c.status}` }, c.status)),
            h('span', { class: 'reason' }, c.reason || ''),
            timeEl(c.lastTransitionTime),
            c.message ? h('span', { class: 'msg' }, c.message) : null)))
          : h('p', { class: 'muted' }, 'No conditions yet: no controller has reported on it.')));

      if (d.releases && d.releases.length) {
        parts.push(section('Helm releases', d.releases.length, h('ul', { class: 'inventory' }, d.releases.slice(0, 5).map((r) =>
          h('li', { class: 'rel' },
            h('span', { class: 'k' }, `v${r.version} ${r.status}`),
            h('span', {}, `${r.chart}@${r.chartVersion}`, r.appVersion ? h('span', { class: 'muted' }, ` (app ${r.appVersion})`) : null,
              r.deployed ? h('span', { class: 'muted' }, ` · ${ago(r.deployed)}`) : null))))));
      }

      if (isGraph) {
        const more = d.inventoryTotal > d.inventory.length ? h('p', { class: 'muted' }, `and ${d.inventoryTotal - d.inventory.length} more`) : null;
        parts.push(section('Inventory', d.inventoryTotal,
          d.inventory.length
            ? h('ul', { class: 'inventory' }, d.inventory.map((e) => {
              const target = e.kind === 'Kustomization' || e.kind === 'HelmRelease' ? `${e.kind}/${e.namespace}/${e.name}` : null;
              const name = e.namespace ? `${e.namespace}/${e.name}` : e.name;
              return h('li', {}, h('span', { class: 'k' }, e.kind), target && lookup(target) ? refLink(target, name) : h('span', {}, name));
            }))
            : h('p', { class: 'muted' }, 'Nothing applied yet.'), more));
      }

      parts.push(section('Recent events', d.events.length,
        d.eventsError ? h('p', { class: 'muted' }, d.eventsError) : null,
        d.events.length
          ? h('ul', { class: 'events' }, d.events.map((e) => h('li', { class: 'event' },
            h('span', { class: `type ${e.type}` }, e.type),
            h('span', { class: 'reason' }, e.reason, e.count > 1 ? h('span', { class: 'muted' }, ` ×${e.count}`) : null),
            timeEl(e.time),
            h('span', { class: 'msg' }, e.message))))
          : (d.eventsError ? null : h('p', { class: 'muted' }, 'No recent events.'))));
    }
    pane.body.replaceChildren(...parts);
  }

  function section(title, count, ...body) {
    return h('div', { class: 'section' }, h('h3', {}, title, count ? h('span', { class: 'n' }, ` · ${count}`) : null), ...body);
  }

  // ---- actions ----------------------------------------------------------

  const PAST = { reconcile: 'Reconcile requested', suspend: 'Suspended', resume: 'Resumed' };

  async function act(action, n, button) {
    button.disabled = true;
    try {
      const r = await fetch(`api/${action}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
        body: JSON.stringify({ kind: n.kind, namespace: n.namespace, name: n.name }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        toast('ok', `${PAST[action]}`, `${n.kind} ${n.namespace}/${n.name}`);
      } else {
        const title = r.status === 403 ? 'Forbidden' : r.status === 401 ? 'Not signed in' : `Could not ${action}`;
        toast('error', title, body.error || `${r.status} ${r.statusText}`);
      }
    } catch (err) {
      toast('error', `Could not ${action}`, String(err));
    } finally {
      button.disabled = false;
    }
  }

  function toast(kind, title, text) {
    const t = h('div', { class: 'toast', 'data-kind': kind }, h('span', { class: 'title' }, title), text);
    ui.toasts.append(t);
    setTimeout(() => t.remove(), kind === 'error' ? 15000 : 5000);
  }

  window.addEventListener('hashchange', () => {
    const id = decodeURIComponent(location.hash.slice(1));
    if (id !== model.selected) select(id, false);
  });

  renderCounts();
  connect();
})();
