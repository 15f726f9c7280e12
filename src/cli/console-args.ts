/**
 * `petasan console` flags: where to listen, which folders VMs may use, whether they may have networks.
 */
import { parseArgs } from "node:util";
import { DEFAULT_LISTEN, parseListenAddress, type ListenAddress } from "../web-console/listen-address.js";
import { UsageError } from "./run-args.js";

export const CONSOLE_USAGE = `usage: petasan console [--listen HOST:PORT] [--allow DIR]... [--allow-net]
  --listen HOST:PORT   where the web console listens (default ${DEFAULT_LISTEN}); on an address that is
                       not loopback (0.0.0.0 included) every request needs the token printed at start
  --allow DIR          a folder whose files (kernels, initrds, drive images, logs) VMs may use;
                       repeatable; without it, VMs can name no file
  --allow-net          let VM configs attach network interfaces (creates host tap devices)
The VMs the console creates run in its own process, and end with it.`;

export interface ConsoleArgs {
  listen: ListenAddress;
  allow: string[];
  allowNet: boolean;
}

export function parseConsoleArgs(argv: string[]): ConsoleArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: "string" },
        allow: { type: "string", multiple: true },
        "allow-net": { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  try {
    return { listen: parseListenAddress(values.listen ?? DEFAULT_LISTEN), allow: values.allow ?? [], allowNet: values["allow-net"] ?? false };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
