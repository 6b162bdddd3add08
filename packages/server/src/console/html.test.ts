import { describe, expect, it } from 'vitest';
import { escapeHtml, html } from './html.js';

describe('html', () => {
  it('escapes every interpolated text, in content and in attributes', () => {
    const payload = `<script>alert("x")</script>' onmouseover='y' & more`;
    expect(html`<td title="${payload}">${payload}</td>`.text).toBe(
      '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y&#39; &amp; more">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y&#39; &amp; more</td>',
    );
  });

  it('keeps markup it produced, joins lists, and renders nothing for null, undefined and false', () => {
    const rows = ['a<b', 'c'].map((cell) => html`<li>${cell}</li>`);
    expect(html`<ul>${rows}</ul>${null}${undefined}${false}${0}`.text).toBe('<ul><li>a&lt;b</li><li>c</li></ul>0');
  });

  it('does not take a string that looks like markup for markup', () => {
    expect(html`${'<b>bold</b>'}`.text).toBe('&lt;b&gt;bold&lt;/b&gt;');
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
  });
});
