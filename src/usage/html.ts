// PURE. Renders a ReportModel as one self-contained HTML document: inline CSS, charts as inline
// SVG each followed by the table behind it, no script and no external style, font or image, so the
// file opens offline and can be mailed. Every value from the rows is escaped: tenant ids, app
// names, User-Agent families and client addresses come from callers.

import { formatCount, type Compliance, type Counts, type ProductReport, type ReportModel } from './report.js';

/** The four actions in chart order, with their colours (each ≥ 3:1 against white, WCAG 1.4.11). */
export const ACTION_COLOURS: readonly { readonly key: 'compliant' | 'rewritten' | 'audited' | 'rejected'; readonly label: string; readonly colour: string }[] = [
  { key: 'compliant', label: 'arrived compliant', colour: '#1e6b34' },
  { key: 'rewritten', label: 'rewritten', colour: '#1f5fa8' },
  { key: 'audited', label: 'audited (left without it)', colour: '#8a5a00' },
  { key: 'rejected', label: 'rejected (never left)', colour: '#b3261e' },
];

/** Text and background colours of the page; the browser test computes their contrast ratios. */
export const PALETTE = {
  text: '#1a1a1a',
  muted: '#4d4d4d',
  background: '#ffffff',
  panel: '#f3f5f7',
  rule: '#c4c9cf',
  link: '#1f5fa8',
  warn: '#8a3c00',
} as const;

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const e = escapeHtml;
const n = (v: number): string => e(formatCount(v));
/** "2026-11-01T00:00:00.000Z" → "2026-11-01 00:00 UTC". */
const when = (isoText: string): string => (isoText === '' ? '—' : `${isoText.slice(0, 10)} ${isoText.slice(11, 16)} UTC`);
const pct = (ratio: number): string => `${(Math.floor(ratio * 1000) / 10).toFixed(1)}%`;

const CSS = `
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:${PALETTE.background};color:${PALETTE.text};font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:1120px;margin:0 auto;padding:0 24px}
header{padding-top:24px}
h1{font-size:1.75rem;line-height:1.2;margin:0 0 8px}
h2{font-size:1.35rem;margin:40px 0 12px;padding-top:12px;border-top:2px solid ${PALETTE.rule}}
h3{font-size:1.1rem;margin:24px 0 8px}
p{margin:8px 0}
.muted{color:${PALETTE.muted}}
.headline{background:${PALETTE.panel};border-left:6px solid ${ACTION_COLOURS[0]!.colour};padding:12px 16px;margin:16px 0;break-inside:avoid}
.headline.partial{border-left-color:${PALETTE.warn}}
.headline p.big{font-size:1.3rem;font-weight:600;margin:0 0 4px;overflow-wrap:anywhere}
.ua{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
dl.counts{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:4px 16px;margin:8px 0 0}
dl.counts div{display:flex;flex-direction:column}
dl.counts dt{font-size:.85rem;color:${PALETTE.muted}}
dl.counts dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;padding:0;margin:8px 0;list-style:none;font-size:.9rem}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid ${PALETTE.text}}
figure{margin:8px 0 16px;break-inside:avoid}
figure svg{width:100%;height:auto;display:block;max-height:360px}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:8px 0 16px;border:1px solid ${PALETTE.rule}}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:.95rem}
caption{text-align:left;padding:6px 8px;font-weight:600;caption-side:top}
th,td{padding:6px 8px;border-bottom:1px solid ${PALETTE.rule};text-align:left;vertical-align:top;white-space:nowrap}
td.num,th.num{text-align:right}
td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:12ch}
td.id{white-space:normal;overflow-wrap:anywhere;min-width:19ch;max-width:38ch;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
td.peak{white-space:normal;min-width:14ch}
thead th{background:${PALETTE.panel};position:sticky;top:0}
tfoot td{font-weight:600}
.flag{font-weight:600;color:${PALETTE.warn}}
.name{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-size:1rem}
.note{background:${PALETTE.panel};padding:8px 12px;border-left:4px solid ${PALETTE.warn}}
ul.hosts{columns:2 22ch;padding-left:20px;margin:4px 0}
footer{padding-bottom:32px;font-size:.9rem;color:${PALETTE.muted}}
@media (max-width:600px){
 header,main,footer{padding:0 12px}
 header{padding-top:16px}
 h1{font-size:1.4rem}
 .headline p.big{font-size:1.1rem}
 dl.facts{grid-template-columns:1fr}
 dl.facts dd{margin-bottom:6px}
 ul.hosts{columns:1}
 figure{overflow-x:auto}
 figure svg{min-width:720px}
}
@media print{
 @page{size:A4;margin:14mm}
 body{font-size:10.5pt}
 header,main,footer{max-width:none;padding:0}
 h2{break-after:avoid;margin-top:18pt}
 h3{break-after:avoid}
 .table-wrap{overflow:visible;border:none}
 thead{display:table-header-group}
 thead th{position:static}
 tr,li,.headline,figure{break-inside:avoid}
 table{font-size:8.5pt}
 th,td{padding:3pt 4pt;white-space:normal}
 td.num,th.num{white-space:nowrap}
 tfoot{display:table-row-group}
 a{color:${PALETTE.text};text-decoration:none}
}
`;

