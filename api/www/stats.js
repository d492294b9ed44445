// api/www/stats.js: the Statistics view — the figures (visitor-stats), the
// chart (timeseries, inline SVG), the breakdowns and the CSV export. Split
// from app.js, whose helpers it uses; text only, as everywhere.
import { h, put, s, api, state, $, wpath, showBanner, flag, fmtInt, fmtPct, fmtDuration,
  dateTimeFmt, hourFmt, dayFmt } from './app.js';
import { loadConcurrency } from './concurrency.js';

// dirty: the widget or range changed while the view was not on screen
export const statsView = { dirty: true };

const BREAKDOWNS = ['page', 'referrer', 'country', 'browser', 'device'];
let statsGen = 0;

export async function loadStats() {
  if (!state.widget) return;
  statsView.dirty = false;
  const gen = ++statsGen, wgen = state.gen, range = state.range;
  const interval = range === '24h' ? 'hour' : 'day';
  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === range));
  $('stats').setAttribute('aria-busy', 'true');
  loadConcurrency(range);       // its own request and figure (concurrency.js)
  let stats, series, parts;
  try {
    [stats, series, ...parts] = await Promise.all([
      api(wpath(`/visitor-stats?from=${range}`)),
      api(wpath(`/timeseries?from=${range}&interval=${interval}`)),
      ...BREAKDOWNS.map(by => api(wpath(`/breakdown?by=${by}&from=${range}&limit=10`))),
    ]);
  } catch (e) {
    if (gen !== statsGen || wgen !== state.gen) return;
    $('stats').removeAttribute('aria-busy');
    if (e.status !== 401 && e.status !== 403) showBanner(`statistics: ${e.message}`);
    statsView.dirty = true;
    return;
  }
  if (gen !== statsGen || wgen !== state.gen) return;
  $('stats-range').textContent = `${dateTimeFmt.format(new Date(stats.from))} – ${dateTimeFmt.format(new Date(stats.to))}`;
  renderFigures(stats);
  renderChart(series);
  parts.forEach((b, i) => renderBreakdown(BREAKDOWNS[i], b));
  $('stats').removeAttribute('aria-busy');
  $('stats').dataset.loaded = range;     // the browser test waits for this
}

// (a function: app.js's formatters are not there yet while this module loads)
const figureFmt = () => ({
  visitors: fmtInt, sessions: fmtInt, page_views: fmtInt, active_now: fmtInt,
  avg_time_on_site_s: fmtDuration, avg_pages: n => (n == null ? '–' : n.toFixed(2)),
  bounce_rate: fmtPct, chat_engagement_rate: fmtPct,
  invitations_sent: fmtInt, invitation_acceptance_rate: fmtPct, chats_by_visitors: fmtInt, chats_by_agents: fmtInt,
});

function renderFigures(stats) {
  for (const div of $('figures').children) {
    const key = div.dataset.key, dd = div.querySelector('dd');
    dd.textContent = figureFmt()[key](stats[key]);
    dd.dataset.value = stats[key] == null ? '' : String(stats[key]);
  }
}

// The chart: one bar per bucket (page views) and a line (visitors), inline SVG.
function renderChart(series) {
  const b = series.buckets || [];
  const W = 800, H = 220, L = 40, R = 10, T = 12, B = 26;
  const max = Math.max(1, ...b.map(x => Math.max(x.page_views, x.visitors)));
  const ymax = niceMax(max);
  const bw = (W - L - R) / Math.max(1, b.length);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  const bucketFmt = series.interval === 'day' ? dayFmt : hourFmt;
  const svg = s('svg', {
    id: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMid meet',
    'aria-label': `${series.interval === 'day' ? 'Daily' : 'Hourly'} page views and visitors, ${b.length} ${series.interval}s, at most ${max}`,
    dataset: { buckets: b.length },
  });
  // grid and y labels
  for (const f of [0, 0.5, 1]) {
    const v = ymax * f, yy = y(v);
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: yy, y2: yy }),
      s('text', { class: 'axis', x: L - 6, y: yy + 4, 'text-anchor': 'end' }, fmtInt(Math.round(v))));
  }
  const bars = s('g', { class: 'bars' });
  b.forEach((x, i) => {
    const top = y(x.page_views);
    bars.append(s('rect', {
      class: 'bar', x: (L + i * bw + bw * 0.15).toFixed(1), y: top.toFixed(1),
      width: Math.max(1, bw * 0.7).toFixed(1), height: Math.max(0, H - B - top).toFixed(1),
      dataset: { time: x.time, value: x.page_views },
    }, s('title', null, `${bucketFmt.format(new Date(x.time))}: ${x.page_views} page views, ${x.visitors} visitors, ${x.sessions} sessions`)));
  });
  svg.append(bars);
  if (b.length) {
    const d = b.map((x, i) => `${i ? 'L' : 'M'}${(L + (i + 0.5) * bw).toFixed(1)},${y(x.visitors).toFixed(1)}`).join('');
    svg.append(s('path', { class: 'line', d }));
  }
  // a few x labels, evenly spread
  const every = Math.max(1, Math.ceil(b.length / 8));
  b.forEach((x, i) => {
    if (i % every) return;
    svg.append(s('text', { class: 'axis', x: (L + (i + 0.5) * bw).toFixed(1), y: H - 8, 'text-anchor': 'middle' },
      bucketFmt.format(new Date(x.time))));
  });
  const legend = h('p', { class: 'legend' },
    h('span', { class: 'key bars-key', 'aria-hidden': 'true' }), ' page views ',
    h('span', { class: 'key line-key', 'aria-hidden': 'true' }), ' visitors');
  $('chart-cap').textContent = `${series.interval === 'day' ? 'Per day' : 'Per hour'}: page views and visitors`;
  put($('chart-box'), svg, legend);
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function renderBreakdown(by, data) {
  const tbody = document.querySelector(`#breakdowns section[data-by="${by}"] tbody`);
  const results = data.results || [];
  if (!results.length) {
    put(tbody, h('tr', null, h('td', { colspan: 3, class: 'muted', text: 'No data in this range.' })));
    return;
  }
  put(tbody, ...results.map(r => {
    const bar = h('span', { class: 'share-bar' });
    bar.style.width = `${Math.round(r.share * 100)}%`;     // CSSOM: allowed under style-src 'self'
    const label = by === 'country' && flag(r.value) ? [h('span', { 'aria-hidden': 'true', text: `${flag(r.value)} ` }), r.value] : [r.value];
    return h('tr', null,
      h('td', { class: 'b-value', title: r.value }, ...label),
      h('td', { class: 'b-count', text: fmtInt(r.count) }),
      h('td', { class: 'b-share' }, h('span', { class: 'share' }, bar), h('span', { class: 'sr', text: fmtPct(r.share) })));
  }));
}

// CSV: fetched with the Authorization header, handed to the browser as a Blob,
// so no token is ever in a URL; the file name is the server's.
export async function exportCsv(what, button) {
  button.disabled = true;
  try {
    const r = await api(wpath(`/export.csv?what=${what}&from=${state.range}`), { raw: true });
    const blob = await r.blob();
    const cd = r.headers.get('Content-Disposition') || '';
    const m = /filename="?([^";]+)"?/.exec(cd);
    const name = m ? m[1] : `herenow-${state.widget.id}-${what}.csv`;
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) showBanner(`export: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}
