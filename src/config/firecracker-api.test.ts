import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { bootSourceSchema } from "./boot-source.js";
import { driveSchema, driveUpdateSchema } from "./drive.js";
import { entropySchema } from "./entropy.js";
import { loggerSchema } from "./logger.js";
import { machineConfigSchema, machineConfigUpdateSchema } from "./machine-config.js";
import { metricsSchema } from "./metrics.js";
import { mmdsConfigSchema } from "./mmds.js";
import { networkInterfaceSchema, networkInterfaceUpdateSchema } from "./network-interface.js";
import { rateLimiterSchema, tokenBucketSchema } from "./rate-limiter.js";
import type { ObjectSchema } from "./schema.js";
import { FIRECRACKER_API_YAML, readSwaggerDefinitions } from "./swagger-definitions.js";
import { vmConfigSchema } from "./vm-config.js";
import { FIRECRACKER_API_VERSION } from "./firecracker-version.js";

const definitions = readSwaggerDefinitions(readFileSync(FIRECRACKER_API_YAML, "utf8"));

const schemas: ObjectSchema<unknown>[] = [
  bootSourceSchema,
  machineConfigSchema,
  driveSchema,
  driveUpdateSchema,
  networkInterfaceSchema,
  networkInterfaceUpdateSchema,
  entropySchema,
  loggerSchema,
  metricsSchema,
  mmdsConfigSchema,
  rateLimiterSchema,
  tokenBucketSchema,
  vmConfigSchema,
];

function definitionOf(schema: ObjectSchema<unknown>) {
  const definition = definitions.get(schema.definition);
  assert.ok(definition, `firecracker-api.yaml has no definition ${schema.definition}`);
  return definition;
}

for (const schema of schemas) {
  test(`${schema.definition}: every yaml property is handled and no extra field is invented`, () => {
    const handled = [...schema.fields, ...schema.unsupportedFields].sort();
    assert.deepEqual(handled, [...definitionOf(schema).properties].sort());
  });

  test(`${schema.definition}: fields the yaml requires are required`, () => {
    for (const name of definitionOf(schema).required) {
      assert.ok(schema.requiredFields.includes(name), `${name} should be required`);
    }
  });
}

test("PATCH /machine-config takes the same fields as PUT", () => {
  assert.deepEqual([...machineConfigUpdateSchema.fields].sort(), [...machineConfigSchema.fields].sort());
});

test("every enum value in the yaml is accepted", () => {
  const base = {
    Drive: { drive_id: "d", path_on_host: "/p", is_root_device: false },
    MachineConfiguration: { vcpu_count: 2, mem_size_mib: 256 },
    Logger: {},
  } as const;
  const cases: [ObjectSchema<unknown>, keyof typeof base][] = [
    [driveSchema, "Drive"],
    [machineConfigSchema, "MachineConfiguration"],
    [loggerSchema, "Logger"],
  ];
  for (const [schema, name] of cases) {
    for (const [property, values] of definitionOf(schema).enums) {
      for (const value of values) schema.parse({ ...base[name], [property]: value });
    }
  }
});

test("CpuTemplate: every x86 template is accepted as itself, the aarch64 one is refused", () => {
  const values = definitions.get("CpuTemplate")?.values ?? [];
  assert.ok(values.length > 0);
  for (const value of values) {
    const parse = () => machineConfigSchema.parse({ vcpu_count: 1, mem_size_mib: 128, cpu_template: value });
    if (value === "V1N1") assert.throws(parse, /cpu_template: V1N1 is an aarch64 template/);
    else assert.equal((parse() as { cpu_template: string }).cpu_template, value);
  }
});

test("FIRECRACKER_API_VERSION is the yaml's info.version", () => {
  const match = /^info:\n(?:  .*\n)*?  version: (\S+)$/m.exec(readFileSync(FIRECRACKER_API_YAML, "utf8"));
  assert.equal(match?.[1], FIRECRACKER_API_VERSION);
});
