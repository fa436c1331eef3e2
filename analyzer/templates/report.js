// The findings table: sorting, filtering and paging over the JSON in #findings-data.
// Cells are written with textContent only, so no report value is ever parsed as markup.
(function () {
  'use strict';
  var source = document.getElementById('findings-data');
  var tbody = document.querySelector('#findings-table tbody');
  if (!source || !tbody) { return; }
  var data = JSON.parse(source.textContent);
  var rows = data.rows, keys = data.keys, url = data.trace_url;
  var PAGE = 100;
  // Filtering 100,000 rows on every keystroke stays smooth with a short pause first.
  var DELAY = rows.length > 20000 ? 150 : 0;
  var hay = new Array(rows.length);
  // A message judged on the conventions alone (no seq) is named by its id.
  function seqText(r) { return r[3] == null ? 'id ' + r[6] : String(r[3]); }
  for (var i = 0; i < rows.length; i++) {
    var r = rows[i];
    hay[i] = [keys[r[0]], r[1], r[2], seqText(r), r[4] || '', r[5] || '', r[6], r[7].join(' '), r[8]]
      .join('\u0001').toLowerCase();
  }
  var state = { text: '', kind: -1, col: -1, dir: 1, page: 0 };
  var view = [];
  var filter = document.getElementById('filter');
  var kind = document.getElementById('kind');
  var shown = document.getElementById('shown');
  var prev = document.getElementById('prev');
  var next = document.getElementById('next');

  function value(r, c) {
    if (c === 0) { return keys[r[0]]; }
    if (c === 3) { return r[3] == null ? -1 : r[3]; }
    if (c === 7) { return r[7].join(' '); }
    return r[c] == null ? '' : r[c];
  }

  function compute() {
    var t = state.text.toLowerCase();
    view = [];
    for (var i = 0; i < rows.length; i++) {
      if (state.kind >= 0 && rows[i][0] !== state.kind) { continue; }
      if (t && hay[i].indexOf(t) < 0) { continue; }
      view.push(i);
    }
    if (state.col >= 0) {
      var c = state.col, d = state.dir;
      view.sort(function (a, b) {
        var x = value(rows[a], c), y = value(rows[b], c);
        if (x < y) { return -d; }
        if (x > y) { return d; }
        return a - b;
      });
    }
  }

  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function render() {
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    if (state.page >= pages) { state.page = pages - 1; }
    var from = state.page * PAGE, to = Math.min(view.length, from + PAGE);
    var frag = document.createDocumentFragment();
    for (var j = from; j < to; j++) {
      var r = rows[view[j]];
      var tr = document.createElement('tr');
      var first = cell(tr, '', null);
      var swatch = document.createElement('span');
      swatch.className = 'swatch k' + r[0];
      first.appendChild(swatch);
      first.appendChild(document.createTextNode(keys[r[0]]));
      cell(tr, r[1]);
      cell(tr, r[2]);
      cell(tr, seqText(r), 'num');
      cell(tr, r[4] == null ? '–' : r[4]);
      cell(tr, r[5] == null ? '–' : r[5]);
      cell(tr, r[6], 'id');
      var traces = cell(tr, '', 'traces');
      r[7].forEach(function (id) {
        // The first 12 characters, the whole id on hover (as the page's first rows).
        var item = document.createElement(url ? 'a' : 'span');
        if (url) {
          item.href = url.split('{trace_id}').join(encodeURIComponent(id));
          item.rel = 'noopener';
          item.target = '_blank';
        }
        item.title = id;
        item.textContent = id.length > 12 ? id.slice(0, 12) + '\u2026' : id;
        traces.appendChild(item);
        traces.appendChild(document.createElement('br'));
      });
      cell(tr, r[8], 'evidence');
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    shown.textContent = view.length === 0 ? 'no finding matches'
      : 'rows ' + (from + 1) + '–' + to + ' of ' + view.length +
        (view.length < rows.length ? ' (filtered from ' + rows.length + ')' : '');
    prev.disabled = state.page === 0;
    next.disabled = to >= view.length;
  }

  function update() { state.page = 0; compute(); render(); }

  var timer = 0;
  filter.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.text = filter.value; update(); }, DELAY);
  });
  kind.addEventListener('change', function () {
    state.kind = kind.value === '' ? -1 : Number(kind.value);
    update();
  });
  prev.addEventListener('click', function () { state.page -= 1; render(); });
  next.addEventListener('click', function () { state.page += 1; render(); });
  document.querySelectorAll('#findings-table th[data-col]').forEach(function (th) {
    th.addEventListener('click', function () {
      var c = Number(th.getAttribute('data-col'));
      state.dir = state.col === c ? -state.dir : 1;
      state.col = c;
      document.querySelectorAll('#findings-table th').forEach(function (h) {
        h.classList.remove('sorted-up', 'sorted-down');
      });
      th.classList.add(state.dir > 0 ? 'sorted-up' : 'sorted-down');
      update();
    });
  });
  // A row of the totals lists its findings.
  document.querySelectorAll('table.totals tbody tr').forEach(function (tr) {
    tr.addEventListener('click', function () {
      kind.value = tr.getAttribute('data-kind');
      state.kind = Number(kind.value);
      update();
      document.getElementById('findings').scrollIntoView();
    });
  });
  compute();
  render();
}());
