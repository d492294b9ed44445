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
  chartSeries = series;
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

// A figure is cut with an ellipsis when its box is narrow (a phone, a
// seven-digit count): the whole value is in its title.
function renderFigures(stats) {
  for (const div of $('figures').children) {
    const key = div.dataset.key, dd = div.querySelector('dd');
    dd.textContent = figureFmt()[key](stats[key]);
    dd.title = dd.textContent;
    dd.dataset.value = stats[key] == null ? '' : String(stats[key]);
  }
}

// The chart is drawn at the box's own width, one SVG unit per CSS pixel, so
// the axis text is 11 px at any width; it is drawn again when the box's
// width changes (a rotated phone, a resized window).
let chartSeries = null, chartWidth = 0;
const chartResize = new ResizeObserver(() => {
  const w = $('chart-box').clientWidth;
  if (chartSeries && w && Math.abs(w - chartWidth) > 1) renderChart(chartSeries);
});

// Widths of texts as the chart draws them (class "axis"), in px: measured in
// a probe SVG in the chart's box, so the page's font and size apply.
function textWidths(box, texts) {
  const probe = s('svg', { class: 'probe', width: 0, height: 0, 'aria-hidden': 'true' },
    ...texts.map(t => s('text', { class: 'axis' }, t)));
  box.append(probe);
  const w = [...probe.children].map(t => Math.ceil(t.getComputedTextLength()));
  probe.remove();
  return w;
}

// The chart: one bar per bucket (page views) and a line (visitors), inline SVG.
// The y labels are whole numbers ("250,000"): the left margin is the widest
// of them, measured, so no label is ever cut, whatever its digits.
function renderChart(series) {
  const box = $('chart-box');
  chartResize.observe(box);
  const b = series.buckets || [];
  const W = Math.max(280, Math.round(box.clientWidth || 800)), H = 220, R = 10, T = 12, B = 26;
  chartWidth = W;
  const max = Math.max(1, ...b.map(x => Math.max(x.page_views, x.visitors)));
  const ymax = niceMax(max);
  const ticks = [0, 0.5, 1].map(f => ({ v: ymax * f, text: fmtInt(Math.round(ymax * f)) }));
  const bucketFmt = series.interval === 'day' ? dayFmt : hourFmt;
  const xtexts = b.map(x => bucketFmt.format(new Date(x.time)));
  const widths = textWidths(box, [...ticks.map(t => t.text), ...xtexts]);
  const L = Math.max(...widths.slice(0, ticks.length)) + 10;
  const xw = Math.max(0, ...widths.slice(ticks.length));
  const bw = (W - L - R) / Math.max(1, b.length);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  const svg = s('svg', {
    id: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMid meet',
    'aria-label': `${series.interval === 'day' ? 'Daily' : 'Hourly'} page views and visitors, ${b.length} ${series.interval}s, at most ${fmtInt(max)}`,
    dataset: { buckets: b.length },
  });
  // grid and y labels
  for (const t of ticks) {
    const yy = y(t.v);
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: yy, y2: yy }),
      s('text', { class: 'axis y-label', x: L - 6, y: yy + 4, 'text-anchor': 'end' }, t.text));
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
  // a few x labels, evenly spread, as many as fit side by side (at most 8);
  // one that would stick out at an end is anchored to the plot's edge
  const fit = Math.max(1, Math.floor((W - L - R) / (xw + 12)));
  const every = Math.max(1, Math.ceil(b.length / Math.min(8, fit)));
  b.forEach((x, i) => {
    if (i % every) return;
    const cx = L + (i + 0.5) * bw, half = widths[ticks.length + i] / 2;
    const [tx, anchor] = cx - half < L ? [L, 'start'] : cx + half > W - R ? [W - R, 'end'] : [cx, 'middle'];
    svg.append(s('text', { class: 'axis x-label', x: tx.toFixed(1), y: H - 8, 'text-anchor': anchor }, xtexts[i]));
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

// A page as Top pages shows it: the breakdown's value is the URL without
// query and fragment ("https://shop.example/pricing"); the row shows its path,
// %-escapes decoded ("/متجر" rather than "/%D9%85..."), and its host only when
// the listed pages are on more than one host. Not a URL: shown as it is.
function pageParts(value) {
  let u = null;
  try { u = new URL(value); } catch { /* not a URL */ }
  if (!u || !/^https?:$/.test(u.protocol)) return { host: null, path: value };
  let path = u.pathname;
  try { path = decodeURI(path); } catch { /* a malformed escape: as sent */ }
  return { host: u.host, path };
}

function renderBreakdown(by, data) {
  const tbody = document.querySelector(`#breakdowns section[data-by="${by}"] tbody`);
  const results = data.results || [];
  if (!results.length) {
    put(tbody, h('tr', null, h('td', { colspan: 3, class: 'muted', text: 'No data in this range.' })));
    return;
  }
  const pages = by === 'page' ? results.map(r => pageParts(r.value)) : null;
  const hosts = new Set((pages || []).map(p => p.host).filter(Boolean));
  put(tbody, ...results.map((r, i) => {
    const bar = h('span', { class: 'share-bar' });
    bar.style.width = `${Math.round(r.share * 100)}%`;     // CSSOM: allowed under style-src 'self'
    let label = [r.value];
    if (pages) {
      const p = pages[i];
      label = [hosts.size > 1 && p.host ? h('span', { class: 'b-host', text: p.host }) : null, p.path];
    } else if (by === 'country' && flag(r.value)) {
      label = [h('span', { 'aria-hidden': 'true', text: `${flag(r.value)} ` }), r.value];
    }
    // one line, cut with an ellipsis, the whole value in the title; dir=auto:
    // a right-to-left path or name reads from the right
    return h('tr', null,
      h('td', { class: 'b-value', title: r.value, dir: 'auto' }, ...label),
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
