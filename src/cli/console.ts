/**
 * Attaches the user's terminal to the guest's serial port. On a TTY the terminal goes raw (every key,
 * Ctrl-C included, goes to the guest) and Ctrl-A is an escape, as in QEMU: Ctrl-A x quits, Ctrl-A
 * Ctrl-A sends one Ctrl-A, and Ctrl-A s takes a snapshot when the command offers it. The terminal is
 * always restored.
 */
const CTRL_A = 0x01;

export interface ConsoleHandlers {
  input: (bytes: Uint8Array) => void;
  quit: () => void;
  /** Ctrl-A s, when given. */
  snapshot?: () => void;
}

export interface AttachedConsole {
  detach(): void;
}

export function attachConsole(stdin: NodeJS.ReadStream, h: ConsoleHandlers): AttachedConsole {
  const tty = stdin.isTTY === true;
  if (tty) stdin.setRawMode(true);
  let escape = false;
  const onData = (chunk: Buffer) => {
    if (!tty) return h.input(chunk);
    const out: number[] = [];
    for (const b of chunk) {
      if (escape) {
        escape = false;
        if (b === 0x78 /* x */ || b === 0x58) {
          if (out.length) h.input(Uint8Array.from(out));
          return h.quit();
        }
        if (b === CTRL_A) out.push(CTRL_A);
        if ((b === 0x73 /* s */ || b === 0x53) && h.snapshot) h.snapshot();
        continue;
      }
      if (b === CTRL_A) escape = true;
      else out.push(b);
    }
    if (out.length) h.input(Uint8Array.from(out));
  };
  stdin.on("data", onData);
  stdin.resume();
  const restore = () => {
    if (tty && stdin.isRaw) stdin.setRawMode(false);
  };
  process.once("exit", restore);
  return {
    detach() {
      stdin.off("data", onData);
      stdin.pause();
      restore();
    },
  };
}
