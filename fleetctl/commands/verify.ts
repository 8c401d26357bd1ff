import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { shortHash } from '../../unit/serialize.js';
import type { Context } from '../context.js';
import { unitNames } from '../create-units.js';
import { defineCommand, onRun } from '../define.js';
import { printProblems, printWarnings, readLocalUnit } from '../unit-files.js';

/** How long one `systemd-analyze verify` may take. */
const ANALYZE_TIMEOUT_MS = 20_000;

/**
 * `systemd-analyze verify FILE`'s complaints (one per line), or undefined when the program is not
 * installed. Resolves `failed` when it exited non-zero.
 */
function systemdAnalyze(
  file: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ lines: string[]; failed: boolean } | undefined> {
  return new Promise((done) => {
    execFile(
      'systemd-analyze',
      ['verify', '--', file],
      { timeout: ANALYZE_TIMEOUT_MS, env: { PATH: env.PATH, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } },
      (err, stdout, stderr) => {
        if (err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          done(undefined);
          return;
        }
        const lines = `${stdout}${stderr}`.split('\n').filter((l) => l.trim() !== '');
        done({ lines, failed: err !== null });
      },
    );
  });
}

/**
 * `fleetctl verify UNIT...`: validates local unit files as submit would, without a cluster. fleet's
 * verify checked signatures and was dead ("DEPRECATED - No longer works"); ours checks the files.
 */
export function registerVerify(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'verify',
    summary: 'Check local unit files for problems without submitting them',
    usage: 'UNIT...',
    description: [
      'Validates local unit files exactly as submit, load and start do before sending',
      'them: the unit name, the systemd syntax and the [X-Fleet] options. Every problem',
      'of every file is printed on stderr with its file and line; the exit status is 1',
      'if there is any. An instance such as web@1.service without a file of its own is',
      'checked through the template web@.service next to it. No cluster is needed.',
      '',
      'Where systemd-analyze is installed, each file is also given to "systemd-analyze',
      'verify", and what it reports (an unknown key such as ExecStrat=, say) is printed',
      'as a warning; the exit status is 1 when it fails.',
      '',
      'Example:',
      '\tfleetctl verify units/*.service',
    ].join('\n'),
  });
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    let exitCode = 0;
    for (const { name, arg } of unitNames(args)) {
      const local = await readLocalUnit(ctx.cwd, arg, name);
      switch (local.kind) {
        case 'missing':
        case 'unreadable':
          ctx.err(`Error verifying ${arg}: ${local.message}`);
          exitCode = 1;
          break;
        case 'invalid':
          printProblems(ctx, local.problems);
          exitCode = 1;
          break;
        case 'found': {
          printWarnings(ctx, local.unit);
          if (!local.unit.fromTemplate) {
            const analyzed = await systemdAnalyze(resolve(ctx.cwd, local.unit.source), ctx.env);
            for (const line of analyzed?.lines ?? []) ctx.warn(`systemd-analyze: ${line}`);
            if (analyzed?.failed === true) exitCode = 1;
          }
          const from = local.unit.fromTemplate ? ` (from template ${local.unit.source})` : '';
          ctx.out(`Unit ${name} is valid${from}, hash ${shortHash(local.unit.hash)}`);
          break;
        }
      }
    }
    return exitCode;
  });
}
