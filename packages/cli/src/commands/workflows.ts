import { readFile } from 'node:fs/promises';
import { WalflowError } from '@walflow/core';
import { applyWorkflow, deleteWorkflow, isUnreadable, listWorkflows, setWorkflowStatus, validateWorkflow } from '@walflow/executor';
import { loadCatalog, recordAudit, uncataloguedTypes } from '@walflow/server';
import type { Command } from 'commander';
import { nonEmptyText } from '../option-text.js';
import { commandContext, withDatabase } from '../context.js';
import { errorMessage } from '../error-message.js';

export function registerWorkflows(program: Command): void {
  const workflows = program.command('workflows').description('manage workflow definitions');

  workflows
    .command('apply')
    .description('create or update workflows from JSON files (by tenant and name)')
    .argument('<files...>', 'workflow JSON files')
    .action(async (files: string[]) => {
      const documents = await Promise.all(files.map(async (file) => ({ file, document: await readJson(file) })));
      const context = commandContext({ logToStdout: false });
      const policy = { updateFields: context.config.updateFields };
      // All of them first: a wrong file among several applies none, rather than the ones before it.
      const fileOf = new Map<string, string>();
      // Warned of, not refused: a catalog may list a type later than a workflow is applied that uses it.
      const catalog = context.config.catalogModule === undefined ? undefined : await loadCatalog(context.config.catalogModule).catch((error: unknown) => {
        console.error(`walflow: warning: the workflows are not checked against the catalog: ${errorMessage(error)}`);
        return undefined;
      });
      for (const { file, document } of documents) {
        let definition;
        try {
          definition = validateWorkflow(document, policy);
        } catch (error) {
          throw inFile(file, error);
        }
        // Both would apply, the last over the first, and the first document would be gone without a word.
        const key = JSON.stringify([definition.tenant, definition.name]);
        const earlier = fileOf.get(key);
        if (earlier !== undefined) throw new WalflowError('workflow_invalid', `${file} and ${earlier} are both workflow ${definition.tenant}/${definition.name}: apply one`);
        fileOf.set(key, file);
        for (const { problem } of catalog === undefined ? [] : uncataloguedTypes(definition, catalog)) console.error(`walflow: warning: ${file}: ${problem}`);
      }
      // One transaction: a file the database refuses (text it cannot store, say) applies none of the others either.
      // An apply that changes guards takes the recording lock: one of another version than the schema's would take
      // another lock than the dispatches do (0044), and exclude none of them.
      const lines = await withDatabase(context, async (db) => {
        return db.transaction().execute(async (trx) => {
          const applied: string[] = [];
          for (const { file, document } of documents) {
            try {
              const { workflow, outcome, runsCancelled } = await applyWorkflow(trx, document, policy);
              const cancelled = runsCancelled === 0 ? '' : `; its actions changed, so ${runsCancelled} run(s) executing them (running, or retrying or dead after an action whose place changed) were cancelled (replay their events to run the new actions)`;
              applied.push(`${outcome} ${workflow.tenantId}/${workflow.name} (version ${workflow.version}) from ${file}${cancelled}\n`);
              if (outcome !== 'unchanged') {
                await recordAudit(trx, { actor: context.operator, action: `workflow.${outcome}`, target: `${workflow.tenantId}/${workflow.name}`, arguments: { file, version: workflow.version, runsCancelled } });
              }
            } catch (error) {
              throw inFile(file, error);
            }
          }
          return applied;
        });
      }, { changesState: true });
      for (const line of lines) process.stdout.write(line);
    });

  for (const [verb, description] of [
    ['pause', 'stop a workflow from firing (its events are recorded as inactive)'],
    ['resume', 'let a paused workflow fire again'],
    ['delete', 'delete a workflow; its history stays and its queued runs are cancelled'],
  ] as const) {
    workflows
      .command(verb)
      .description(description)
      .argument('<name>', 'workflow name', nonEmptyText)
      .option('--tenant <id>', 'its tenant', nonEmptyText, 'default')
      .action(async (name: string, options: { tenant: string }) => {
        const context = commandContext({ logToStdout: false });
        await withDatabase(context, async (db) => {
          const target = `${options.tenant}/${name}`;
          const change = await db.transaction().execute(async (trx) => {
            const outcome =
              verb === 'delete'
                ? (await deleteWorkflow(trx, options.tenant, name)) ? 'changed' : 'missing'
                : await setWorkflowStatus(trx, options.tenant, name, verb === 'pause' ? 'paused' : 'active');
            if (outcome === 'missing') throw new WalflowError('not_found', `no workflow ${target}`);
            if (outcome === 'changed') await recordAudit(trx, { actor: context.operator, action: `workflow.${verb}`, target });
            return outcome;
          });
          const state = verb === 'delete' ? 'deleted' : verb === 'pause' ? 'paused' : 'resumed';
          process.stdout.write(change === 'changed' ? `${state} ${target}\n` : `${target} is already ${verb === 'pause' ? 'paused' : 'active'}: nothing changed\n`);
        }, { changesState: true });
      });
  }

  workflows
    .command('list')
    .description('list workflows')
    .option('--tenant <id>', 'only this tenant', nonEmptyText)
    .option('--json', 'print JSON')
    .action(async (options: { tenant?: string; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const list = await withDatabase(context, (db) => listWorkflows(db, options.tenant === undefined ? {} : { tenantId: options.tenant }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const rows = list.map((w) => [w.tenantId, w.name, w.status, w.triggerEvent, String(w.version), isUnreadable(w) ? `unreadable (apply it again): ${w.unreadable}` : (w.pausedReason ?? '')]);
      process.stdout.write(formatTable(['TENANT', 'NAME', 'STATUS', 'TRIGGER', 'VERSION', 'NOTE'], rows));
    });
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw WalflowError.from(error, 'workflow_invalid', `cannot read ${file}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw WalflowError.from(error, 'workflow_invalid', `${file} is not valid JSON`);
  }
}

/** The error with the file it came from in front, whatever raised it. */
function inFile(file: string, error: unknown): WalflowError {
  if (!(error instanceof WalflowError)) return WalflowError.from(error, 'workflow_invalid', file);
  return new WalflowError(error.code, `${file}: ${error.message}`, { cause: error, details: error.details });
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
