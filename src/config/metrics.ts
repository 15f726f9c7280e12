/** Metrics (firecracker-api.yaml; Firecracker vmm_config/metrics.rs). */
import { boolean, defaulted, nonEmptyString, objectSchema, optional, required, stringMap, type ObjectSchema } from "./schema.js";

export interface MetricsConfig {
  /** File or named pipe that receives one JSON line per flush. */
  metrics_path: string;
  /** Add the instance id as a top-level "id" on each line. */
  emit_id: boolean;
  /** Operator key/value pairs added under "properties" on each line. */
  properties?: Record<string, string>;
}

export const metricsSchema: ObjectSchema<MetricsConfig> = objectSchema<MetricsConfig>("Metrics", {
  metrics_path: required(nonEmptyString),
  emit_id: defaulted(boolean, false),
  properties: optional(stringMap),
});
