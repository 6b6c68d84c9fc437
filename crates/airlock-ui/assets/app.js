// airlock ui: the login exchange, the live view's event stream, and the
// approvals list's refresh. No framework, no inline code (the page's
// Content-Security-Policy allows only this file). Everything that comes from
// the server goes into the page with textContent, never as markup, except the
// approvals list, which the server renders and escapes itself.
(function () {
  'use strict';

  var login = document.getElementById('login');
  if (login) {
    var m = /(?:^#|&)token=([0-9a-f]{64})(?:&|$)/.exec(location.hash);
    // The token must not stay in the address bar or the history.
    history.replaceState(null, '', location.pathname);
    if (!m) {
      login.textContent = 'This link has no login token: open the URL `airlock ui` printed.';
      return;
    }
    fetch('/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'token=' + m[1]
    }).then(function (r) {
      if (r.ok) {
        location.replace('/');
      } else {
        r.text().then(function (t) { login.textContent = t; });
      }
    }, function () {
      login.textContent = 'airlock ui is not answering.';
    });
    return;
  }

  var live = document.getElementById('live');
  if (live && window.EventSource) {
    var cols = ['seq', 'ts', 'kind', 'agent', 'capability', 'request', 'status', 'decision', 'note'];
    var body = live.tBodies[0];
    var q = live.getAttribute('data-query');
    var url = '/events?after=' + encodeURIComponent(live.getAttribute('data-after')) + (q ? '&' + q : '');
    var es = new EventSource(url);
    es.onmessage = function (e) {
      var v;
      try { v = JSON.parse(e.data); } catch (_) { return; }
      var tr = document.createElement('tr');
      tr.className = 'rec new ' + (v.decision || '');
      tr.setAttribute('data-seq', String(v.seq));
      cols.forEach(function (c) {
        var td = document.createElement('td');
        if (c === 'seq') {
          var a = document.createElement('a');
          a.href = '/record/' + encodeURIComponent(String(v.seq));
          a.textContent = String(v.seq);
          td.appendChild(a);
        } else {
          td.textContent = v[c] == null ? '' : String(v[c]);
        }
        tr.appendChild(td);
      });
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
    };
  }

  var approvals = document.getElementById('approvals');
  if (approvals) {
    // Replaced only when the set of held requests changed (a held request's
    // card never changes), so a button is not swapped under the pointer.
    var ids = function (nodes) {
      return Array.prototype.map.call(nodes, function (n) { return n.getAttribute('data-id'); }).join(' ');
    };
    setInterval(function () {
      fetch('/approvals?partial=1', { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (t) {
          if (t === null) { return; }
          // An inert document: nothing in it loads or runs.
          var next = new DOMParser().parseFromString(t, 'text/html');
          if (ids(next.querySelectorAll('section.approval')) !== ids(approvals.querySelectorAll('section.approval'))) {
            approvals.innerHTML = t;
          }
        }, function () {});
    }, 1000);
  }
})();