const countAttrs = (c: Counts): string =>
  (['calls', 'compliant', 'rewritten', 'rejected', 'audited', 'throttled', 'errors'] as const).map((k) => ` data-${k}="${c[k]}"`).join('');

/** One summary block: the headline sentence and the counts behind it. */
function headlineBlock(id: string, heading: string, userAgent: string, c: Compliance & { headline: string }): string {
  const partial = c.sent > 0 && c.carried < c.sent;
  const ua = userAgent === '' ? '<span class="muted">not a configured product</span>' : `<span class="ua">${e(userAgent)}</span>`;
  const item = (field: string, label: string, value: number): string =>
    `<div><dt>${e(label)}</dt><dd data-field="${field}" data-value="${value}">${n(value)}</dd></div>`;
  return `<div class="headline${partial ? ' partial' : ''}" data-product="${e(id)}" data-sent="${c.sent}" data-carried="${c.carried}" data-share="${e(c.share)}"${countAttrs(c)}>
<h3>${heading}</h3>
<p class="big" data-role="headline">${e(c.headline)}</p>
<p>Partner User-Agent: ${ua}</p>
<dl class="counts">${item('calls', 'API calls that arrived', c.calls)}${item('compliant', 'arrived compliant', c.compliant)}${item('rewritten', 'rewritten', c.rewritten)}${item('rejected', 'rejected', c.rejected)}${item('audited', 'audited', c.audited)}${item('sent', 'left for Microsoft', c.sent)}${item('throttled', '429 Too Many Requests', c.throttled)}${item('errors', 'other errors', c.errors)}</dl>
</div>`;
}

const legend = (): string =>
  `<ul class="legend" aria-hidden="true">${ACTION_COLOURS.map((a) => `<li><span class="swatch" style="background:${a.colour}"></span>${e(a.label)}</li>`).join('')}</ul>`;

/** Rounds a maximum up to 1, 2 or 5 × 10^k, so the axis label is a round number. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** Stacked vertical bars, one per day. */
function dayChart(product: ProductReport, idBase: string): string {
  const days = product.days;
  const W = 960;
  const H = 240;
  const left = 56;
  const bottom = 28;
  const top = 12;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...days.map((d) => d.calls)));
  const slot = days.length > 0 ? plotW / days.length : plotW;
  const barW = Math.max(1, slot * 0.75);
  const bars = days.map((d, i) => {
    let y = top + plotH;
    const x = left + i * slot + (slot - barW) / 2;
    const segs = ACTION_COLOURS.map((a) => {
      const h = (d[a.key] / max) * plotH;
      if (h <= 0) return '';
      y -= h;
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${a.colour}"/>`;
    }).join('');
    return `<g><title>${e(d.day)}: ${n(d.calls)} calls</title>${segs}</g>`;
  }).join('');
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  // A label every few days, plus the last day when it is not crowded by the previous label.
  const labelled = (i: number): boolean => i % labelEvery === 0 || (i === days.length - 1 && i % labelEvery >= labelEvery / 2);
  const xLabels = days.map((d, i) => (labelled(i)
    ? `<text x="${(left + i * slot + slot / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${e(d.day.slice(5))}</text>` : '')).join('');
  const id = `${idBase}-days`;
  return `<figure>
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="system-ui,sans-serif" fill="${PALETTE.text}">
<title id="${id}-t">Calls per day, ${e(product.id)}</title>
<desc id="${id}-d">Stacked bars of calls per UTC day by what the proxy did; the table below has the figures.</desc>
<line x1="${left}" y1="${top + plotH}" x2="${W - 8}" y2="${top + plotH}" stroke="${PALETTE.muted}"/>
<line x1="${left}" y1="${top}" x2="${W - 8}" y2="${top}" stroke="${PALETTE.rule}" stroke-dasharray="4 4"/>
<text x="${left - 6}" y="${top + 5}" text-anchor="end">${n(max)}</text>
<text x="${left - 6}" y="${top + plotH + 4}" text-anchor="end">0</text>
${bars}${xLabels}
</svg>
</figure>`;
}

