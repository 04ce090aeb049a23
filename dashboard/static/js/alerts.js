/* The one place a view reports what failed (or what a button did). */
import { clear, h } from './dom.js';

export const alerts = h('div', { class: 'alerts', role: 'alert', 'aria-live': 'assertive' });

export function showError(error) {
  clear(alerts).appendChild(h('p', { class: 'error', text: String(error.message || error) }));
}

export function showDone(text) {
  clear(alerts).appendChild(h('p', { class: 'ok', text: text }));
}
