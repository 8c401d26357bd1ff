import { connect } from 'node:net';
import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';

/**
 * `fleetctl fd-forward SOCKET`: copies stdin to a unix socket and the socket to stdout, until the
 * socket closes. `--tunnel` runs it on the tunnel host to carry API traffic over ssh. Unlike fleet,
 * a failure to connect exits 1.
 */
export function registerFdForward(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'fd-forward',
    summary: 'Proxy stdin and stdout to a unix domain socket',
    usage: 'SOCKET',
    description: [
      'fd-forward connects stdin and stdout to a unix domain socket. It is run by',
      "fleetctl --tunnel on the tunnel host to reach fleetd's API socket over SSH.",
      '',
      'Example:',
      '\tfleetctl fd-forward /var/run/fleet.sock',
    ].join('\n'),
  });
  onRun(cmd, ctx, async (args) => {
    const [path] = args;
    if (path === undefined || args.length !== 1) {
      ctx.err('Provide a single argument');
      return 1;
    }
    return new Promise<number>((resolve) => {
      const socket = connect(path);
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        ctx.stdin.pipe(socket);
        socket.pipe(ctx.stdout, { end: false });
      });
      socket.once('error', (err) => {
        ctx.err(
          connected
            ? `Error forwarding to ${path}: ${describeError(err)}`
            : `Failed dialing remote address: ${describeError(err)}`,
        );
        resolve(1);
      });
      socket.once('close', (hadError) => {
        ctx.stdin.unpipe(socket);
        if (!hadError) resolve(0);
      });
    });
  });
}
