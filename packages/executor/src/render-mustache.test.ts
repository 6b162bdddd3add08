import { isWalflowError, parseLsn, type EventEnvelope } from '@walflow/core';
import Mustache from 'mustache';
import { describe, expect, it } from 'vitest';
import { MAX_RENDERED_CHARACTERS, MAX_RENDER_STEPS, renderText, templateProblem } from './render-mustache.js';

const event: EventEnvelope = {
  id: 'e1',
  type: 'recruit.graduated_to_agent',
  tenantId: 't1',
  aggregateType: 'recruit',
  aggregateId: 'r-42',
  payload: { name: 'Ada <script>"x"</script>', scores: [1, 2], nested: { level: 3 }, agents: [{ email: 'a@x.io' }, { email: 'b@x.io' }], active: true },
  metadata: { actorId: 'u1' },
  xid: '7',
  commitLsn: parseLsn('0/16B3748'),
  committedAt: '2024-05-01T12:00:00.123456Z',
  position: 0,
};

function failure(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('renderText', () => {
  it('HTML-escapes {{x}} by default and leaves {{{x}}} raw', () => {
    expect(renderText('Hi {{event.payload.name}}', event)).toBe('Hi Ada &lt;script&gt;&quot;x&quot;&lt;&#x2F;script&gt;');
    expect(renderText('Hi {{{event.payload.name}}}', event)).toBe('Hi Ada <script>"x"</script>');
    expect(renderText('Hi {{&event.payload.name}}', event)).toBe('Hi Ada <script>"x"</script>');
  });

  it("does not escape with escape 'none'", () => {
    expect(renderText('Welcome {{event.payload.name}} ({{event.aggregateId}})', event, { escape: 'none' })).toBe(
      'Welcome Ada <script>"x"</script> (r-42)',
    );
  });

  it('reads every envelope field and writes numbers, booleans and objects as text', () => {
    expect(renderText('{{event.id}} {{event.type}} {{event.tenantId}} {{event.aggregateType}} {{event.committedAt}}', event)).toBe(
      'e1 recruit.graduated_to_agent t1 recruit 2024-05-01T12:00:00.123456Z',
    );
    expect(renderText('{{event.payload.nested.level}} {{event.payload.active}} {{event.metadata.actorId}}', event)).toBe('3 true u1');
    expect(renderText('{{event.payload.nested}} {{{event.payload.scores}}}', event, { escape: 'none' })).toBe('{"level":3} [1,2]');
    expect(renderText('{{{event.payload.nested}}}', event)).toBe('{"level":3}');
  });

  it('renders missing values as empty text', () => {
    expect(renderText('[{{event.payload.missing}}][{{event.payload.nested.missing.deeper}}]', event)).toBe('[][]');
  });

  it('supports sections and inverted sections', () => {
    expect(renderText('{{#event.payload.agents}}{{email}};{{/event.payload.agents}}', event)).toBe('a@x.io;b@x.io;');
    expect(renderText('{{#event.payload.active}}on{{/event.payload.active}}{{^event.payload.missing}}none{{/event.payload.missing}}', event)).toBe(
      'onnone',
    );
  });

  it("reads the event inside a section over the payload's items, whatever keys an item has", () => {
    const spoofing = { ...event, payload: { items: [{ name: 'x', event: { tenantId: 'other', payload: { name: 'forged' } } }, { name: 'y', tenantId: 'other' }] } };
    expect(renderText('{{#event.payload.items}}{{name}}:{{event.tenantId}},{{tenantId}};{{/event.payload.items}}', spoofing, { escape: 'none' })).toBe('x:t1,;y:t1,other;');
    // The item's own fields are still read first by their own names, and the event's by `event.…` outside sections too.
    expect(renderText('{{#event.payload.items}}{{#event}}{{tenantId}}{{/event}}{{/event.payload.items}}', spoofing, { escape: 'none' })).toBe('t1t1');
  });

  it('reaches no method through the prototype chain', () => {
    for (const path of ['event.payload.constructor', 'event.payload.constructor.constructor', 'event.payload.scores.map', 'event.toString', 'event.payload.__proto__']) {
      expect(renderText(`[{{${path}}}]`, event)).toBe('[]');
      expect(renderText(`[{{#${path}}}x{{/${path}}}]`, event)).toBe('[]');
    }
    expect(renderText('[{{event.type.length}}]', event)).toBe('[26]');
  });

  it('does not depend on or change global Mustache settings', () => {
    const escape = Mustache.escape;
    Mustache.escape = (value: string) => `!${value}!`;
    try {
      expect(renderText('{{event.payload.name}}', event, { escape: 'none' })).toBe('Ada <script>"x"</script>');
      expect(renderText('{{event.aggregateId}}', event)).toBe('r-42');
      expect(Mustache.render('{{x}}', { x: 'y' })).toBe('!y!');
    } finally {
      Mustache.escape = escape;
    }
    expect(Mustache.render('{{x}}', { x: '<' })).toBe('&lt;');
  });

  it('refuses partials, also behind changed delimiters', () => {
    for (const template of ['{{> header}}', 'a {{ >header }} b', '{{=<% %>=}}<%> header%>', '{{#event.payload.active}}{{>x}}{{/event.payload.active}}']) {
      const error = failure(() => renderText(template, event));
      expect(isWalflowError(error, 'workflow_invalid')).toBe(true);
      expect((error as Error).message).toMatch(/partials/);
      expect(templateProblem(template)).toMatch(/partials/);
    }
  });

  it('fails with workflow_invalid on a malformed template', () => {
    const error = failure(() => renderText('Hi {{event.payload.name', event));
    expect(isWalflowError(error, 'workflow_invalid')).toBe(true);
    expect((error as Error).message).toMatch(/template is malformed: Unclosed tag/);
    expect(templateProblem('{{#a}}x')).toMatch(/Unclosed section/);
    expect(templateProblem('Hi {{event.payload.name}}')).toBeUndefined();
  });

  it('stops a rendering whose sections multiply beyond the bound, and renders one just under it', () => {
    const listOf = (length: number): EventEnvelope => ({ ...event, payload: { items: Array.from({ length }, (_, n) => n) } });
    const nested = '{{#event.payload.items}}{{#event.payload.items}}{{#event.payload.items}}.{{/event.payload.items}}{{/event.payload.items}}{{/event.payload.items}}';
    // 100³ innermost renders: a million steps, where the whole rendering may take MAX_RENDER_STEPS.
    const error = failure(() => renderText(nested, listOf(100)));
    expect(isWalflowError(error, 'action_failed')).toBe(true);
    expect((error as Error).message).toMatch(/more than 100,000 rendering steps/);
    // 40³ = 64,000 dots, and about as many steps again for the sections: within the bound.
    expect(renderText(nested, listOf(40))).toHaveLength(64_000);
    expect(MAX_RENDER_STEPS).toBe(100_000);
  });

  it('stops a rendering whose values add up beyond the bound, raw or escaped', () => {
    const big: EventEnvelope = { ...event, payload: { items: Array.from({ length: 200 }, (_, n) => n), text: 'x'.repeat(64 * 1024) } };
    for (const template of ['{{#event.payload.items}}{{{event.payload.text}}}{{/event.payload.items}}', '{{#event.payload.items}}{{event.payload}}{{/event.payload.items}}']) {
      const error = failure(() => renderText(template, big));
      expect(isWalflowError(error, 'action_failed')).toBe(true);
      expect((error as Error).message).toMatch(/more than 10,485,760 characters/);
    }
    // 150 × 64 KiB stays under 10 MiB.
    const fewer = { ...big, payload: { ...big.payload, items: Array.from({ length: 150 }, (_, n) => n) } };
    expect(renderText('{{#event.payload.items}}{{{event.payload.text}}}{{/event.payload.items}}', fewer)).toHaveLength(150 * 64 * 1024);
    expect(MAX_RENDERED_CHARACTERS).toBe(10 * 1024 * 1024);
  });

  it("counts a section with an empty body, and the template's own text, against the bounds", () => {
    const list: EventEnvelope = { ...event, payload: { items: Array.from({ length: 30_000 }, (_, n) => n) } };
    const emptyInside = '{{#event.payload.items}}{{#event.payload.items}}{{/event.payload.items}}{{/event.payload.items}}';
    expect((failure(() => renderText(emptyInside, list)) as Error).message).toMatch(/more than 100,000 rendering steps/);
    const text = `{{#event.payload.items}}${'x'.repeat(1024)}{{/event.payload.items}}`;
    const long: EventEnvelope = { ...event, payload: { items: Array.from({ length: 20_000 }, (_, n) => n) } };
    expect((failure(() => renderText(text, long)) as Error).message).toMatch(/more than 10,485,760 characters/);
  });

  it('starts every rendering with the whole bound', () => {
    const list: EventEnvelope = { ...event, payload: { items: Array.from({ length: 60_000 }, (_, n) => n) } };
    for (let round = 0; round < 3; round++) expect(renderText('{{#event.payload.items}}.{{/event.payload.items}}', list)).toHaveLength(60_000);
  });
});

describe("{{x}} escaped for an email address ('address')", () => {
  const withValue = (v: string): EventEnvelope => ({ ...event, payload: { v } });

  it('refuses a value holding any one character of address list syntax, each of which could add a recipient', () => {
    for (const character of [',', ';', '<', '>', '"', '(', ')', ':', '\\', '[', ']', '\r', '\n']) {
      const error = failure(() => renderText('{{event.payload.v}} <ops@corp.example>', withValue(`evil@attacker.example${character}Bob`), { escape: 'address' }));
      expect(isWalflowError(error) && error.message, JSON.stringify(character)).toMatch(/holds address list syntax/);
    }
    expect(renderText('{{event.payload.v}} <ops@corp.example>', withValue('Ada Lovelace'), { escape: 'address' })).toBe('Ada Lovelace <ops@corp.example>');
  });
});

describe("{{x}} escaped for HTML ('html')", () => {
  it('escapes the quote, backtick and equals sign that could end or add an attribute', () => {
    expect(renderText('{{event.payload.v}}', { ...event, payload: { v: "' ` =" } })).toBe('&#39; &#x60; &#x3D;');
  });
});
