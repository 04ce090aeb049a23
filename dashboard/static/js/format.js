/* Numbers as the dashboard shows them. */

// Revenue values come as Plausible's {short, value, long, currency}.
const REVENUE = ['total_revenue', 'average_revenue'];

export const numberFormat = new Intl.NumberFormat('en');

export function formatMetric(name, value) {
  if (value === null || value === undefined) return '-';
  if (name === 'bounce_rate' || name === 'percentage' || name === 'conversion_rate') return value + '%';
  if (name === 'visit_duration') {
    const s = Math.round(value);
    return (s >= 60 ? Math.floor(s / 60) + 'm ' : '') + (s % 60) + 's';
  }
  if (name === 'views_per_visit') return String(value);
  if (REVENUE.includes(name)) return value.short;
  return numberFormat.format(value);
}

// A metric's exact figure, for a tooltip where the cell shows it short (revenue).
export function fullMetric(name, value) {
  return REVENUE.includes(name) && value ? value.long : undefined;
}

// A headline's change against the previous period: its direction and its text.
export function formatChange(name, change) {
  const trend = change === null || change === undefined ? '' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  const text = trend ? (change > 0 ? '+' : '') + change + (name === 'bounce_rate' ? ' pts' : '%') : 'no earlier data';
  return { trend: trend, text: text };
}
