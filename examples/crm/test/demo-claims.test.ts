import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkClaims } from '../src/demo/claims.js';
import { createRecruit } from '../src/recruits.js';
import { TENANT } from '../src/tenant.js';
import { useCrmDatabase } from './crm-test-database.js';

const { crm, walflow } = useCrmDatabase();

describe("the demo's claims", () => {
  it('each fail on a day that did not happen: they are read from the database, not taken for granted', async () => {
    // A recruit who never got to licensing, an agent who does not exist, a mail that walflow never sent.
    const carol = await createRecruit(crm(), { name: 'Carol Shaw', email: 'carol@claims.test' });
    const claims = await checkClaims(walflow(), { tenant: TENANT, since: new Date(), tag: 'claims' }, {
      rolledBack: carol,
      commissioned: { id: randomUUID(), name: 'Alan Turing', netCents: 12_345 },
      decisions: [],
      runs: [],
      emails: [{ from: null, to: ['someone@claims.test'], subject: 'unsent', messageId: '<unsent@claims.test>', raw: '' }],
    });
    expect(claims.map(({ claim, holds }) => ({ claim, holds }))).toEqual(claims.map(({ claim }) => ({ claim, holds: false })));
    expect(claims).toHaveLength(7);
  });
});