/** Stacked horizontal bars, one per API (the top 12; the table lists every one). */
function apiChart(product: ProductReport, idBase: string): string {
  const apis = product.apis.slice(0, 12);
  const W = 960;
  const row = 26;
  const left = 220;
  const right = 90;
  const H = Math.max(1, apis.length) * row + 8;
  const plotW = W - left - right;
  const max = niceMax(Math.max(0, ...apis.map((a) => a.calls)));
  const bars = apis.map((a, i) => {
    const y = 4 + i * row;
    let x = left;
    const segs = ACTION_COLOURS.map((c) => {
      const w = (a[c.key] / max) * plotW;
      if (w <= 0) return '';
      const r = `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 8}" fill="${c.colour}"/>`;
      x += w;
      return r;
    }).join('');
    const name = a.api.length > 28 ? `${a.api.slice(0, 27)}…` : a.api;
    return `<g><title>${e(a.api)}: ${n(a.calls)} calls</title><text x="${left - 8}" y="${y + row / 2 + 4}" text-anchor="end">${e(name)}</text>${segs}<text x="${(x + 6).toFixed(1)}" y="${y + row / 2 + 4}">${n(a.calls)}</text></g>`;
  }).join('');
  const id = `${idBase}-apis`;
  return `<figure>
<svg role="img" aria-labelledby="${id}-t ${id}-d" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="system-ui,sans-serif" fill="${PALETTE.text}">
<title id="${id}-t">Calls by API, ${e(product.id)}</title>
<desc id="${id}-d">Stacked bars of calls per API by what the proxy did${product.apis.length > apis.length ? `, the ${apis.length} busiest APIs` : ''}; the table below has the figures.</desc>
${bars}
</svg>
</figure>`;
}

const COUNT_COLUMNS: readonly { key: keyof Counts; label: string }[] = [
  { key: 'calls', label: 'Calls' },
  { key: 'compliant', label: 'Compliant' },
  { key: 'rewritten', label: 'Rewritten' },
  { key: 'rejected', label: 'Rejected' },
  { key: 'audited', label: 'Audited' },
  { key: 'throttled', label: '429s' },
  { key: 'errors', label: 'Errors' },
];

const countHeads = (): string => COUNT_COLUMNS.map((c) => `<th scope="col" class="num">${c.label}</th>`).join('');
const countCells = (c: Counts): string => COUNT_COLUMNS.map((col) => `<td class="num" data-field="${col.key}" data-value="${c[col.key]}">${n(c[col.key])}</td>`).join('');

/** A count table with a first key column and a total row. */
function countTable(caption: string, keyLabel: string, kind: string, lines: readonly (Counts & { key: string })[], total: Counts): string {
  const body = lines.length === 0
    ? `<tr><td colspan="${COUNT_COLUMNS.length + 1}" class="muted">No calls in this period.</td></tr>`
    : lines.map((l) => `<tr data-${kind}="${e(l.key)}"><th scope="row">${e(l.key)}</th>${countCells(l)}</tr>`).join('\n');
  return `<div class="table-wrap" role="region" aria-label="${e(caption)}" tabindex="0"><table data-table="${kind}">
<caption>${e(caption)}</caption>
<thead><tr><th scope="col">${e(keyLabel)}</th>${countHeads()}</tr></thead>
<tbody>
${body}
</tbody>
<tfoot><tr data-${kind}="(total)"><td>Total</td>${countCells(total)}</tr></tfoot>
</table></div>`;
}

