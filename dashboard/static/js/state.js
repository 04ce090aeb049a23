/* The stats view's state (site, range, interval, filters, property), kept in the address
 * so a view can be shared and reloaded, and the queries it makes of the stats API. */
import { body, shared } from './page.js';

export const PERIODS = [
  ['day', 'Today'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['month', 'This month'],
  ['6mo', 'Last 6 months'], ['12mo', 'Last 12 months'], ['custom', 'Custom range']
];
const DEFAULT_INTERVAL = { day: 'hour', '7d': 'day', '30d': 'day', month: 'day', '6mo': 'month', '12mo': 'month', custom: 'day' };

export function defaultInterval(period) {
  return DEFAULT_INTERVAL[period] || 'day';
}

export function readState() {
  const q = new URLSearchParams(location.search);
  let filters = [];
  try { filters = JSON.parse(q.get('f') || '[]'); } catch (e) { filters = []; }
  const period = q.get('period') || '30d';
  return {
    site: shared ? body.dataset.site : q.get('site') || '',
    period: period,
    from: q.get('from') || '',
    to: q.get('to') || '',
    interval: q.get('interval') || defaultInterval(period),
    filters: Array.isArray(filters) ? filters : [],
    prop: q.get('prop') || ''
  };
}

export function writeState(state) {
  const q = new URLSearchParams();
  if (!shared && state.site) q.set('site', state.site);
  q.set('period', state.period);
  if (state.period === 'custom') { q.set('from', state.from); q.set('to', state.to); }
  q.set('interval', state.interval);
  if (state.filters.length) q.set('f', JSON.stringify(state.filters));
  if (state.prop) q.set('prop', state.prop);
  history.replaceState(null, '', location.pathname + '?' + q.toString() + location.hash);
}

export function dateRange(state) {
  return state.period === 'custom' ? [state.from, state.to] : state.period;
}

// A query of the state's site, range and filters; `extra` adds filters and sets the rest.
export function siteQuery(state, extra) {
  const q = { site_id: state.site, date_range: dateRange(state), filters: state.filters.slice() };
  Object.keys(extra).forEach((k) => {
    if (k === 'filters') q.filters = q.filters.concat(extra.filters);
    else q[k] = extra[k];
  });
  return q;
}
