#!/usr/bin/env node
/**
 * The `icewire` command. Each subcommand is one entry of {@link COMMANDS} (a file of its own in src/cli/); a new
 * one is a new entry. Exit codes: {@link ExitCode}.
 * @module
 */
import { createRequire } from 'node:module';
import { ExitCode, UsageError, type CliIo } from './output.js';
import { gather, gatherUsage } from './gather.js';
import { nat, natUsage } from './nat.js';
import { stunServer, stunServerUsage } from './stun-server.js';
import { timeline, timelineUsage } from './timeline.js';

interface Command {
  readonly summary: string;
  readonly usage: string;
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

const demoUsage = `icewire demo [--virtual]

  Two ICE agents on loopback negotiate through SIP-style SDP offer/answer with the built-in STUN server (no outside
  server is contacted), then echo RTP-like packets. --virtual: the same between two simulated NATs in virtual time.`;

/** The subcommands, in the order `icewire --help` lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  gather: { summary: 'gather candidates from the STUN/TURN servers given, with timings and errors', usage: gatherUsage, run: gather },
  nat: { summary: 'RFC 5780 NAT behaviour discovery, in RFC 4787 terms', usage: natUsage, run: nat },
  'stun-server': { summary: 'run the built-in STUN server (RFC 5780 with a second address)', usage: stunServerUsage, run: (argv, io) => stunServer(argv, io) },
  timeline: { summary: 'draw a check trace (JSON lines) as an SVG/HTML timeline', usage: timelineUsage, run: timeline },
  demo: {
    summary: 'two agents negotiating on loopback (the npm start demo)',
    usage: demoUsage,
    async run(argv) {
      const extra = argv.filter((a) => a !== '--virtual');
      if (extra.length > 0) throw new UsageError(`unknown option ${extra[0]}`);
      // Loaded on use: the demo pulls in the virtual network, which no other command needs.
      const { realDemo, virtualDemo } = await import('./demo.js');
      if (argv.includes('--virtual')) virtualDemo();
      else await realDemo();
      return ExitCode.Ok;
    },
  },
};

function version(): string {
  // src/cli/main.ts and dist/pkg/cli.js both sit two folders below package.json.
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'usage: icewire <command> [options]    (icewire <command> --help for its options)',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 what was asked failed, 2 usage error, 3 could not run here (address, socket)',
  ].join('\n');
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${help()}\n`);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return ExitCode.Ok;
  }
  const command = COMMANDS[name];
  if (command === undefined || !Object.hasOwn(COMMANDS, name)) {
    io.stderr.write(`icewire: unknown command "${name}"\n\n${help()}\n`);
    return ExitCode.Usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.usage}\n`);
    return ExitCode.Ok;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown options and missing values.
    const code = (e as { code?: unknown }).code;
    if (e instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr.write(`icewire ${name}: ${(e as Error).message}\n\n${command.usage}\n`);
      return ExitCode.Usage;
    }
    io.stderr.write(`icewire ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.Failed;
  }
}

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
