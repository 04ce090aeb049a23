/* The breakdowns below the chart (pages, sources, channels, countries, events, goals,
 * properties...): those in view load with the first screen, the rest right after it,
 * and a click on a row filters the whole view. */
import { showError } from '../alerts.js';
import { api } from '../api.js';
import { clear, download, h } from '../dom.js';
import { formatMetric, fullMetric } from '../format.js';
import { NOT_CUSTOM_EVENTS } from '../page.js';
import { siteQuery } from '../state.js';

const CUSTOM_EVENTS_ONLY = ['is_not', 'event:name', NOT_CUSTOM_EVENTS];
export const PANELS = [
  { id: 'pages', title: 'Top pages', dimension: 'event:page', metrics: ['visitors', 'pageviews'] },
  { id: 'entry', title: 'Entry pages', dimension: 'visit:entry_page', metrics: ['visitors'] },
  { id: 'exit', title: 'Exit pages', dimension: 'visit:exit_page', metrics: ['visitors'] },
  { id: 'sources', title: 'Sources', dimension: 'visit:source', metrics: ['visitors'] },
  { id: 'channels', title: 'Channels', dimension: 'visit:channel', metrics: ['visitors'] },
  { id: 'referrers', title: 'Referrers', dimension: 'visit:referrer', metrics: ['visitors'] },
  { id: 'campaigns', title: 'UTM campaigns', dimension: 'visit:utm_campaign', metrics: ['visitors'] },
  { id: 'countries', title: 'Countries', dimension: 'visit:country', metrics: ['visitors'] },
  { id: 'browsers', title: 'Browsers', dimension: 'visit:browser', metrics: ['visitors'] },
  { id: 'os', title: 'Operating systems', dimension: 'visit:os', metrics: ['visitors'] },
  { id: 'devices', title: 'Devices', dimension: 'visit:device', metrics: ['visitors'] },
  { id: 'events', title: 'Custom events', dimension: 'event:name', metrics: ['visitors', 'events'], extra: CUSTOM_EVENTS_ONLY },
  // Revenue columns show when the site has revenue goals (the query API warns when none).
  { id: 'goals', title: 'Goals', dimension: 'event:goal', metrics: ['visitors', 'events', 'conversion_rate', 'total_revenue', 'average_revenue'] },
  { id: 'props', title: 'Event properties', dimension: null, metrics: ['visitors', 'events'] }
];
const METRIC_NAMES = {
  visitors: 'Visitors', pageviews: 'Page views', events: 'Events', conversion_rate: 'Conversion rate',
  total_revenue: 'Revenue', average_revenue: 'Average revenue'
};
const ROWS_SHOWN = 10;

// Panels in view load with the first screen; the others wait until it is filled (so
// it is not kept waiting by breakdowns nobody has scrolled to yet), then load at once,
// to be filled by the time they are scrolled to. One that comes into view first starts
// then. Each loads once per load of the view (`stats.started`).
export function panelObserver(stats) {
  if (!('IntersectionObserver' in window)) return null;
  const observer = new IntersectionObserver((entries) => {
    entries.forEach((e) => {
      if (e.isIntersecting) startPanel(stats, PANELS.find((p) => p.id === e.target.dataset.panel));
    });
  }, { rootMargin: '0px' });
  return observer;
}

// The panels not started yet, once the first screen is filled: whether any was.
export function loadRestOfPanels(stats) {
  const rest = PANELS.filter((p) => !stats.started.has(p.id));
  rest.forEach((p) => { startPanel(stats, p); });
  return rest.length > 0;
}

function startPanel(stats, panel) {
  if (stats.started.has(panel.id)) return;
  stats.started.add(panel.id);
  if (stats.observer) stats.observer.unobserve(panelSection(stats, panel));
  stats.track(loadPanel(stats, panel, stats.generation));
}

export function panelSection(stats, panel) {
  let section = stats.el.grid.querySelector('[data-panel="' + panel.id + '"]');
  if (!section) {
    section = h('section', { class: 'panel', 'data-panel': panel.id, 'aria-labelledby': 'panel-' + panel.id },
      [h('h2', { id: 'panel-' + panel.id, text: panel.title }), h('p', { class: 'hint', text: 'Loading…' })]);
    stats.el.grid.appendChild(section);
  }
  return section;
}

function loadPanel(stats, panel, mine) {
  const section = panelSection(stats, panel);
  const q = panelQuery(stats.state, panel);
  if (!q) {
    renderPanel(stats, section, panel, null, null);
    return Promise.resolve();
  }
  q.pagination = { limit: ROWS_SHOWN };
  return api('POST', '/api/v2/query', q).then((answer) => {
    if (mine === stats.generation) renderPanel(stats, section, panel, q.dimensions[0], shownColumns(panel, answer));
  });
}

