// api/www/concurrency.js: the statistics' concurrency chart (docs/DASHBOARD.md):
// how many visitors were on the site at once over the selected range — per
// bucket the peak (bars) and the time-weighted average (line), from
// GET …/concurrency. stats.js mounts it (loadConcurrency at every load of the
// statistics); it draws into #conc-box as inline SVG, text only.
import { h, put, s, api, state, $, wpath, fmtInt, hourFmt, dayFmt, dateTimeFmt } from './app.js';

const RANGE_MS = { '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
const UNITS = [['1m', 60e3, 'minute'], ['5m', 300e3, '5 minutes'], ['1h', 3600e3, 'hour']];
const MAX_BUCKETS = 1440;       // the API's cap per request
let gen = 0;

// The finest interval that keeps the range within MAX_BUCKETS (the API widens
// the range to whole buckets: one more at most).
export function pickInterval(rangeMs) {
  for (const u of UNITS) if (Math.ceil(rangeMs / u[1]) + 1 <= MAX_BUCKETS) return u;
  return UNITS[UNITS.length - 1];
}

export async function loadConcurrency(range = state.range) {
  if (!state.widget) return;
  const my = ++gen, wgen = state.gen;
  const [interval, , label] = pickInterval(RANGE_MS[range] || RANGE_MS['24h']);
  const fig = $('conc');
  fig.setAttribute('aria-busy', 'true');
  let data;
  try {
    data = await api(wpath(`/concurrency?from=${range}&interval=${interval}`));
  } catch (e) {
    if (my !== gen || wgen !== state.gen) return;
    fig.removeAttribute('aria-busy');
    $('conc-cap').textContent = 'Concurrent visitors';
    put($('conc-box'), h('p', { class: 'muted', text: `Not available: ${e.message}` }));
    return;
  }
  if (my !== gen || wgen !== state.gen) return;
  render(data, label);
  fig.removeAttribute('aria-busy');
  fig.dataset.loaded = `${range} ${interval}`;     // the browser test waits for this
}

function render(data, label) {
  const b = data.buckets || [];
  const W = 800, H = 200, L = 40, R = 10, T = 12, B = 26;
  const max = Math.max(1, ...b.map(x => x.peak));
  const ymax = niceMax(max);
  const bw = (W - L - R) / Math.max(1, b.length);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  const fmt = data.interval === '1h' && b.length > 48 ? dayHourFmt : hourFmt;
  const svg = s('svg', {
    id: 'conc-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMid meet',
    'aria-label': `Concurrent visitors per ${label}: ${b.length} buckets, peak ${data.peak ?? 0}`,
    dataset: { buckets: b.length, interval: data.interval },
  });
  // grid and y labels: whole visitors only
  for (const v of Number.isInteger(ymax / 2) ? [0, ymax / 2, ymax] : [0, ymax]) {
    const yy = y(v);
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: yy, y2: yy }),
      s('text', { class: 'axis', x: L - 6, y: yy + 4, 'text-anchor': 'end' }, fmtInt(Math.round(v))));
  }
  // bars: the peak of each bucket (none drawn for 0: a thin line of them reads as data)
  const bars = s('g', { class: 'bars' });
  b.forEach((x, i) => {
    if (!x.peak) return;
    const top = y(x.peak);
    bars.append(s('rect', {
      class: 'bar conc-peak', x: (L + i * bw + (bw > 3 ? bw * 0.1 : 0)).toFixed(2), y: top.toFixed(1),
      width: Math.max(0.8, bw > 3 ? bw * 0.8 : bw).toFixed(2), height: Math.max(0, H - B - top).toFixed(1),
      dataset: { time: x.time, peak: x.peak, avg: x.avg },
    }, s('title', null, `${dateTimeFmt.format(new Date(x.time))}: at most ${x.peak} at once, ${x.avg} on average`)));
  });
  svg.append(bars);
  // the average: one line over every bucket
  if (b.length) {
    const d = b.map((x, i) => `${i ? 'L' : 'M'}${(L + (i + 0.5) * bw).toFixed(1)},${y(x.avg).toFixed(1)}`).join('');
    svg.append(s('path', { class: 'line conc-avg', d }));
  }
  const every = Math.max(1, Math.ceil(b.length / 8));
  b.forEach((x, i) => {
    if (i % every) return;
    svg.append(s('text', { class: 'axis', x: (L + (i + 0.5) * bw).toFixed(1), y: H - 8, 'text-anchor': 'middle' },
      fmt.format(new Date(x.time))));
  });
  const legend = h('p', { class: 'legend' },
    h('span', { class: 'key bars-key', 'aria-hidden': 'true' }), ' peak at one instant ',
    h('span', { class: 'key line-key', 'aria-hidden': 'true' }), ' average');
  const peak = data.peak
    ? `peak ${fmtInt(data.peak)} at ${dateTimeFmt.format(new Date(data.peak_at))}`
    : 'no one in this range';
  $('conc-cap').textContent = `Concurrent visitors per ${label} — ${peak}`;
  $('conc-cap').dataset.peak = String(data.peak ?? 0);
  put($('conc-box'), svg, legend);
}

const dayHourFmt = { format: d => `${dayFmt.format(d)} ${hourFmt.format(d)}` };

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v && Number.isInteger(m * p)) return m * p;
  return 10 * p;
}
