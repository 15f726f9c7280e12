/** petasan configuration: one schema set for the CLI, --config-file and the API. */
export * from "./balloon.js";
export * from "./boot-source.js";
export * from "./drive.js";
export * from "./entropy.js";
export * from "./firecracker-version.js";
export * from "./json-text.js";
export * from "./load-config-file.js";
export * from "./logger.js";
export * from "./machine-config.js";
export * from "./metrics.js";
export * from "./network-interface.js";
export * from "./rate-limiter.js";
export * from "./schema.js";
export * from "./serde-message.js";
export * from "./vm-config.js";
export * from "./vm-resources.js";
export * from "./vsock.js";