const sum = (lines: readonly Counts[]): Counts => {
  const out = { calls: 0, compliant: 0, rewritten: 0, rejected: 0, audited: 0, throttled: 0, errors: 0 };
  for (const l of lines) for (const k of Object.keys(out) as (keyof Counts)[]) out[k] += l[k];
  return out;
};

function productSection(p: ProductReport, index: number): string {
  const idBase = `p${index}`;
  const apis = p.apis.map((a) => ({ ...a, key: a.api }));
  const days = p.days.map((d) => ({ ...d, key: d.day }));
  return `<section aria-labelledby="${idBase}-h" data-section="product" data-product="${e(p.id)}">
<h2 id="${idBase}-h">Calls of ${e(p.id)}</h2>
<h3>By API</h3>
${legend()}
${apiChart(p, idBase)}
${countTable(`Calls by API, ${p.id}`, 'API', 'api', apis, sum(apis))}
<h3>By day (UTC)</h3>
${legend()}
${dayChart(p, idBase)}
${countTable(`Calls by day, ${p.id}`, 'Day', 'day', days, sum(days))}
</section>`;
}

function tenantSection(model: ReportModel): string {
  const rows = model.tenants.flatMap((t) => {
    const app = t.appName === '' ? e(t.app) : `<span class="name">${e(t.appName)}</span><br><span class="muted">${e(t.app)}</span>`;
    const head = `<td>${e(t.product)}</td><td class="id">${e(t.tenant)}</td><td class="id">${app}</td><td class="num" data-field="calls" data-value="${t.calls}">${n(t.calls)}</td><td class="num" data-field="throttled" data-value="${t.throttled}">${n(t.throttled)}</td>`;
    const attrs = `data-tenant="${e(t.tenant)}" data-app="${e(t.app)}" data-product="${e(t.product)}"`;
    if (t.limits.length === 0) return [`<tr ${attrs}>${head}<td colspan="3" class="muted">no peaks recorded</td></tr>`];
    return t.limits.map((l) => {
      const use = (w: { peak: number; limit: number }): string => {
        const ratio = w.limit > 0 ? w.peak / w.limit : 0;
        const flag = ratio >= 1 ? '<br><span class="flag">at or over the limit</span>' : ratio >= 0.8 ? '<br><span class="flag">near the limit</span>' : '';
        return `${n(w.peak)} of ${n(w.limit)} (${pct(ratio)})${flag}`;
      };
      return `<tr ${attrs} data-group="${e(l.group)}">${head}<td>${e(l.group)}</td><td class="peak" data-field="perMinute" data-value="${l.perMinute.peak}">${use(l.perMinute)}</td><td class="peak" data-field="perHour" data-value="${l.perHour.peak}">${use(l.perHour)}</td></tr>`;
    });
  });
  const empty = `<tr><td colspan="8" class="muted">No calls in this period.</td></tr>`;
  const util = model.utilisation === undefined ? '' : `
<h3>Worst tenant and application per limit group</h3>
<p>From the replicas' <span class="ua">rate_limit_utilization</span> gauge: the highest share of a limit any one tenant and application reached on any replica (each replica counts only the calls it carried).</p>
<div class="table-wrap" role="region" aria-label="Worst utilisation per limit group" tabindex="0"><table data-table="utilisation">
<caption>Worst utilisation per product, limit group and window</caption>
<thead><tr><th scope="col">Product</th><th scope="col">Limit group</th><th scope="col">Window</th><th scope="col" class="num">Highest use of the limit</th></tr></thead>
<tbody>
${model.utilisation.length === 0 ? '<tr><td colspan="4" class="muted">No samples in this period.</td></tr>' : model.utilisation.map((u) => `<tr data-product="${e(u.product)}" data-group="${e(u.group)}" data-window="${e(u.window)}"><td>${e(u.product)}</td><td>${e(u.group)}</td><td>${e(u.window)}</td><td class="num" data-value="${u.utilisation}">${pct(u.utilisation)}${u.utilisation >= 1 ? ' <span class="flag">at or over</span>' : u.utilisation >= 0.8 ? ' <span class="flag">near</span>' : ''}</td></tr>`).join('\n')}
</tbody>
</table></div>`;
  return `<section aria-labelledby="tenants-h" data-section="tenants">
<h2 id="tenants-h">Tenants and applications</h2>
<p>Calls per customer tenant and Azure AD application (from the bearer token's <span class="ua">tid</span> and <span class="ua">appid</span>), with the highest count in any sliding minute and hour against Microsoft's limit for that group of APIs, and the 429 answers Microsoft sent.</p>
<div class="table-wrap" role="region" aria-label="Tenants and applications" tabindex="0"><table data-table="tenants">
<caption>Tenants and applications, busiest first</caption>
<thead><tr><th scope="col">Product</th><th scope="col">Tenant</th><th scope="col">Application</th><th scope="col" class="num">Calls</th><th scope="col" class="num">429s</th><th scope="col">Limit group</th><th scope="col">Peak per minute</th><th scope="col">Peak per hour</th></tr></thead>
<tbody>
${rows.length === 0 ? empty : rows.join('\n')}
</tbody>
</table></div>${util}
</section>`;
}

