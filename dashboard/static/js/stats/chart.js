/* Visitors and page views over time: a uPlot chart, and the same data as a table. */
import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { formatMetric } from '../format.js';
import { main } from '../page.js';
import { siteQuery } from '../state.js';

export function loadChart(stats, mine) {
  const dimension = 'time:' + stats.state.interval;
  return api('POST', '/api/v2/query', siteQuery(stats.state, {
    metrics: ['visitors', 'pageviews'], dimensions: [dimension], include: { time_labels: true }
  })).then((answer) => {
    if (mine !== stats.generation) return;
    const labels = answer.meta.time_labels || [];
    const byLabel = {};
    answer.results.forEach((r) => { byLabel[r.dimensions[0]] = r.metrics; });
    const visitors = labels.map((l) => (byLabel[l] || [0, 0])[0]);
    const views = labels.map((l) => (byLabel[l] || [0, 0])[1]);
    drawChart(stats, labels, visitors, views);
  });
}

function drawChart(stats, labels, visitors, views) {
  const box = stats.el.chartBox;
  clear(box);
  if (stats.plot) { stats.plot.destroy(); stats.plot = null; }
  const interval = stats.state.interval;
  const width = Math.max(280, box.clientWidth || main.clientWidth - 32);
  const canvas = h('div', { class: 'plot', role: 'img', 'aria-label': 'Visitors and page views per ' + interval + ': see the table below' });
  box.append(canvas);
  if (window.uPlot) stats.plot = plot(stats, canvas, width, labels, [visitors, views]);
  box.append(h('details', {}, [h('summary', { text: 'Chart data as a table' }), chartTable(interval, labels, visitors, views)]));
}

function plot(stats, canvas, width, labels, series) {
  const xs = labels.map((_, i) => i);
  return new window.uPlot({
    width: width, height: 260,
    scales: { x: { time: false } },
    axes: [{ values: (_, ticks) => ticks.map((t) => shortLabel(stats.state.interval, labels[t])) }, {}],
    series: [{ label: stats.state.interval, value: (_, i) => (i === null ? '' : labels[i] || '') },
      { label: 'Visitors', stroke: '#4f46e5', width: 2, fill: 'rgba(79,70,229,0.08)' },
      { label: 'Page views', stroke: '#0891b2', width: 2 }]
  }, [xs].concat(series), canvas);
}

function chartTable(interval, labels, visitors, views) {
  return h('table', { 'data-testid': 'chart-table' }, [
    h('caption', { text: 'Visitors and page views per ' + interval }),
    h('thead', {}, [h('tr', {}, [h('th', { scope: 'col', text: 'Time' }), h('th', { scope: 'col', text: 'Visitors' }), h('th', { scope: 'col', text: 'Page views' })])]),
    h('tbody', {}, labels.map((label, i) => h('tr', {}, [
      h('th', { scope: 'row', text: label }),
      h('td', { text: formatMetric('visitors', visitors[i]) }),
      h('td', { text: formatMetric('pageviews', views[i]) })
    ])))
  ]);
}

function shortLabel(interval, label) {
  if (!label) return '';
  return interval === 'hour' || interval === 'minute' ? label.slice(11, 16) : label.slice(5, 10);
}
