/** petasan's Firecracker-compatible API: Controller (actions, phases) and its HTTP server. */
export * from "./actions.js";
export * from "./api-client.js";
export * from "./controller.js";
export * from "./errors.js";
export * from "./phase-rules.js";
export * from "./request-bodies.js";
export * from "./routes.js";
export * from "./server.js";
export * from "./unix-socket.js";
export type { BootExtras, LoadExtras, VmmBackend } from "./vmm-backend.js";
export * from "./host-files.js";
export type { SnapshotCreateParams, SnapshotLoadParams } from "./snapshot-bodies.js";
