/* What the view shows, chosen: the site, the range, the chart's interval, and the
 * filters in force (as chips that remove them). */
import { clear, h } from '../dom.js';
import { shared } from '../page.js';
import { PERIODS, defaultInterval } from '../state.js';

export function renderChips(stats) {
  const state = stats.state;
  clear(stats.el.chips);
  state.filters.forEach((f, i) => {
    stats.el.chips.appendChild(h('li', {}, [
      h('span', { text: f[1].split(':').pop().replace('_', ' ') + ' ' + f[0] + ' ' + f[2].join(', ') }),
      h('button', { type: 'button', 'aria-label': 'Remove filter ' + f[1] + ' ' + f[2].join(', '), text: '×', onclick: () => {
        state.filters.splice(i, 1); stats.load();
      } })
    ]));
  });
}

export function renderControls(stats, sites) {
  clear(stats.el.controls);
  if (!shared) stats.el.controls.append(...siteControl(stats, sites));
  stats.el.controls.append(...rangeControls(stats));
}

function siteControl(stats, sites) {
  const state = stats.state;
  const siteSelect = h('select', { id: 'site', onchange: () => { state.site = siteSelect.value; state.filters = []; stats.load(); } },
    sites.map((s) => h('option', { value: s.site_id, selected: s.site_id === state.site, text: s.name + ' (' + s.site_id + ')' })));
  return [h('label', { for: 'site', text: 'Site' }), siteSelect];
}

function rangeControls(stats) {
  const state = stats.state;
  const from = h('input', { type: 'date', id: 'from', value: state.from, 'aria-label': 'From' });
  const to = h('input', { type: 'date', id: 'to', value: state.to, 'aria-label': 'To' });
  const custom = h('span', { class: 'custom', hidden: state.period !== 'custom' }, [from, ' to ', to,
    h('button', { type: 'button', text: 'Apply', onclick: () => { state.from = from.value; state.to = to.value; stats.load(); } })]);
  const interval = h('select', { id: 'interval', onchange: () => { state.interval = interval.value; stats.load(); } },
    ['hour', 'day', 'week', 'month'].map((i) => h('option', { value: i, selected: i === state.interval, text: 'per ' + i })));
  const period = h('select', { id: 'period', onchange: () => {
    state.period = period.value;
    state.interval = defaultInterval(state.period);
    interval.value = state.interval;
    custom.hidden = state.period !== 'custom';
    if (state.period !== 'custom') stats.load();
  } }, PERIODS.map((p) => h('option', { value: p[0], selected: p[0] === state.period, text: p[1] })));
  return [h('label', { for: 'period', text: 'Range' }), period, custom, h('label', { for: 'interval', text: 'Chart' }), interval];
}
