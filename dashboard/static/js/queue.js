/* The queue view (admin): the stream's state, its consumers, insert and drain rates, and
 * the dead letters, which a button replays; refreshed every few seconds. */
import { alerts, showDone, showError } from './alerts.js';
import { api } from './api.js';
import { clear, h } from './dom.js';
import { numberFormat } from './format.js';
import { body, main } from './page.js';

const QUEUE_EVERY_MS = 5000;
const CARDS = [['length', 'Stream length'], ['lag', 'Lag'], ['pending', 'Pending'], ['consumers', 'Consumers'],
  ['oldest_pending_age_s', 'Oldest pending (s)'], ['dead_letters', 'Dead letters']];

export function queueView() {
  const queue = {
    cards: h('ul', { class: 'headline', 'aria-label': 'Queue state' }),
    consumers: h('div', {}),
    ratesBox: h('figure', { class: 'chart' }),
    letters: h('div', {}),
    ratePlot: null
  };
  queue.refresh = () => refresh(queue);
  clear(main).append(h('h1', { text: 'Queue' }), alerts, queue.cards, h('h2', { text: 'Insert and drain rates (events/s)' }), queue.ratesBox,
    h('h2', { text: 'Consumers' }), queue.consumers, h('h2', { text: 'Dead letters' }), queue.letters);
  queue.refresh();
  setInterval(queue.refresh, QUEUE_EVERY_MS);
}

function refresh(queue) {
  return api('GET', '/api/queue').then((q) => {
    clear(queue.cards);
    CARDS.forEach((pair) => {
      queue.cards.appendChild(h('li', { 'data-metric': pair[0] }, [h('span', { class: 'label', text: pair[1] }),
        h('strong', { class: 'value', text: q[pair[0]] === null ? '-' : numberFormat.format(q[pair[0]]) })]));
    });
    clear(queue.consumers).appendChild(table('Consumers', ['Consumer', 'Pending', 'Idle (s)'], q.consumer_list.map((c) =>
      h('tr', {}, [h('th', { scope: 'row', text: c.name }), h('td', { class: 'num', text: String(c.pending) }), h('td', { class: 'num', text: String(c.idle_s) })]))));
    showLetters(queue, q);
    drawRates(queue, q.rates);
    body.dataset.ready = '1';
  }, showError);
}

function showLetters(queue, q) {
  const rows = q.dead_letter_list.map((d) => h('tr', { 'data-letter': d.id }, [
    h('th', { scope: 'row' }, [h('code', { text: d.id })]),
    h('td', { text: new Date(d.failed_at_ms).toISOString().replace('T', ' ').slice(0, 19) }),
    h('td', { class: 'num', text: String(d.deliveries) }),
    h('td', { class: 'error-text', text: d.error }),
    h('td', {}, [h('code', { class: 'row', text: d.row })]),
    h('td', {}, [h('button', { type: 'button', text: 'Replay', 'aria-label': 'Replay ' + d.id, onclick: () => { replay(queue, [d.shard + ':' + d.id]); } })])
  ]));
  clear(queue.letters).append(table('Dead letters, oldest first', ['Entry', 'Failed at (UTC)', 'Deliveries', 'Error', 'Row', ''], rows));
  if (q.dead_letter_list.length) {
    queue.letters.appendChild(h('button', { type: 'button', text: 'Replay all ' + q.dead_letters, onclick: () => { replay(queue, []); } }));
  }
}

// Dead letters back into the stream: `ids` (shard:id), or every one if empty.
function replay(queue, ids) {
  api('POST', '/api/queue/dead-letters/replay', { ids: ids }).then((answer) => {
    showDone('Replayed ' + answer.replayed + ' dead letter(s).');
    return queue.refresh();
  }, showError);
}

function drawRates(queue, rates) {
  clear(queue.ratesBox);
  if (queue.ratePlot) { queue.ratePlot.destroy(); queue.ratePlot = null; }
  if (!rates.length) {
    queue.ratesBox.appendChild(h('p', { class: 'hint', text: 'Rates appear after two samples (one every 10 s).' }));
    return;
  }
  const xs = rates.map((r) => r.at);
  const canvas = h('div', { class: 'plot', role: 'img', 'aria-label': 'Insert and drain rates: see the table below' });
  queue.ratesBox.appendChild(canvas);
  if (window.uPlot) {
    queue.ratePlot = new window.uPlot({
      width: Math.max(280, main.clientWidth - 32), height: 200,
      series: [{}, { label: 'Inserted/s', stroke: '#4f46e5', width: 2 }, { label: 'Drained/s', stroke: '#059669', width: 2 }]
    }, [xs, rates.map((r) => r.inserted_per_s), rates.map((r) => r.drained_per_s)], canvas);
  }
  queue.ratesBox.appendChild(h('details', {}, [h('summary', { text: 'Rates as a table' }), table('Rates', ['Time (UTC)', 'Inserted/s', 'Drained/s'], rates.map((r) =>
    h('tr', {}, [h('th', { scope: 'row', text: new Date(r.at * 1000).toISOString().slice(11, 19) }), h('td', { class: 'num', text: String(r.inserted_per_s) }), h('td', { class: 'num', text: String(r.drained_per_s) })])))]));
}

function table(caption, columns, rows) {
  return h('table', {}, [h('caption', { class: 'sr-only', text: caption }),
    h('thead', {}, [h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))]),
    h('tbody', {}, rows.length ? rows : [h('tr', {}, [h('td', { colspan: String(columns.length), class: 'empty', text: 'None' })])])]);
}
