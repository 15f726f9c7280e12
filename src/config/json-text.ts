/**
 * JSON.parse with an error that says where the text went wrong. V8's messages give an offset for
 * some errors and a quoted snippet for others, so the offset comes from a small grammar scan
 * (RFC 8259) run only after JSON.parse has failed.
 */

export class JsonSyntaxError extends Error {
  override readonly name = "JsonSyntaxError";
  constructor(
    readonly detail: string,
    /** 1-based line and column of the first character that breaks the grammar. */
    readonly line: number,
    readonly column: number,
  ) {
    super(`${detail} at line ${line}, column ${column}`);
  }
}

export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    const offset = locateJsonError(text);
    const before = text.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - (before.lastIndexOf("\n") + 1) + 1;
    throw new JsonSyntaxError(describe(error.message), line, column);
  }
}

/** V8's message without its offset or its (possibly long) snippet of the input. */
function describe(message: string): string {
  const token = /^(Unexpected token '[^]*?'), (?:"|\.\.\.)/.exec(message);
  if (token !== null) return token[1];
  return message.replace(/ in JSON at position \d+.*$/s, "");
}

class GrammarBreak {
  constructor(readonly offset: number) {}
}

/**
 * Returns the offset of the first character that breaks the JSON grammar (text.length when the
 * text ends too early). Iterative, so deep nesting cannot overflow the stack.
 */
function locateJsonError(text: string): number {
  let i = 0;
  const containers: string[] = [];
  const fail = (): never => {
    throw new GrammarBreak(i);
  };
  const skipWhitespace = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const expect = (char: string): void => {
    if (text[i] !== char) fail();
    i++;
  };
  const digits = (): void => {
    if (!/[0-9]/.test(text[i] ?? "")) fail();
    while (/[0-9]/.test(text[i] ?? "")) i++;
  };
  const readString = (): void => {
    expect('"');
    for (;;) {
      const char = text[i];
      if (char === undefined || char < " ") fail();
      i++;
      if (char === '"') return;
      if (char !== "\\") continue;
      const escape = text[i] ?? "";
      if (escape !== "" && '"\\/bfnrt'.includes(escape)) i++;
      else if (escape === "u") {
        i++;
        for (let n = 0; n < 4; n++) {
          if (!/[0-9a-fA-F]/.test(text[i] ?? "")) fail();
          i++;
        }
      } else fail();
    }
  };
  const readNumber = (): void => {
    if (text[i] === "-") i++;
    if (text[i] === "0") i++;
    else digits();
    if (text[i] === ".") {
      i++;
      digits();
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      digits();
    }
  };
  const readScalar = (): void => {
    const char = text[i] ?? "";
    if (char === '"') return readString();
    if (char === "-" || (char >= "0" && char <= "9")) return readNumber();
    const word = ["true", "false", "null"].find((w) => text.startsWith(w, i));
    if (word === undefined) fail();
    else i += word.length;
  };
  const readKey = (): void => {
    skipWhitespace();
    readString();
    skipWhitespace();
    expect(":");
  };

  try {
    for (;;) {
      skipWhitespace();
      const open = text[i];
      if (open === "{" || open === "[") {
        i++;
        skipWhitespace();
        if (text[i] !== (open === "{" ? "}" : "]")) {
          containers.push(open);
          if (open === "{") readKey();
          continue;
        }
        i++;
      } else {
        readScalar();
      }
      // A value is complete: close containers until one expects another element.
      for (;;) {
        skipWhitespace();
        const container = containers.at(-1);
        if (container === undefined) {
          if (i < text.length) fail();
          return text.length;
        }
        if (text[i] === ",") {
          i++;
          if (container === "{") readKey();
          break;
        }
        expect(container === "{" ? "}" : "]");
        containers.pop();
      }
    }
  } catch (error) {
    if (error instanceof GrammarBreak) return error.offset;
    throw error;
  }
}
