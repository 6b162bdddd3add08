import { html, SafeHtml, type Interpolation } from '../html.js';
import type { Principal } from '../session.js';

export type Section = 'overview' | 'events' | 'workflows' | 'dead';

export interface Frame {
  title: string;
  nonce: string;
  principal: Principal | null;
  section?: Section;
  /** A line saying what the last action did, or what went wrong. */
  notice?: { kind: 'done' | 'error'; text: string } | undefined;
}

const SECTIONS: [Section, string, string][] = [
  ['overview', 'Overview', '/console'],
  ['events', 'Events', '/console/events'],
  ['workflows', 'Workflows', '/console/workflows'],
  ['dead', 'Dead letters & runs', '/console/dead'],
];

// One small stylesheet, inline (under the page's nonce): the console loads nothing else.
const STYLE = new SafeHtml(`
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#1f3b57;color:#fff}
header a{color:#cfe2f3;text-decoration:none}header a.on{color:#fff;font-weight:bold}
header .who{margin-left:auto;font-size:12px}header form{display:inline}
main{padding:1em 1.2em;max-width:1200px}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em;background:#fff}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#eef2f6}
pre{background:#fff;border:1px solid #ddd;padding:.6em;overflow:auto;max-height:24em;margin:.3em 0}
code,pre,.mono{font-family:ui-monospace,monospace;font-size:12px}
.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:12px;background:#e4e4e4}
.ok,.fired,.succeeded,.active,.leader{background:#d6f0d6}.degraded,.queued,.running,.paused,.cooldown,.rate_limited,.standby{background:#fbefc9}
.down,.dead,.condition_error,.loop_blocked,.failed{background:#f6d3d3}
.notice{padding:.5em .8em;margin:0 0 1em;border-radius:4px}.notice.done{background:#d6f0d6}.notice.error{background:#f6d3d3}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;background:#fff;border:1px solid #ddd;padding:.5em}
form.inline{display:inline}fieldset{border:1px solid #ddd;background:#fff;margin:0 0 1em}
input,select,button{font:inherit}label{margin-right:.8em}
.live-on{color:#2a7a2a;font-weight:bold}tr.new{animation:flash 2s}@keyframes flash{from{background:#fff3b0}to{background:#fff}}
`);

export function csrfField(principal: Principal | null): SafeHtml {
  return principal?.csrfToken ? html`<input type="hidden" name="_csrf" value="${principal.csrfToken}">` : html``;
}

/** The page shell: navigation, who is signed in (and a sign-out), the notice, the body, an optional script. */
export function layout(frame: Frame, body: Interpolation, script?: string): SafeHtml {
  const { principal } = frame;
  const who =
    principal === null
      ? ''
      : html`<span class="who">${principal.name}${principal.tenant === null ? ' · all tenants' : html` · tenant <strong>${principal.tenant}</strong>`}
        ${principal.csrfToken === null ? '' : html`<form method="post" action="/console/logout">${csrfField(principal)}<button>Sign out</button></form>`}</span>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${frame.title} · walflow</title><style nonce="${frame.nonce}">${STYLE}</style></head>
<body><header><strong>walflow</strong>
${principal === null ? '' : SECTIONS.map(([section, label, href]) => html`<a href="${href}" class="${section === frame.section ? 'on' : ''}">${label}</a>`)}
${who}</header>
<main>${frame.notice ? html`<p class="notice ${frame.notice.kind}" role="status">${frame.notice.text}</p>` : ''}
<h1>${frame.title}</h1>
${body}</main>
${script === undefined ? '' : html`<script nonce="${frame.nonce}">${new SafeHtml(script)}</script>`}
</body></html>`;
}

export function badge(value: string): SafeHtml {
  return html`<span class="badge ${value}">${value}</span>`;
}

export function prettyJson(value: unknown): SafeHtml {
  return html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
}
