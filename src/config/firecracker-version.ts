/**
 * The Firecracker release whose API petasan implements: the `info.version` of the vendored contract
 * (firecracker-api.yaml). Clients that check Firecracker's version (Kata Containers parses the first
 * line of `--version` as semver and needs >= 0.21.1) get this number; a test keeps it equal to the yaml's.
 */
export const FIRECRACKER_API_VERSION = "1.17.0-dev";
