/** MMDS, the microVM metadata service, served to the guest through its virtio-net interfaces. */
export * from "./frames.js";
export * from "./http.js";
export * from "./metadata.js";
export * from "./metrics.js";
export * from "./network-stack.js";
export * from "./service.js";
export * from "./tcp-connection.js";
export * from "./token.js";
