/* hitstream dashboard: fills the server's page shells from the public APIs.
 * Every value shown comes from an API answer and reaches the page as text (never as
 * HTML): page paths, referrers and property values are written by anyone who can send
 * an event. Reads /api/v2/query with the session cookie (admin) or, on a shared link,
 * with the token after `#auth=`. No dependencies but the vendored uPlot. */
(function () {
  'use strict';

  var body = document.body;
  var main = document.getElementById('main');
  var view = body.dataset.view;
  var shared = body.dataset.mode === 'share';
  var shareToken = null;
  if (shared) {
    var m = /(?:^#|&)auth=([^&]+)/.exec(location.hash);
    shareToken = m ? decodeURIComponent(m[1]) : null;
  }

  // ---- small helpers -------------------------------------------------------------

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value === true ? '' : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  var alerts = h('div', { class: 'alerts', role: 'alert', 'aria-live': 'assertive' });

  function showError(error) {
    clear(alerts).appendChild(h('p', { class: 'error', text: String(error.message || error) }));
  }

  function api(method, path, payload, raw) {
    var headers = { Accept: raw ? 'text/csv' : 'application/json' };
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    if (shareToken) headers.Authorization = 'Bearer ' + shareToken;
    return fetch(path, {
      method: method,
      headers: headers,
      credentials: 'same-origin',
      body: payload === undefined ? undefined : JSON.stringify(payload)
    }).then(function (response) {
      if (response.status === 401 && !shared) {
        location.assign('/login');
        throw new Error('logged out');
      }
      if (!response.ok) {
        return response.json().then(function (answer) {
          var detail = (answer.details || [])[0];
          throw new Error(answer.error + (detail ? ' (' + detail.field + ': ' + detail.message + ')' : ''));
        }, function () { throw new Error(method + ' ' + path + ': HTTP ' + response.status); });
      }
      return raw ? response.blob() : response.json();
    });
  }

  var numberFormat = new Intl.NumberFormat('en');
  function formatMetric(name, value) {
    if (value === null || value === undefined) return '-';
    if (name === 'bounce_rate' || name === 'percentage') return value + '%';
    if (name === 'visit_duration') {
      var s = Math.round(value);
      return (s >= 60 ? Math.floor(s / 60) + 'm ' : '') + (s % 60) + 's';
    }
    if (name === 'views_per_visit') return String(value);
    return numberFormat.format(value);
  }

  function download(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = h('a', { href: url, download: name });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  // ---- the stats view --------------------------------------------------------------

  var PERIODS = [
    ['day', 'Today'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['month', 'This month'],
    ['6mo', 'Last 6 months'], ['12mo', 'Last 12 months'], ['custom', 'Custom range']
  ];
  var DEFAULT_INTERVAL = { day: 'hour', '7d': 'day', '30d': 'day', month: 'day', '6mo': 'month', '12mo': 'month', custom: 'day' };
  var HEADLINE = [
    ['visitors', 'Unique visitors'], ['visits', 'Visits'], ['pageviews', 'Page views'],
    ['views_per_visit', 'Views per visit'], ['bounce_rate', 'Bounce rate'], ['visit_duration', 'Visit duration']
  ];
  var NOT_PAGEVIEWS = ['is_not', 'event:name', ['pageview', 'page_view', 'engagement']];
  var PANELS = [
    { id: 'pages', title: 'Top pages', dimension: 'event:page', metrics: ['visitors', 'pageviews'] },
    { id: 'entry', title: 'Entry pages', dimension: 'visit:entry_page', metrics: ['visitors'] },
    { id: 'exit', title: 'Exit pages', dimension: 'visit:exit_page', metrics: ['visitors'] },
    { id: 'sources', title: 'Sources', dimension: 'visit:source', metrics: ['visitors'] },
    { id: 'referrers', title: 'Referrers', dimension: 'visit:referrer', metrics: ['visitors'] },
    { id: 'campaigns', title: 'UTM campaigns', dimension: 'visit:utm_campaign', metrics: ['visitors'] },
    { id: 'countries', title: 'Countries', dimension: 'visit:country', metrics: ['visitors'] },
    { id: 'browsers', title: 'Browsers', dimension: 'visit:browser', metrics: ['visitors'] },
    { id: 'os', title: 'Operating systems', dimension: 'visit:os', metrics: ['visitors'] },
    { id: 'devices', title: 'Devices', dimension: 'visit:device', metrics: ['visitors'] },
    { id: 'events', title: 'Custom events', dimension: 'event:name', metrics: ['visitors', 'events'], extra: NOT_PAGEVIEWS },
    { id: 'props', title: 'Event properties', dimension: null, metrics: ['visitors', 'events'] }
  ];
  var METRIC_NAMES = { visitors: 'Visitors', pageviews: 'Page views', events: 'Events' };
  var ROWS_SHOWN = 10;
  var REALTIME_EVERY_MS = 15000;

  function readState() {
    var q = new URLSearchParams(location.search);
    var filters = [];
    try { filters = JSON.parse(q.get('f') || '[]'); } catch (e) { filters = []; }
    var period = q.get('period') || '30d';
    return {
      site: shared ? body.dataset.site : q.get('site') || '',
      period: period,
      from: q.get('from') || '',
      to: q.get('to') || '',
      interval: q.get('interval') || DEFAULT_INTERVAL[period] || 'day',
      filters: Array.isArray(filters) ? filters : [],
      prop: q.get('prop') || ''
    };
  }

  function writeState(state) {
    var q = new URLSearchParams();
    if (!shared && state.site) q.set('site', state.site);
    q.set('period', state.period);
    if (state.period === 'custom') { q.set('from', state.from); q.set('to', state.to); }
    q.set('interval', state.interval);
    if (state.filters.length) q.set('f', JSON.stringify(state.filters));
    if (state.prop) q.set('prop', state.prop);
    history.replaceState(null, '', location.pathname + '?' + q.toString() + location.hash);
  }

  function dateRange(state) {
    return state.period === 'custom' ? [state.from, state.to] : state.period;
  }

  function statsView() {
    var state = readState();
    var controls = h('div', { class: 'controls' });
    var chips = h('ul', { class: 'filters', 'aria-label': 'Filters' });
    var realtime = h('p', { class: 'realtime', 'aria-live': 'polite', 'data-testid': 'realtime' }, ['…']);
    var headline = h('ul', { class: 'headline', 'aria-label': 'Headline metrics' });
    var chartBox = h('figure', { class: 'chart' });
    var grid = h('div', { class: 'panels' });
    var heading = h('h1', { text: shared ? state.site : 'Stats' });
    clear(main).append(heading, alerts, controls, realtime, chips, headline, chartBox, grid);
    var realtimeTimer = null;
    var generation = 0;

    // Jobs in flight: `data-ready` is set when none is left (tests and the bench wait on it).
    var pending = 0;
    function track(job) {
      pending += 1;
      body.dataset.ready = '';
      return job.catch(showError).then(function () {
        pending -= 1;
        if (pending === 0) {
          body.dataset.ready = '1';
          // Since the navigation began: what `make bench` reports as the page's load time.
          body.dataset.readyMs = String(Math.round(performance.now()));
        }
      });
    }

    // Panels load when they come near the screen, as Plausible's lower reports do: the
    // first screen is not kept waiting by breakdowns nobody has scrolled to yet.
    var observer = 'IntersectionObserver' in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) return;
        observer.unobserve(e.target);
        var panel = PANELS.filter(function (p) { return p.id === e.target.dataset.panel; })[0];
        track(loadPanel(panel, generation));
      });
    }, { rootMargin: '0px' }) : null;

    function load() {
      writeState(state);
      clear(alerts);
      var mine = ++generation;
      renderChips();
      if (!state.site) {
        clear(grid).appendChild(h('p', {}, ['No site yet: ', h('a', { href: '/dashboard/sites', text: 'create one' }), '.']));
        body.dataset.ready = '1';
        return;
      }
      track(loadHeadline(mine));
      track(loadChart(mine));
      PANELS.forEach(function (panel) {
        var section = panelSection(panel);
        delete section.dataset.loaded;
        if (observer) observer.observe(section);
        else track(loadPanel(panel, mine));
      });
      clearInterval(realtimeTimer);
      loadRealtime();
      realtimeTimer = setInterval(loadRealtime, REALTIME_EVERY_MS);
    }

    function query(extra) {
      var q = { site_id: state.site, date_range: dateRange(state), filters: state.filters.slice() };
      Object.keys(extra).forEach(function (k) {
        if (k === 'filters') q.filters = q.filters.concat(extra.filters);
        else q[k] = extra[k];
      });
      return q;
    }

    function loadRealtime() {
      return api('POST', '/api/v2/query', query({ date_range: 'realtime', metrics: ['visitors'] }))
        .then(function (answer) {
          var n = answer.results.length ? answer.results[0].metrics[0] : 0;
          realtime.textContent = formatMetric('visitors', n) + (n === 1 ? ' current visitor' : ' current visitors') + ' (last 30 minutes)';
        }, function () { realtime.textContent = 'Current visitors unavailable'; });
    }

    function loadHeadline(mine) {
      var metrics = HEADLINE.map(function (m) { return m[0]; });
      return api('POST', '/api/v2/query', query({ metrics: metrics, include: { compare: 'previous_period' } }))
        .then(function (answer) {
          if (mine !== generation) return;
          var row = answer.results[0] || { metrics: metrics.map(function () { return 0; }) };
          clear(headline);
          HEADLINE.forEach(function (pair, i) {
            var change = row.comparison ? row.comparison.change[i] : null;
            var trend = change === null || change === undefined ? '' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
            var changeText = trend ? (change > 0 ? '+' : '') + change + (pair[0] === 'bounce_rate' ? ' pts' : '%') : 'no earlier data';
            headline.appendChild(h('li', { 'data-metric': pair[0] }, [
              h('span', { class: 'label', text: pair[1] }),
              h('strong', { class: 'value', text: formatMetric(pair[0], row.metrics[i]) }),
              h('span', { class: 'change ' + trend, text: changeText, title: 'against the previous period' })
            ]));
          });
        });
    }

    var plot = null;
    function loadChart(mine) {
      var dimension = 'time:' + state.interval;
      return api('POST', '/api/v2/query', query({
        metrics: ['visitors', 'pageviews'], dimensions: [dimension], include: { time_labels: true }
      })).then(function (answer) {
        if (mine !== generation) return;
        var labels = answer.meta.time_labels || [];
        var byLabel = {};
        answer.results.forEach(function (r) { byLabel[r.dimensions[0]] = r.metrics; });
        var visitors = labels.map(function (l) { return (byLabel[l] || [0, 0])[0]; });
        var views = labels.map(function (l) { return (byLabel[l] || [0, 0])[1]; });
        drawChart(labels, visitors, views);
      });
    }

    function drawChart(labels, visitors, views) {
      clear(chartBox);
      if (plot) { plot.destroy(); plot = null; }
      var xs = labels.map(function (_, i) { return i; });
      var width = Math.max(280, chartBox.clientWidth || main.clientWidth - 32);
      var canvas = h('div', { class: 'plot', role: 'img', 'aria-label': 'Visitors and page views per ' + state.interval + ': see the table below' });
      chartBox.append(canvas);
      if (window.uPlot) {
        plot = new window.uPlot({
          width: width, height: 260,
          scales: { x: { time: false } },
          axes: [{ values: function (_, ticks) { return ticks.map(function (t) { return shortLabel(labels[t]); }); } }, {}],
          series: [{ label: state.interval, value: function (_, i) { return i === null ? '' : labels[i] || ''; } },
            { label: 'Visitors', stroke: '#4f46e5', width: 2, fill: 'rgba(79,70,229,0.08)' },
            { label: 'Page views', stroke: '#0891b2', width: 2 }]
        }, [xs, visitors, views], canvas);
      }
      var table = h('table', { 'data-testid': 'chart-table' }, [
        h('caption', { text: 'Visitors and page views per ' + state.interval }),
        h('thead', {}, [h('tr', {}, [h('th', { scope: 'col', text: 'Time' }), h('th', { scope: 'col', text: 'Visitors' }), h('th', { scope: 'col', text: 'Page views' })])]),
        h('tbody', {}, labels.map(function (label, i) {
          return h('tr', {}, [h('th', { scope: 'row', text: label }), h('td', { text: formatMetric('visitors', visitors[i]) }), h('td', { text: formatMetric('pageviews', views[i]) })]);
        }))
      ]);
      chartBox.append(h('details', {}, [h('summary', { text: 'Chart data as a table' }), table]));
    }

    function shortLabel(label) {
      if (!label) return '';
      return state.interval === 'hour' || state.interval === 'minute' ? label.slice(11, 16) : label.slice(5, 10);
    }

    function panelQuery(panel) {
      var dimension = panel.dimension;
      var extra = panel.extra ? [panel.extra] : [];
      if (panel.id === 'props') {
        if (!state.prop) return null;
        dimension = 'event:props:' + state.prop;
        extra = [['is_not', dimension, ['(not set)']]];  // only events that carry it
      }
      return query({
        metrics: panel.metrics, dimensions: [dimension], filters: extra,
        order_by: [[panel.metrics[0], 'desc'], [dimension, 'asc']]
      });
    }

    function panelSection(panel) {
      var section = grid.querySelector('[data-panel="' + panel.id + '"]');
      if (!section) {
        section = h('section', { class: 'panel', 'data-panel': panel.id, 'aria-labelledby': 'panel-' + panel.id },
          [h('h2', { id: 'panel-' + panel.id, text: panel.title }), h('p', { class: 'hint', text: 'Loading…' })]);
        grid.appendChild(section);
      }
      return section;
    }

    function loadPanel(panel, mine) {
      var section = panelSection(panel);
      var q = panelQuery(panel);
      if (!q) {
        renderPanel(section, panel, null, []);
        return Promise.resolve();
      }
      q.pagination = { limit: ROWS_SHOWN };
      return api('POST', '/api/v2/query', q).then(function (answer) {
        if (mine === generation) renderPanel(section, panel, q.dimensions[0], answer.results);
      });
    }

    function renderPanel(section, panel, dimension, rows) {
      var csv = h('button', { type: 'button', class: 'csv', text: 'CSV', 'aria-label': 'Download ' + panel.title + ' as CSV', onclick: function () { panelCsv(panel); } });
      var head = h('div', { class: 'panel-head' }, [h('h2', { id: 'panel-' + panel.id, text: panel.title }), dimension ? csv : null]);
      var content = [head];
      if (panel.id === 'props') content.push(propForm());
      if (dimension) content.push(panelTable(panel, dimension, rows));
      else content.push(h('p', { class: 'hint', text: 'Name a property (for example plan) to break events down by its values.' }));
      clear(section).append.apply(section, content);
      section.dataset.loaded = '1';
    }

    function propForm() {
      var input = h('input', { id: 'prop-key', type: 'text', value: state.prop, placeholder: 'property key', 'aria-label': 'Property key', maxlength: '100' });
      return h('form', { class: 'prop', onsubmit: function (e) { e.preventDefault(); state.prop = input.value.trim(); load(); } },
        [input, h('button', { type: 'submit', text: 'Show' })]);
    }

    function panelTable(panel, dimension, rows) {
      var total = rows.reduce(function (max, r) { return Math.max(max, r.metrics[0]); }, 0) || 1;
      return h('table', {}, [
        h('caption', { class: 'sr-only', text: panel.title + ', by ' + panel.metrics[0] }),
        h('thead', {}, [h('tr', {}, [h('th', { scope: 'col', text: 'Name' })].concat(panel.metrics.map(function (m) {
          return h('th', { scope: 'col', class: 'num', text: METRIC_NAMES[m] || m });
        })))]),
        h('tbody', {}, rows.length ? rows.map(function (row) {
          var value = row.dimensions[0];
          var bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
          bar.style.width = Math.round(100 * row.metrics[0] / total) + '%';
          return h('tr', {}, [h('th', { scope: 'row' }, [bar, h('button', {
            type: 'button', class: 'filter-by', title: 'Filter by this', text: value,
            onclick: function () { addFilter(dimension, value); }
          })])].concat(row.metrics.map(function (v, i) {
            return h('td', { class: 'num', text: formatMetric(panel.metrics[i], v) });
          })));
        }) : [h('tr', {}, [h('td', { colspan: String(panel.metrics.length + 1), class: 'empty', text: 'No data for this range' })])])
      ]);
    }

    function panelCsv(panel) {
      var q = panelQuery(panel);
      q.format = 'csv';
      var range = state.period === 'custom' ? state.from + '_' + state.to : state.period;
      api('POST', '/api/v2/query', q, true).then(function (blob) {
        download(blob, state.site + '-' + panel.id + '-' + range + '.csv');
      }, showError);
    }

    function addFilter(dimension, value) {
      var exists = state.filters.some(function (f) { return f[1] === dimension && f[2][0] === value; });
      if (!exists) state.filters.push(['is', dimension, [value]]);
      load();
    }

    function renderChips() {
      clear(chips);
      state.filters.forEach(function (f, i) {
        chips.appendChild(h('li', {}, [
          h('span', { text: f[1].split(':').pop().replace('_', ' ') + ' ' + f[0] + ' ' + f[2].join(', ') }),
          h('button', { type: 'button', 'aria-label': 'Remove filter ' + f[1] + ' ' + f[2].join(', '), text: '×', onclick: function () {
            state.filters.splice(i, 1); load();
          } })
        ]));
      });
    }

    function renderControls(sites) {
      clear(controls);
      if (!shared) {
        var siteSelect = h('select', { id: 'site', onchange: function () { state.site = siteSelect.value; state.filters = []; load(); } },
          sites.map(function (s) { return h('option', { value: s.site_id, selected: s.site_id === state.site, text: s.name + ' (' + s.site_id + ')' }); }));
        controls.append(h('label', { for: 'site', text: 'Site' }), siteSelect);
      }
      var from = h('input', { type: 'date', id: 'from', value: state.from, 'aria-label': 'From' });
      var to = h('input', { type: 'date', id: 'to', value: state.to, 'aria-label': 'To' });
      var custom = h('span', { class: 'custom', hidden: state.period !== 'custom' }, [from, ' to ', to,
        h('button', { type: 'button', text: 'Apply', onclick: function () { state.from = from.value; state.to = to.value; load(); } })]);
      var period = h('select', { id: 'period', onchange: function () {
        state.period = period.value;
        state.interval = DEFAULT_INTERVAL[state.period] || 'day';
        interval.value = state.interval;
        custom.hidden = state.period !== 'custom';
        if (state.period !== 'custom') load();
      } }, PERIODS.map(function (p) { return h('option', { value: p[0], selected: p[0] === state.period, text: p[1] }); }));
      var interval = h('select', { id: 'interval', onchange: function () { state.interval = interval.value; load(); } },
        ['hour', 'day', 'week', 'month'].map(function (i) { return h('option', { value: i, selected: i === state.interval, text: 'per ' + i }); }));
      controls.append(h('label', { for: 'period', text: 'Range' }), period, custom,
        h('label', { for: 'interval', text: 'Chart' }), interval);
    }

    if (shared) {
      if (!shareToken) { showError(new Error('This shared link has no token (#auth=...).')); return; }
      renderControls([]);
      load();
    } else {
      // A site named in the address starts loading at once, beside the list of sites.
      var started = Boolean(state.site);
      if (started) load();
      api('GET', '/api/sites').then(function (answer) {
        var sites = answer.sites;
        if (!sites.some(function (s) { return s.site_id === state.site; })) {
          state.site = sites.length ? sites[0].site_id : '';
          started = false;
        }
        var tz = (sites.find(function (s) { return s.site_id === state.site; }) || {}).timezone;
        if (tz) heading.textContent = 'Stats (' + tz + ')';
        renderControls(sites);
        if (!started) load();
      }, showError);
    }
  }

  // ---- the sites view --------------------------------------------------------------

  function lines(text) {
    return text.split(/[\s,]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function snippet(siteId) {
    return '<script defer data-site="' + siteId + '" src="' + location.origin + '/js/hitstream.js"></script>';
  }

  function secretBox(title, rows) {
    return h('div', { class: 'secret', role: 'status' }, [h('h3', { text: title }), h('p', { text: 'Shown once: copy it now.' })]
      .concat(rows.map(function (r) { return h('div', {}, [h('span', { class: 'label', text: r[0] }), h('pre', {}, [h('code', { text: r[1] })])]); })));
  }

  function sitesView() {
    var list = h('div', { class: 'sites' });
    // Secrets (a new key, a shared link) show here, outside the list the refresh rebuilds.
    var created = h('div', { tabindex: '-1' });
    function reveal(box) {
      clear(created).appendChild(box);
      created.scrollIntoView();
      created.focus();
    }
    var name = h('input', { id: 'new-name', required: true, maxlength: '200' });
    var isPublic = h('input', { id: 'new-public', type: 'checkbox' });
    var origins = h('input', { id: 'new-origins', placeholder: 'https://example.com' });
    var domains = h('input', { id: 'new-domains', placeholder: 'example.com' });
    var tz = h('input', { id: 'new-tz', value: 'UTC', list: 'zones' });
    var zones = h('datalist', { id: 'zones' }, (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : []).map(function (z) { return h('option', { value: z }); }));
    var form = h('form', { class: 'create', onsubmit: function (e) {
      e.preventDefault();
      api('POST', '/api/sites', {
        name: name.value, public: isPublic.checked, allowed_origins: lines(origins.value),
        domains: lines(domains.value), timezone: tz.value || 'UTC'
      }).then(function (site) {
        reveal(secretBox('Site ' + site.name + ' created', [
          ['Paste this into every page of the site', snippet(site.site_id)],
          ['API key (server-side events and reading stats)', site.api_key]
        ]));
        form.reset();
        refresh();
      }, showError);
    } }, [
      h('h2', { text: 'New site' }),
      h('label', { for: 'new-name', text: 'Name' }), name,
      h('label', { for: 'new-public' }, [isPublic, ' Public: browsers may send events without a key from these origins']),
      h('label', { for: 'new-origins', text: 'Allowed origins (space or comma separated)' }), origins,
      h('label', { for: 'new-domains', text: 'Domains (for Plausible-style events)' }), domains,
      h('label', { for: 'new-tz', text: 'Time zone' }), tz, zones,
      h('button', { type: 'submit', text: 'Create site' })
    ]);
    clear(main).append(h('h1', { text: 'Sites' }), alerts, created, list, form);

    function refresh() {
      return api('GET', '/api/sites').then(function (answer) {
        clear(list);
        if (!answer.sites.length) list.appendChild(h('p', { text: 'No sites yet.' }));
        answer.sites.forEach(function (site) { list.appendChild(siteCard(site)); });
        body.dataset.ready = '1';
      }, showError);
    }

    function siteCard(site) {
      var editOrigins = h('input', { value: site.allowed_origins.join(' '), 'aria-label': 'Allowed origins of ' + site.name });
      var editDomains = h('input', { value: site.domains.join(' '), 'aria-label': 'Domains of ' + site.name });
      var editTz = h('input', { value: site.timezone, list: 'zones', 'aria-label': 'Time zone of ' + site.name });
      var editPublic = h('input', { type: 'checkbox', checked: site.public, 'aria-label': site.name + ' is public' });
      function act(promise) { promise.then(function () { return refresh(); }, showError); }
      var keys = h('table', {}, [
        h('caption', { text: 'Keys and share tokens of ' + site.name }),
        h('thead', {}, [h('tr', {}, ['Key', 'Kind', 'Created', 'State', ''].map(function (t) { return h('th', { scope: 'col', text: t }); }))]),
        h('tbody', {}, site.keys.map(function (key) {
          var state = key.revoked ? 'revoked' : key.active ? (key.expires_at ? 'expires ' + key.expires_at.slice(0, 16) : 'active') : 'expired';
          return h('tr', {}, [
            h('th', { scope: 'row' }, [h('code', { text: key.key_id })]),
            h('td', { text: key.read_only ? 'share link' : 'API key' }),
            h('td', { text: key.created_at.slice(0, 16).replace('T', ' ') }),
            h('td', { text: state }),
            h('td', {}, [key.active ? h('button', { type: 'button', class: 'danger', text: 'Revoke', 'aria-label': 'Revoke ' + key.key_id, onclick: function () {
              if (confirm('Revoke ' + key.key_id + '? It stops working at once.')) {
                act(api('DELETE', '/api/sites/' + encodeURIComponent(site.site_id) + '/keys/' + key.key_id));
              }
            } }) : null])
          ]);
        }))
      ]);
      return h('section', { class: 'site', 'data-site-id': site.site_id, 'aria-label': site.name }, [
        h('h2', {}, [site.name + ' ', h('code', { text: site.site_id })]),
        h('p', {}, [h('a', { href: '/dashboard?site=' + encodeURIComponent(site.site_id), text: 'Stats' })]),
        h('details', {}, [h('summary', { text: 'Snippet' }), h('pre', {}, [h('code', { text: snippet(site.site_id) })])]),
        h('form', { class: 'edit', onsubmit: function (e) {
          e.preventDefault();
          act(api('PATCH', '/api/sites/' + encodeURIComponent(site.site_id), {
            public: editPublic.checked, allowed_origins: lines(editOrigins.value),
            domains: lines(editDomains.value), timezone: editTz.value
          }));
        } }, [
          h('label', {}, [editPublic, ' Public']),
          h('label', {}, ['Allowed origins ', editOrigins]),
          h('label', {}, ['Domains ', editDomains]),
          h('label', {}, ['Time zone ', editTz]),
          h('button', { type: 'submit', text: 'Save' })
        ]),
        keys,
        h('div', { class: 'actions' }, [
          h('button', { type: 'button', text: 'Rotate API key', onclick: function () {
            api('POST', '/api/sites/' + encodeURIComponent(site.site_id) + '/keys').then(function (key) {
              reveal(secretBox('New API key of ' + site.name, [['API key (the previous ones work until ' + key.previous_keys_expire_at.slice(0, 16) + ')', key.api_key]]));
              return refresh();
            }, showError);
          } }),
          h('button', { type: 'button', text: 'Create shared link', onclick: function () {
            api('POST', '/api/sites/' + encodeURIComponent(site.site_id) + '/shares').then(function (share) {
              reveal(secretBox('Shared link of ' + site.name + ' (read-only)', [['Anyone with this link sees this site\'s stats', location.origin + share.path]]));
              return refresh();
            }, showError);
          } })
        ])
      ]);
    }
    refresh();
  }

  // ---- the queue view --------------------------------------------------------------

  var QUEUE_EVERY_MS = 5000;

  function queueView() {
    var cards = h('ul', { class: 'headline', 'aria-label': 'Queue state' });
    var consumers = h('div', {});
    var ratesBox = h('figure', { class: 'chart' });
    var letters = h('div', {});
    clear(main).append(h('h1', { text: 'Queue' }), alerts, cards, h('h2', { text: 'Insert and drain rates (events/s)' }), ratesBox,
      h('h2', { text: 'Consumers' }), consumers, h('h2', { text: 'Dead letters' }), letters);
    var ratePlot = null;

    function table(caption, columns, rows) {
      return h('table', {}, [h('caption', { class: 'sr-only', text: caption }),
        h('thead', {}, [h('tr', {}, columns.map(function (c) { return h('th', { scope: 'col', text: c }); }))]),
        h('tbody', {}, rows.length ? rows : [h('tr', {}, [h('td', { colspan: String(columns.length), class: 'empty', text: 'None' })])])]);
    }

    function replay(ids) {
      api('POST', '/api/queue/dead-letters/replay', { ids: ids }).then(function (answer) {
        clear(alerts).appendChild(h('p', { class: 'ok', text: 'Replayed ' + answer.replayed + ' dead letter(s).' }));
        return refresh();
      }, showError);
    }

    function refresh() {
      return api('GET', '/api/queue').then(function (q) {
        clear(cards);
        [['length', 'Stream length'], ['lag', 'Lag'], ['pending', 'Pending'], ['consumers', 'Consumers'],
          ['oldest_pending_age_s', 'Oldest pending (s)'], ['dead_letters', 'Dead letters']].forEach(function (pair) {
          cards.appendChild(h('li', { 'data-metric': pair[0] }, [h('span', { class: 'label', text: pair[1] }),
            h('strong', { class: 'value', text: q[pair[0]] === null ? '-' : numberFormat.format(q[pair[0]]) })]));
        });
        clear(consumers).appendChild(table('Consumers', ['Consumer', 'Pending', 'Idle (s)'], q.consumer_list.map(function (c) {
          return h('tr', {}, [h('th', { scope: 'row', text: c.name }), h('td', { class: 'num', text: String(c.pending) }), h('td', { class: 'num', text: String(c.idle_s) })]);
        })));
        var rows = q.dead_letter_list.map(function (d) {
          return h('tr', { 'data-letter': d.id }, [
            h('th', { scope: 'row' }, [h('code', { text: d.id })]),
            h('td', { text: new Date(d.failed_at_ms).toISOString().replace('T', ' ').slice(0, 19) }),
            h('td', { class: 'num', text: String(d.deliveries) }),
            h('td', { class: 'error-text', text: d.error }),
            h('td', {}, [h('code', { class: 'row', text: d.row })]),
            h('td', {}, [h('button', { type: 'button', text: 'Replay', 'aria-label': 'Replay ' + d.id, onclick: function () { replay([d.shard + ':' + d.id]); } })])
          ]);
        });
        clear(letters).append(table('Dead letters, oldest first', ['Entry', 'Failed at (UTC)', 'Deliveries', 'Error', 'Row', ''], rows));
        if (q.dead_letter_list.length) {
          letters.appendChild(h('button', { type: 'button', text: 'Replay all ' + q.dead_letters, onclick: function () { replay([]); } }));
        }
        drawRates(q.rates);
        body.dataset.ready = '1';
      }, showError);
    }

    function drawRates(rates) {
      clear(ratesBox);
      if (ratePlot) { ratePlot.destroy(); ratePlot = null; }
      if (!rates.length) {
        ratesBox.appendChild(h('p', { class: 'hint', text: 'Rates appear after two samples (one every 10 s).' }));
        return;
      }
      var xs = rates.map(function (r) { return r.at; });
      var canvas = h('div', { class: 'plot', role: 'img', 'aria-label': 'Insert and drain rates: see the table below' });
      ratesBox.appendChild(canvas);
      if (window.uPlot) {
        ratePlot = new window.uPlot({
          width: Math.max(280, main.clientWidth - 32), height: 200,
          series: [{}, { label: 'Inserted/s', stroke: '#4f46e5', width: 2 }, { label: 'Drained/s', stroke: '#059669', width: 2 }]
        }, [xs, rates.map(function (r) { return r.inserted_per_s; }), rates.map(function (r) { return r.drained_per_s; })], canvas);
      }
      ratesBox.appendChild(h('details', {}, [h('summary', { text: 'Rates as a table' }), table('Rates', ['Time (UTC)', 'Inserted/s', 'Drained/s'], rates.map(function (r) {
        return h('tr', {}, [h('th', { scope: 'row', text: new Date(r.at * 1000).toISOString().slice(11, 19) }), h('td', { class: 'num', text: String(r.inserted_per_s) }), h('td', { class: 'num', text: String(r.drained_per_s) })]);
      }))]));
    }

    refresh();
    setInterval(refresh, QUEUE_EVERY_MS);
  }

  // ---- start -----------------------------------------------------------------------

  document.querySelectorAll('[data-nav]').forEach(function (link) {
    if (link.dataset.nav === view) link.setAttribute('aria-current', 'page');
  });
  if (view === 'stats') statsView();
  else if (view === 'sites') sitesView();
  else if (view === 'queue') queueView();
})();
