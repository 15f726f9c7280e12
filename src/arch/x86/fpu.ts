/** FPU/SSE state at reset (Intel SDM vol. 1, 8.1.5 and 10.2.3): x87 control word 0x37f, MXCSR 0x1f80 (all exceptions masked). */
import type { FpuState } from "../../kvm/vcpu.js";

export const BOOT_FPU: FpuState = { fcw: 0x37f, mxcsr: 0x1f80 };
