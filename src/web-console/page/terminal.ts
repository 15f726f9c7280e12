// A VM's serial console in the page: xterm.js over the console's WebSocket (/api/vms/ID/console). The server
// sends the scrollback first, then the output as it comes; what the user types is sent as is. A serial line
// has no window size, so resizing only refits the terminal to its box (the guest sees no SIGWINCH).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { socketUrl } from "./api";

export class ConsoleTerminal {
  private readonly terminal: Terminal;
  private readonly fit = new FitAddon();
  private readonly socket: WebSocket;
  private readonly resizeObserver: ResizeObserver;
  private closedByUs = false;

  constructor(container: HTMLElement, vmId: string) {
    container.replaceChildren();
    this.terminal = new Terminal({
      convertEol: true, // test guests print "\n" alone; Linux's "\r\n" is unaffected
      scrollback: 5000,
      cursorBlink: true,
      fontSize: 13,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
      theme: { background: "#1b1e23", foreground: "#d7dae0" },
    });
    this.terminal.loadAddon(this.fit);
    this.terminal.open(container);
    this.fit.fit();
    this.resizeObserver = new ResizeObserver(() => this.fit.fit());
    this.resizeObserver.observe(container);

    this.socket = new WebSocket(socketUrl(`/api/vms/${encodeURIComponent(vmId)}/console`));
    this.socket.binaryType = "arraybuffer";
    this.socket.onmessage = (event) => this.terminal.write(new Uint8Array(event.data as ArrayBuffer));
    this.socket.onclose = (event) => {
      if (this.closedByUs) return;
      const why = event.reason || (event.code === 1006 ? "connection lost" : `closed (${event.code})`);
      this.terminal.write(`\r\n\x1b[2m[console: ${why}]\x1b[0m\r\n`);
    };
    this.terminal.onData((data) => {
      if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data);
    });
  }

  focus(): void {
    this.terminal.focus();
  }

  dispose(): void {
    this.closedByUs = true;
    this.socket.close();
    this.resizeObserver.disconnect();
    this.terminal.dispose();
  }
}
