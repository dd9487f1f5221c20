import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { LinkView, ProviderView, SyncHealthView, SyncRunView } from '../db/index.ts';
import type { CliContext } from './context.ts';
import { cell, formatTable } from './output.ts';

/** How often `sync` asks for the run's progress. */
export const POLL_INTERVAL_MS = 500;

function describeCounts(run: SyncRunView): string {
  const workers = Object.entries(run.workers ?? {});
  return (
    `${run.processed}/${run.total} processed, ${run.created} created, ${run.updated} updated, ${run.deleted} deleted, ` +
    `${run.unchanged} unchanged, ${run.skipped} skipped, ${run.failed} failed, ${run.retrying} retrying` +
    (workers.length > 1 ? `; by worker: ${workers.map(([id, n]) => `${id} ${n}`).join(', ')}` : '')
  );
}

function describeHealth(health: SyncHealthView): string {
  const objects = `${health.retrying} object(s) retrying, ${health.failed} failed`;
  if (health.state === 'ok') return `ok, ${objects}`;
  const streaks = [
    health.failedPushesInARow > 0 ? `${health.failedPushesInARow} incremental push(es)` : '',
    health.failedFullSyncsInARow > 0 ? `${health.failedFullSyncsInARow} full sync(s)` : '',
  ].filter((streak) => streak !== '');
  return (
    `${health.state}: ${streaks.join(' and ')} failed in a row since ${health.failingSince ?? '?'}` +
    ` (last: ${describeError(health.lastError)}), ${objects}`
  );
}

function describeError(error: Record<string, unknown> | null): string {
  if (!error) return '-';
  const code = typeof error['code'] === 'string' ? `${error['code']}: ` : '';
  return `${code}${typeof error['message'] === 'string' ? error['message'] : JSON.stringify(error)}`;
}

/** `sync <provider>` and `status <provider>`. */
export function addSyncCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  program
    .command('sync <provider>')
    .description(
      'start a full sync of a provider (by id or slug) and follow it until it ends; exits 1 if it failed or had failures',
    )
    .option('--no-watch', 'return once the sync has started')
    .option('--allow-deletions', "let this sync remove more objects than the provider's deletion limit")
    .action(async (provider: string, options: { watch: boolean; allowDeletions?: boolean }) => {
      const api = ctx.api();
      const started = await api.post<{ runId: string; workflowId: string; status: 'queued' | 'running' }>(
        `/providers/${encodeURIComponent(provider)}/sync`,
        options.allowDeletions ? { allowDeletions: true } : undefined,
      );
      output.out(
        started.status === 'queued'
          ? `full sync of ${provider} queued: run ${started.runId} starts once the full sync under way ends`
          : `full sync of ${provider} started: run ${started.runId} (workflow ${started.workflowId})`,
      );
      if (!options.watch) return;
      let run = await api.get<SyncRunView>(`/runs/${started.runId}`);
      const bar = new cliProgress.SingleBar(
        { format: 'syncing [{bar}] {value}/{total} objects | {status}', hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(run.total, 1), run.processed, { status: run.status });
      try {
        // Ended once it has a finish time, whatever its status says (a later status needs no change here).
        while (run.finishedAt === null) {
          await sleep(POLL_INTERVAL_MS);
          run = await api.get<SyncRunView>(`/runs/${started.runId}`);
          bar.setTotal(Math.max(run.total, 1));
          bar.update(run.processed, { status: run.status });
        }
      } finally {
        bar.stop();
      }
      output.out(`run ${run.id} ${run.status}: ${describeCounts(run)}`);
      if (run.error) output.err(`run error: ${describeError(run.error)}`);
      if (run.status !== 'succeeded' || run.failed > 0) {
        if (run.failed > 0) output.err(`${run.failed} object(s) failed: see \`scimflow status ${provider}\``);
        ctx.fail(1);
      }
    });

  program
    .command('status <provider>')
    .description("show a provider's latest runs and the objects that failed to sync")
    .option('--runs <n>', 'how many recent runs to show', (value) => Number(value), 5)
    .option('--failures <n>', 'how many failed objects to show', (value) => Number(value), 20)
    .action(async (provider: string, options: { runs: number; failures: number }) => {
      const api = ctx.api();
      const path = `/providers/${encodeURIComponent(provider)}`;
      const view = await api.get<ProviderView>(path);
      const { items: runs } = await api.get<{ items: SyncRunView[] }>(`${path}/runs`, { limit: options.runs });
      const health = await api.get<SyncHealthView>(`${path}/health`);
      const failed = await api.get<{ items: LinkView[]; next: string | null }>(`${path}/links`, {
        status: 'failed',
        limit: options.failures,
      });
      output.out(
        `provider ${view.slug} (${view.name}): plugin ${view.plugin}, ${view.enabled ? 'enabled' : 'disabled'}` +
          `${view.dryRun ? ', dry run' : ''}, config v${view.configVersion}, ${view.baseUrl}`,
      );
      output.out(`sync: ${describeHealth(health)}`);
      output.out('');
      if (runs.length === 0) output.out('no runs yet');
      else {
        output.out('recent runs:');
        const rows = runs.map((r) => [
          r.startedAt,
          r.kind,
          r.status,
          `${r.processed}/${r.total}`,
          String(r.created),
          String(r.updated),
          String(r.deleted),
          String(r.unchanged),
          String(r.skipped),
          String(r.failed),
        ]);
        const headers = [
          'STARTED',
          'KIND',
          'STATUS',
          'PROCESSED',
          'CREATED',
          'UPDATED',
          'DELETED',
          'UNCHANGED',
          'SKIPPED',
          'FAILED',
        ];
        for (const line of formatTable(headers, rows)) output.out(`  ${line}`);
      }
      output.out('');
      if (failed.items.length === 0) output.out('no failed objects');
      else {
        output.out(`failed objects${failed.next ? ` (first ${failed.items.length})` : ''}:`);
        const rows = failed.items.map((l) => [l.objectType, cell(l.localName), l.localId, describeError(l.lastError)]);
        for (const line of formatTable(['TYPE', 'NAME', 'ID', 'ERROR'], rows)) output.out(`  ${line}`);
      }
    });
}
