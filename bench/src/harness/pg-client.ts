import pg from 'pg';

/** Runs `work` on a fresh connection to `url` and closes it, whatever happens. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'walflow-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The first column of the first row of `text`. */
export async function queryValue<T>(url: string, text: string, values: unknown[] = []): Promise<T> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<Record<string, T>>(text, values);
    const row = rows[0];
    if (row === undefined) throw new Error(`no row from: ${text}`);
    return Object.values(row)[0] as T;
  });
}
