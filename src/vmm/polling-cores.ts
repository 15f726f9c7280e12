/**
 * Which threads may poll (see exit-doorbell.ts): a polling thread needs a core of its own, and the cores are
 * the process's, shared by every VM it runs. So each VM claims its polling threads (its vCPUs and its device
 * thread) from one count for the process while it lives, and polls only if they all fit beside the others';
 * a VM that does not fit runs without polling (its threads sleep and are woken, as on a busy host).
 */
import { availableParallelism } from "node:os";

let claimedCores = 0;

export interface PollingClaim {
  /** Whether this VM's threads may poll. */
  readonly poll: boolean;
  /** Gives the cores back (idempotent). */
  release(): void;
}

/** Claims `threads` cores for polling if that many are still free in this process. */
export function claimPollingCores(threads: number, cores = availableParallelism()): PollingClaim {
  if (claimedCores + threads > cores) return { poll: false, release: () => {} };
  claimedCores += threads;
  let released = false;
  return {
    poll: true,
    release() {
      if (released) return;
      released = true;
      claimedCores -= threads;
    },
  };
}
