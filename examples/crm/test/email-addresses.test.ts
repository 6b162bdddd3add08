import { describe, expect, it } from 'vitest';
import { createClient } from '../src/clients.js';
import { createRecruit } from '../src/recruits.js';
import { createUser } from '../src/users.js';
import { emittedBy, useCrmDatabase } from './crm-test-database.js';

const { crm, walflow } = useCrmDatabase();

/** Addresses RFC 5321 allows and the catalog's events do not: a person stored with one could never be in an event. */
const refusedByTheCatalog = ['admin@localhost', 'josé@example.com', 'a&b@example.com'];

describe('email addresses', () => {
  it.each(refusedByTheCatalog)('createUser, createClient and createRecruit refuse %s, which no event could carry, and store nothing', async (email) => {
    const rows = await emittedBy(walflow(), async () => {
      const refusal = `${JSON.stringify(email)} is not an email address`;
      await expect(createUser(crm(), { name: 'Root', email, role: 'admin' })).rejects.toThrow(refusal);
      await expect(createClient(crm(), { name: 'Root', email })).rejects.toThrow(refusal);
      await expect(createRecruit(crm(), { name: 'Root', email })).rejects.toThrow(refusal);
    });
    expect(rows).toEqual([]);
    for (const table of ['crm.users', 'crm.clients', 'crm.recruits'] as const) {
      expect(await crm().selectFrom(table).select('id').where('email', '=', email).execute()).toEqual([]);
    }
  });
});