function callerSection(model: ReportModel): string {
  let body: string;
  if (model.callers === undefined) {
    body = `<p class="note" data-role="callers-unavailable">This source cannot name non-compliant callers: User-Agent families and client addresses are not metric labels. Run the report against a replica's store (or the fleet's shared PostgreSQL store) for this list.</p>`;
  } else if (model.callers.length === 0) {
    body = `<p data-role="callers-none">No non-compliant caller in this period: every call arrived with the partner User-Agent.</p>`;
  } else {
    body = `<div class="table-wrap" role="region" aria-label="Non-compliant callers" tabindex="0"><table data-table="callers">
<caption>Callers that sent no partner User-Agent, most calls first</caption>
<thead><tr><th scope="col">Product</th><th scope="col">User-Agent family</th><th scope="col">Client address</th><th scope="col" class="num">Calls</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
<tbody>
${model.callers.map((c) => `<tr data-product="${e(c.product)}" data-family="${e(c.family)}" data-client="${e(c.client)}"><td>${e(c.product)}</td><td class="wrap ua">${e(c.family)}</td><td class="ua">${e(c.client)}</td><td class="num" data-field="calls" data-value="${c.calls}">${n(c.calls)}</td><td>${e(when(c.firstSeen))}</td><td>${e(when(c.lastSeen))}</td></tr>`).join('\n')}
</tbody>
</table></div>`;
  }
  return `<section aria-labelledby="callers-h" data-section="callers">
<h2 id="callers-h">Non-compliant callers to fix</h2>
<p>Software that called without the partner User-Agent. The proxy ${model.facts.mode === 'rewrite' ? 'rewrote' : model.facts.mode === 'reject' ? 'refused' : 'counted'} these calls; fixing the caller makes it compliant without the proxy.</p>
${body}
</section>`;
}

function factsSection(model: ReportModel): string {
  const f = model.facts;
  const ca = f.ca === undefined
    ? '<span class="muted">not available</span>'
    : `${e(when(new Date(f.ca.notBefore).toISOString()))} to ${e(when(new Date(f.ca.notAfter).toISOString()))}<br><span class="muted ua">${e(f.ca.subject)}</span>`;
  const versions = f.replicaVersions.length === 0 ? e(f.version) : `${e(f.replicaVersions.join(', '))} <span class="muted">(replicas; report rendered by ${e(f.version)})</span>`;
  return `<section aria-labelledby="facts-h" data-section="facts">
<h2 id="facts-h">What was enforced</h2>
<dl class="facts">
<dt>Policy mode</dt><dd data-field="mode">${e(f.mode)}${f.mode === 'rewrite' ? ` (${e(f.rewrite)})` : ''}</dd>
<dt>Products</dt><dd>${f.products.map((p) => `${e(p.id)}: <span class="ua">${e(p.userAgent)}</span>`).join('<br>') || '—'}</dd>
<dt>Clouds</dt><dd data-field="clouds">${e(f.clouds.join(', '))}</dd>
<dt>Interception CA valid</dt><dd data-field="ca">${ca}</dd>
<dt>Proxy version</dt><dd data-field="version">${versions}</dd>
<dt>Figures from</dt><dd data-field="source">${f.source.kind === 'store' ? `usage store (${e(f.source.name)})` : `Prometheus at <span class="ua">${e(f.source.name)}</span>, every replica it scrapes`}</dd>
<dt>Enforced hosts</dt><dd><ul class="hosts">${f.hosts.map((h) => `<li class="ua">${e(h)}</li>`).join('')}</ul>${f.hosts.some((h) => h.startsWith('graph.') || h.startsWith('dod-graph.')) ? '<span class="muted">Graph hosts: the /v1.0/security/ and /beta/security/ paths only.</span>' : ''}</dd>
</dl>
</section>`;
}

