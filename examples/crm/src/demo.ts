import { readFile } from 'node:fs/promises';
import { applyWorkflow } from '@walflow/executor';
import { createDatabase, loadConfig, migrate, startWalflow } from '@walflow/server';
import { startPostgres, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { createRecruitsTable, graduateRecruit, TENANT } from './recruits.js';

const logger = pino({ level: process.env.WALFLOW_LOG_LEVEL ?? 'warn' });
const slotName = 'walflow_demo';

const postgres = process.env.DATABASE_URL ? undefined : await startPostgres({ dedicated: true, log: (line) => console.log(line) });
const url = process.env.DATABASE_URL ?? postgres!.url;
const db = createDatabase(url, logger);
try {
  console.log('\n1. walflow migrate: replication slot first, then the walflow schema');
  console.log('  ', await migrate({ db, slotName, logger }));

  console.log('\n2. walflow workflows apply examples/crm/workflows/welcome-agent.json');
  const document: unknown = JSON.parse(await readFile(new URL('../workflows/welcome-agent.json', import.meta.url), 'utf8'));
  const { workflow, outcome } = await applyWorkflow(db, document);
  console.log(`   ${outcome} ${workflow.tenantId}/${workflow.name} version ${workflow.version}`);

  console.log('\n3. walflow start (in this process): consumer, dispatcher, workers');
  const walflow = await startWalflow(loadConfig({ DATABASE_URL: url, WALFLOW_SLOT: slotName, WALFLOW_HTTP_PORT: '0', WALFLOW_LOG_LEVEL: 'warn' }), logger);

  console.log('\n4. The application graduates Ada (committed) and Bob (rolled back)');
  await createRecruitsTable(db);
  await graduateRecruit(db, { id: 'r-ada', name: 'Ada' });
  await graduateRecruit(db, { id: 'r-bob', name: 'Bob' }, { failAfterWrite: true }).catch((error: Error) => console.log(`   ${error.message}`));

  await waitFor('the follow-up event', async () =>
    (await db.selectFrom('walflow.events').select('id').where('event_type', '=', 'agent.onboarding_started').execute()).length === 1,
  );
  await walflow.stop();

  console.log('\n5. What walflow recorded');
  const { rows: events } = await sql<Record<string, unknown>>`
    SELECT event_type, aggregate_id, payload::text, metadata->>'depth' AS depth, to_char(committed_at, 'HH24:MI:SS.US') AS committed
      FROM walflow.events WHERE tenant_id = ${TENANT} ORDER BY committed_at`.execute(db);
  console.table(events);
  const { rows: decisions } = await sql<Record<string, unknown>>`
    SELECT w.name AS workflow, d.outcome, d.reason, r.status AS run, r.attempts
      FROM walflow.decisions d JOIN walflow.workflows w ON w.id = d.workflow_id LEFT JOIN walflow.workflow_runs r ON r.id = d.run_id
     WHERE d.tenant_id = ${TENANT}`.execute(db);
  console.table(decisions);
  console.log('Bob’s rolled-back graduation never reached the WAL, so walflow never saw it.');
} finally {
  await db.destroy();
  await postgres?.stop();
}
