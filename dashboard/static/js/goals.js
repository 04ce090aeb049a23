/* A site's goals in its card on the sites view: list them, add an event goal (with an
 * optional currency: a revenue goal) or a page goal, delete one; through
 * /api/sites/{site_id}/goals, whose rules (find or create, currency, paths) are the server's. */
import { showError } from './alerts.js';
import { api } from './api.js';
import { clear, h } from './dom.js';

// The card's "Goals" box: its list loads when first opened and after each change.
export function goalsBox(site) {
  const path = '/api/sites/' + encodeURIComponent(site.site_id) + '/goals';
  const list = h('div', { class: 'goal-list' }, [h('p', { class: 'hint', text: 'Loading…' })]);
  const box = { site: site, path: path, list: list };
  box.refresh = () => api('GET', path).then((answer) => { renderGoals(box, answer.goals); }, showError);
  let loaded = false;
  return h('details', { class: 'goals', ontoggle: (e) => {
    if (e.target.open && !loaded) { loaded = true; box.refresh(); }
  } }, [h('summary', { text: 'Goals' }), list, goalForm(box)]);
}

function renderGoals(box, goals) {
  const empty = h('p', { class: 'hint', text: 'No goals yet: a goal shows in the stats\' Goals panel with its conversion rate.' });
  clear(box.list).appendChild(goals.length ? h('table', {}, [
    h('caption', { text: 'Goals of ' + box.site.name }),
    h('thead', {}, [h('tr', {}, ['Goal', 'Kind', 'Matches', 'Currency', ''].map((t) => h('th', { scope: 'col', text: t })))]),
    h('tbody', {}, goals.map((goal) => goalRow(box, goal)))
  ]) : empty);
}

function goalRow(box, goal) {
  const remove = h('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': 'Delete goal ' + goal.display_name, onclick: () => {
    if (!confirm('Delete the goal ' + goal.display_name + '? Its completions stay stored.')) return;
    api('DELETE', box.path + '/' + goal.id).then(box.refresh, showError);
  } });
  return h('tr', { 'data-goal-id': String(goal.id) }, [
    h('th', { scope: 'row', text: goal.display_name }),
    h('td', { text: goal.goal_type === 'page' ? 'page visit' : 'custom event' }),
    h('td', {}, [h('code', { text: goal.goal_type === 'page' ? goal.page_path : goal.event_name })]),
    h('td', { text: goal.currency || '' }),
    h('td', {}, [remove])
  ]);
}

function goalForm(box) {
  const name = box.site.name;
  const kind = h('select', { 'aria-label': 'Goal kind for ' + name }, [
    h('option', { value: 'event', text: 'Custom event' }), h('option', { value: 'page', text: 'Page visit' })]);
  const target = h('input', { required: true, maxlength: '2000', placeholder: 'Signup or /pricing', 'aria-label': 'Event name or page path of a new goal for ' + name });
  const currency = h('input', { maxlength: '3', size: '4', placeholder: 'EUR', 'aria-label': 'Currency of a new goal for ' + name, title: 'Optional, event goals only: makes a revenue goal' });
  const form = h('form', { class: 'goal-new', onsubmit: (e) => {
    e.preventDefault();
    const goal = kind.value === 'page' ? { page_path: target.value.trim() } : { event_name: target.value.trim() };
    if (kind.value === 'event' && currency.value.trim()) goal.currency = currency.value.trim();
    api('PUT', box.path, goal).then(() => { form.reset(); return box.refresh(); }, showError);
  } }, [kind, target, currency, h('button', { type: 'submit', text: 'Add goal' })]);
  return form;
}
