import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCatalog, defineEvent, isEventCatalog } from './catalog.js';

const graduated = defineEvent('recruit.graduated_to_agent', z.object({ recruitId: z.string() }));
const catalog = defineCatalog(graduated, defineEvent('policy.approved', z.object({ policyId: z.string(), premium: z.number() })));

describe('event catalog', () => {
  it('accepts a payload that matches its schema', () => {
    expect(catalog.check('recruit.graduated_to_agent', { recruitId: 'r1' })).toEqual({ ok: true, payload: { recruitId: 'r1' } });
  });

  it('names the field of an invalid payload', () => {
    const check = catalog.check('policy.approved', { policyId: 'p1', premium: 'high' });
    expect(check.ok).toBe(false);
    expect(!check.ok && check.code).toBe('payload_invalid');
    expect(!check.ok && check.reason).toMatch(/premium/);
  });

  it('never throws: a schema whose transform or refinement throws, or is async, fails the payload', () => {
    const throwing = defineCatalog(
      defineEvent('site.registered', z.object({ url: z.string().transform((url) => new URL(url).host) })),
      defineEvent('site.checked', z.object({ url: z.string() }).refine(() => Promise.resolve(true))),
    );
    expect(throwing.check('site.registered', { url: 'https://example.com/a' })).toEqual({ ok: true, payload: { url: 'example.com' } });
    expect(throwing.check('site.registered', { url: 'nope' })).toEqual({ ok: false, code: 'payload_invalid', reason: 'payload of site.registered is invalid: its schema threw Invalid URL' });
    expect(throwing.check('site.checked', { url: 'x' })).toMatchObject({ ok: false, code: 'payload_invalid', reason: expect.stringMatching(/^payload of site.checked is invalid: its schema threw /) });
  });

  it('reports an unknown event type', () => {
    expect(catalog.check('policy.rejected', {})).toMatchObject({ ok: false, code: 'event_unknown' });
  });

  it('refuses duplicate and malformed event names', () => {
    expect(() => defineCatalog(graduated, graduated)).toThrow(/defined twice/);
    expect(() => defineEvent('not an event', z.object({}))).toThrow(/invalid event type/);
  });

  it('is recognised when loaded from a module', () => {
    expect(isEventCatalog(catalog)).toBe(true);
    expect(isEventCatalog({ definitions: [] })).toBe(false);
  });
});
