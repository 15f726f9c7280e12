/** A readable register dump for a vCPU that stopped the VM (triple fault, failed entry, emulation error). */
import type { Vcpu } from "../../kvm/vcpu.js";

const hex = (v: bigint | number, width = 16) => "0x" + v.toString(16).padStart(width, "0");

export function registerDump(vcpu: Vcpu): string {
  try {
    const r = vcpu.getRegs();
    const s = vcpu.getSregs();
    const lines = [
      `rip=${hex(r.rip)} rflags=${hex(r.rflags, 8)} rsp=${hex(r.rsp)} rbp=${hex(r.rbp)}`,
      `rax=${hex(r.rax)} rbx=${hex(r.rbx)} rcx=${hex(r.rcx)} rdx=${hex(r.rdx)}`,
      `rsi=${hex(r.rsi)} rdi=${hex(r.rdi)} r8=${hex(r.r8)} r9=${hex(r.r9)}`,
      `r10=${hex(r.r10)} r11=${hex(r.r11)} r12=${hex(r.r12)} r13=${hex(r.r13)} r14=${hex(r.r14)} r15=${hex(r.r15)}`,
      `cr0=${hex(s.cr0, 8)} cr2=${hex(s.cr2)} cr3=${hex(s.cr3)} cr4=${hex(s.cr4, 8)} efer=${hex(s.efer, 4)}`,
      ...(["cs", "ds", "ss", "tr"] as const).map((n) => {
        const g = s.segments[n];
        return `${n}=${hex(g.selector, 4)} base=${hex(g.base)} limit=${hex(g.limit, 8)} type=${g.type} dpl=${g.dpl} l=${g.l} db=${g.db}`;
      }),
      `gdt=${hex(s.gdt.base)}/${hex(s.gdt.limit, 4)} idt=${hex(s.idt.base)}/${hex(s.idt.limit, 4)}`,
    ];
    return lines.map((l) => `  ${l}`).join("\n");
  } catch (e) {
    return `  (registers unavailable: ${(e as Error).message})`;
  }
}
