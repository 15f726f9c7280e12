/**
 * Reads the `definitions` of a swagger 2.0 yaml file such as Firecracker's firecracker-api.yaml
 * (vendored beside this file, Apache-2.0, from firecracker-microvm/firecracker 81b38b9
 * src/firecracker/swagger/firecracker.yaml). Only the layout that file uses is understood:
 * two-space indentation, `required` as a `- item` list, `enum` inline or as a list. Tests use it
 * to keep the schemas' field names in step with the contract.
 */

export interface SwaggerDefinition {
  properties: string[];
  required: string[];
  /** Enum values per property, where the property declares them inline. */
  enums: Map<string, string[]>;
  /** The values of a definition that is itself an enum (e.g. CpuTemplate). */
  values: string[];
}

/** Where the vendored contract lives, relative to the compiled dist/src/config/ directory. */
export const FIRECRACKER_API_YAML = new URL("../../../src/config/firecracker-api.yaml", import.meta.url);

export function readSwaggerDefinitions(yaml: string): Map<string, SwaggerDefinition> {
  const definitions = new Map<string, SwaggerDefinition>();
  const lines = yaml.split("\n");
  const start = lines.indexOf("definitions:");
  if (start < 0) throw new Error("no top-level definitions: section");
  let definition: SwaggerDefinition | undefined;
  let section: "properties" | "required" | "enum" | undefined;
  let property: string | undefined;
  let inEnumList = false;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const indent = line.length - line.trimStart().length;
    const text = line.trim();
    if (indent === 0) break;
    if (indent === 2) {
      definition = { properties: [], required: [], enums: new Map(), values: [] };
      definitions.set(text.replace(/:$/, ""), definition);
      section = undefined;
    } else if (definition === undefined) {
      continue;
    } else if (indent === 4) {
      const sections = { "properties:": "properties", "required:": "required", "enum:": "enum" } as const;
      section = Object.hasOwn(sections, text) ? sections[text as keyof typeof sections] : undefined;
      property = undefined;
    } else if (indent === 6 && section === "required" && text.startsWith("- ")) {
      definition.required.push(unquote(text.slice(2)));
    } else if (indent === 6 && section === "enum" && text.startsWith("- ")) {
      definition.values.push(unquote(text.slice(2)));
    } else if (indent === 6 && section === "properties" && text.endsWith(":")) {
      property = text.slice(0, -1);
      definition.properties.push(property);
      inEnumList = false;
    } else if (indent === 8 && section === "properties" && property !== undefined) {
      inEnumList = text === "enum:";
      const inline = /^enum: \[(.*)\]$/.exec(text);
      if (inline) definition.enums.set(property, inline[1].split(",").map((v) => unquote(v.trim())));
    } else if (indent === 10 && inEnumList && property !== undefined && text.startsWith("- ")) {
      const values = definition.enums.get(property) ?? [];
      values.push(unquote(text.slice(2)));
      definition.enums.set(property, values);
    }
  }
  return definitions;
}

function unquote(text: string): string {
  return text.replace(/^"(.*)"$/, "$1");
}
