import { isUuid, WalflowError } from '@walflow/core';
import { explainEvent, type EventExplanation } from '@walflow/executor';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .description('why did (or didn’t) each workflow run for an event: decisions, runs, and the causal chain')
    .argument('<event-id>', 'the event (outbox) id')
    .option('--json', 'print JSON')
    .action(async (eventId: string, options: { json?: boolean }) => {
      if (!isUuid(eventId)) {
        throw new WalflowError('config_invalid', `not an event id (a uuid): ${eventId}`);
      }
      const context = commandContext({ logToStdout: false });
      const explanation = await withDatabase(context, (db) => explainEvent(db, eventId));
      if (!explanation) throw new WalflowError('not_found', `no recorded event ${eventId} (not yet recorded, parked as a dead letter, or pruned)`);
      process.stdout.write(options.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
    });
}

export function formatExplanation({ event, decisions, runs, causes, effects }: EventExplanation): string {
  const lines = [
    `event ${event.id}  ${event.type}  tenant ${event.tenantId}${event.recovered ? '  (recovered by repair)' : ''}`,
    `  committed ${event.committedAt} at ${event.commitLsn}` + (event.aggregateId === null ? '' : `  aggregate ${event.aggregateType ?? ''}/${event.aggregateId}`),
    `  payload  ${JSON.stringify(event.payload)}`,
    `  metadata ${JSON.stringify(event.metadata)}`,
    '',
    // Prune deletes the decisions of events it keeps for a JetStream sink that has yet to publish them.
    decisions.length === 0 ? 'no decisions recorded (no workflow matched this type and tenant, or they were pruned)' : 'decisions',
    ...decisions.map((d) => `  ${d.workflow} v${d.version}: ${d.outcome} — ${d.reason}${d.replayId === null ? '' : ` (replay ${d.replayId})`}`),
  ];
  if (runs.length > 0) lines.push('', 'runs');
  for (const run of runs) {
    const replay = run.replayId === null ? '' : ` (replay ${run.replayId})`;
    lines.push(`  ${run.id}  ${run.workflow}${replay}: ${run.status} after ${run.attempts} attempt(s)${run.lastError === null ? '' : ` — ${run.lastError}`}`);
    for (const action of run.actions) lines.push(`    action ${action.index} ${action.type}: ${action.status}${action.error === null ? '' : ` — ${action.error}`}`);
  }
  if (causes.length > 0) lines.push('', 'caused by', ...causes.map((cause) => `  ${cause.id}  ${cause.type}  ${cause.committedAt}`));
  if (effects.length > 0) lines.push('', 'led to', ...effects.map((effect) => `  ${effect.id}  ${effect.type}  ${effect.committedAt}`));
  return `${lines.join('\n')}\n`;
}
