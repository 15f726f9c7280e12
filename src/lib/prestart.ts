/**
 * prestartWorkers (and discardWarmWorkers) on their own, for a program that wants its VM's threads booting before it
 * loads the rest of petasan (`petasan run` does): this module imports nothing but node:worker_threads.
 */
export { discardWarmWorkers, prestartWorkers } from "../vmm/warm-workers.js";
