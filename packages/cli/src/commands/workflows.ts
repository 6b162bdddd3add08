import { readFile } from 'node:fs/promises';
import { WalflowError } from '@walflow/core';
import { applyWorkflow, listWorkflows } from '@walflow/executor';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';

export function registerWorkflows(program: Command): void {
  const workflows = program.command('workflows').description('manage workflow definitions');

  workflows
    .command('apply')
    .description('create or update workflows from JSON files (by tenant and name)')
    .argument('<files...>', 'workflow JSON files')
    .action(async (files: string[]) => {
      const documents = await Promise.all(files.map(async (file) => ({ file, document: await readJson(file) })));
      const context = commandContext({ logToStdout: false });
      await withDatabase(context, async (db) => {
        for (const { file, document } of documents) {
          try {
            const { workflow, outcome } = await applyWorkflow(db, document, { updateFields: context.config.updateFields });
            process.stdout.write(`${outcome} ${workflow.tenantId}/${workflow.name} (version ${workflow.version}) from ${file}\n`);
          } catch (error) {
            throw WalflowError.from(error, 'workflow_invalid', file);
          }
        }
      });
    });

  workflows
    .command('list')
    .description('list workflows')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'print JSON')
    .action(async (options: { tenant?: string; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const list = await withDatabase(context, (db) => listWorkflows(db, options.tenant === undefined ? {} : { tenantId: options.tenant }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const rows = list.map((w) => [w.tenantId, w.name, w.status, w.triggerEvent, String(w.version)]);
      process.stdout.write(formatTable(['TENANT', 'NAME', 'STATUS', 'TRIGGER', 'VERSION'], rows));
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

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