function panelQuery(state, panel) {
  let dimension = panel.dimension;
  let extra = panel.extra ? [panel.extra] : [];
  if (panel.id === 'props') {
    if (!state.prop) return null;
    dimension = 'event:props:' + state.prop;
    extra = [['is_not', dimension, ['(not set)']]];  // only events that carry it
  }
  return siteQuery(state, {
    metrics: panel.metrics, dimensions: [dimension], filters: extra,
    order_by: [[panel.metrics[0], 'desc'], [dimension, 'asc']]
  });
}

// The metrics to show and each row's values for them: a metric the answer warns about
// (revenue without a revenue goal: `no_revenue_goals_matching`) is left out.
function shownColumns(panel, answer) {
  const warned = (answer.meta && answer.meta.metric_warnings) || {};
  const kept = panel.metrics.map((m, i) => i).filter((i) => !warned[panel.metrics[i]]);
  const metrics = kept.map((i) => panel.metrics[i]);
  const rows = answer.results.map((r) => ({ dimensions: r.dimensions, metrics: kept.map((i) => r.metrics[i]) }));
  return { metrics: metrics, rows: rows };
}

function renderPanel(stats, section, panel, dimension, shown) {
  const csv = h('button', { type: 'button', class: 'csv', text: 'CSV', 'aria-label': 'Download ' + panel.title + ' as CSV', onclick: () => { panelCsv(stats.state, panel); } });
  const head = h('div', { class: 'panel-head' }, [h('h2', { id: 'panel-' + panel.id, text: panel.title }), dimension ? csv : null]);
  const content = [head];
  if (panel.id === 'props') content.push(propForm(stats));
  if (dimension) content.push(panelTable(stats, panel, dimension, shown));
  else content.push(h('p', { class: 'hint', text: 'Name a property (for example plan) to break events down by its values.' }));
  clear(section).append(...content);
  // Goals with their revenue columns take two grid cells on a wide screen.
  section.classList.toggle('wide', Boolean(shown) && shown.metrics.length > 3);
  section.dataset.loaded = '1';
}

function propForm(stats) {
  const input = h('input', { id: 'prop-key', type: 'text', value: stats.state.prop, placeholder: 'property key', 'aria-label': 'Property key', maxlength: '100' });
  return h('form', { class: 'prop', onsubmit: (e) => { e.preventDefault(); stats.state.prop = input.value.trim(); stats.load(); } },
    [input, h('button', { type: 'submit', text: 'Show' })]);
}

function panelTable(stats, panel, dimension, shown) {
  const rows = shown.rows;
  const total = rows.reduce((max, r) => Math.max(max, r.metrics[0]), 0) || 1;
  const empty = h('tr', {}, [h('td', { colspan: String(shown.metrics.length + 1), class: 'empty', text: 'No data for this range' })]);
  return h('table', {}, [
    h('caption', { class: 'sr-only', text: panel.title + ', by ' + shown.metrics[0] }),
    h('thead', {}, [h('tr', {}, [h('th', { scope: 'col', text: 'Name' })].concat(shown.metrics.map((m) =>
      h('th', { scope: 'col', class: 'num', 'data-metric': m, text: METRIC_NAMES[m] || m }))))]),
    h('tbody', {}, rows.length ? rows.map((row) => panelRow(stats, shown.metrics, dimension, row, total)) : [empty])
  ]);
}

// A row: its value (a button that filters by it, over a bar of its share) and its metrics.
function panelRow(stats, metrics, dimension, row, total) {
  const value = row.dimensions[0];
  const bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
  bar.style.width = Math.round(100 * row.metrics[0] / total) + '%';
  return h('tr', {}, [h('th', { scope: 'row' }, [bar, h('button', {
    type: 'button', class: 'filter-by', title: 'Filter by this', text: value,
    onclick: () => { addFilter(stats, dimension, value); }
  })])].concat(row.metrics.map((v, i) => h('td', { class: 'num', text: formatMetric(metrics[i], v), title: fullMetric(metrics[i], v) }))));
}

function panelCsv(state, panel) {
  const q = panelQuery(state, panel);
  q.format = 'csv';
  const range = state.period === 'custom' ? state.from + '_' + state.to : state.period;
  api('POST', '/api/v2/query', q, true).then((blob) => {
    download(blob, state.site + '-' + panel.id + '-' + range + '.csv');
  }, showError);
}

function addFilter(stats, dimension, value) {
  const exists = stats.state.filters.some((f) => f[1] === dimension && f[2][0] === value);
  if (!exists) stats.state.filters.push(['is', dimension, [value]]);
  stats.load();
}
