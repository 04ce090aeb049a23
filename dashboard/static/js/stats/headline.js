/* The headline metrics against the previous period, and the current visitors. */
import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { formatChange, formatMetric } from '../format.js';
import { siteQuery } from '../state.js';

const HEADLINE = [
  ['visitors', 'Unique visitors'], ['visits', 'Visits'], ['pageviews', 'Page views'],
  ['views_per_visit', 'Views per visit'], ['bounce_rate', 'Bounce rate'], ['visit_duration', 'Visit duration']
];

export function loadRealtime(stats) {
  return api('POST', '/api/v2/query', siteQuery(stats.state, { date_range: 'realtime', metrics: ['visitors'] }))
    .then((answer) => {
      const n = answer.results.length ? answer.results[0].metrics[0] : 0;
      stats.el.realtime.textContent = formatMetric('visitors', n) + (n === 1 ? ' current visitor' : ' current visitors') + ' (last 30 minutes)';
    }, () => { stats.el.realtime.textContent = 'Current visitors unavailable'; });
}

export function loadHeadline(stats, mine) {
  const metrics = HEADLINE.map((m) => m[0]);
  return api('POST', '/api/v2/query', siteQuery(stats.state, { metrics: metrics, include: { compare: 'previous_period' } }))
    .then((answer) => {
      if (mine !== stats.generation) return;
      const row = answer.results[0] || { metrics: metrics.map(() => 0) };
      clear(stats.el.headline);
      HEADLINE.forEach((pair, i) => { stats.el.headline.appendChild(card(pair, row, i)); });
    });
}

function card(pair, row, i) {
  const change = formatChange(pair[0], row.comparison ? row.comparison.change[i] : null);
  return h('li', { 'data-metric': pair[0] }, [
    h('span', { class: 'label', text: pair[1] }),
    h('strong', { class: 'value', text: formatMetric(pair[0], row.metrics[i]) }),
    h('span', { class: 'change ' + change.trend, text: change.text, title: 'against the previous period' })
  ]);
}
