/** Host entropy for virtio-rng: getrandom(2) from the kernel's CSPRNG (the host I/O backend of rng/). */
import { getrandom } from "../../../sys/libc.js";
import { check, EINTR, SysError } from "../../../sys/errors.js";
import type { EntropySource } from "./rng-device.js";

/** getrandom flags 0: block only until the pool is first initialized, then never (man 2 getrandom). */
const GETRANDOM_DEFAULT = 0;

export const getrandomSource: EntropySource = {
  fill(dest: Uint8Array): void {
    let done = 0;
    while (done < dest.length) {
      try {
        done += check(getrandom(dest.subarray(done), dest.length - done, GETRANDOM_DEFAULT) as number, "getrandom");
      } catch (err) {
        if (!(err instanceof SysError && err.errno === EINTR)) throw err;
      }
    }
  },
};
