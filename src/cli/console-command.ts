/**
 * `petasan console`: serves the web console until SIGINT/SIGTERM, then stops its VMs and exits 0.
 */
import { parseConsoleArgs, CONSOLE_USAGE } from "./console-args.js";
import { UsageError } from "./run-args.js";
import { startConsoleServer } from "../web-console/server.js";

export async function runConsoleCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${CONSOLE_USAGE}\n`);
    return 0;
  }
  let args;
  try {
    args = parseConsoleArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`petasan console: ${error.message}\n${CONSOLE_USAGE}\n`);
    return 2;
  }
  let server;
  try {
    server = await startConsoleServer(args);
  } catch (error) {
    process.stderr.write(`petasan console: ${(error as Error).message}\n`);
    return 1;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`petasan console: ${server.url}`);
  if (server.token !== undefined) say(`petasan console: listening beyond loopback: every request needs the token ${server.token}`);
  say(`petasan console: VMs may use files under: ${args.allow.length > 0 ? args.allow.join(", ") : "nothing (pass --allow DIR)"}`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  say("petasan console: stopping its VMs");
  await server.close();
  return 0;
}