function aboutSection(model: ReportModel): string {
  const notes = [...model.notes, ...model.truncated.map((t) => `The ${t} list reached the source's row limit; its table is incomplete.`)];
  return `<section aria-labelledby="about-h" data-section="about">
<h2 id="about-h">How to read these figures</h2>
<ul>
<li><strong>Calls</strong> are requests to an enforced Microsoft security API that reached the proxy. Token endpoints and Graph paths outside /security are not API calls and are not counted.</li>
<li><strong>Left for Microsoft</strong> is every call except the rejected ones, which the proxy answered itself (403) without contacting Microsoft.</li>
<li><strong>Carried</strong> the partner User-Agent: calls that arrived compliant plus calls the proxy rewrote. Audited calls were forwarded unchanged and count against the share. The share is rounded down, so 100.00% means every call.</li>
<li><strong>429s</strong> are Too Many Requests answers from Microsoft; <strong>errors</strong> are other failed calls (5xx from Microsoft or the proxy).</li>
<li>Days are UTC; the period includes its start and excludes its end.</li>
${notes.map((t) => `<li data-role="note">${e(t)}</li>`).join('\n')}
</ul>
</section>`;
}

/** Renders the model as one self-contained HTML document. */
export function renderHtml(model: ReportModel): string {
  const total = { ...model.total, headline: model.products.length > 1 ? allHeadline(model) : '' };
  const summary = model.products.map((p) => headlineBlock(p.id, `${e(p.id)}`, p.userAgent, p)).join('\n');
  const period = `${when(model.from)} to ${when(model.to)}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="mde-partner-proxy ${e(model.facts.version)}">
<title>${e(model.title)}, ${e(model.from.slice(0, 10))} to ${e(model.to.slice(0, 10))}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${e(model.title)}</h1>
<p data-role="period" data-from="${e(model.from)}" data-to="${e(model.to)}">Period: <strong>${e(period)}</strong> (end excluded). Generated ${e(when(model.generatedAt))} by mde-partner-proxy ${e(model.facts.version)}.</p>
</header>
<main>
<section aria-labelledby="summary-h" data-section="summary">
<h2 id="summary-h">Summary</h2>
${summary}
${model.products.length > 1 ? headlineBlock('(all)', 'All products', '', total) : ''}
</section>
${model.products.map((p, i) => productSection(p, i)).join('\n')}
${tenantSection(model)}
${callerSection(model)}
${factsSection(model)}
${aboutSection(model)}
</main>
<footer><p>Source: ${model.facts.source.kind === 'store' ? `the proxy's usage store (${e(model.facts.source.name)})` : `Prometheus (${e(model.facts.source.name)})`}. The same figures are available as JSON and CSV (<span class="ua">--format json|csv</span>, or <span class="ua">/report?format=json|csv</span>).</p></footer>
</body>
</html>
`;
}

function allHeadline(model: ReportModel): string {
  const t = model.total;
  if (t.sent === 0) return 'No calls to Microsoft security APIs left the proxy in this period.';
  return `${formatCount(t.sent)} calls to Microsoft security APIs across ${model.products.length} products, ${t.share} carried their product's partner User-Agent.`;
}
