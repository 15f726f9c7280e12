import assert from "node:assert/strict";
import { test } from "node:test";
import { JsonSyntaxError, parseJsonText } from "./json-text.js";

function syntaxError(text: string): JsonSyntaxError {
  try {
    parseJsonText(text);
  } catch (error) {
    assert.ok(error instanceof JsonSyntaxError);
    return error;
  }
  assert.fail("expected a JsonSyntaxError");
}

test("parses valid JSON", () => {
  assert.deepEqual(parseJsonText('{"a": [1, "x", null]}'), { a: [1, "x", null] });
});

test("reports line and column of the first bad character", () => {
  const error = syntaxError('{\n  "a": 1,\n  "b": tru\n}');
  assert.deepEqual([error.line, error.column], [3, 8]);
  assert.match(error.message, /at line 3, column 8$/);
});

test("trailing comma, unterminated input, trailing garbage", () => {
  assert.deepEqual([syntaxError('{"a": 1,}').column], [9]);
  assert.deepEqual([syntaxError('{"a": "x').line, syntaxError('{"a": "x').column], [1, 9]);
  assert.deepEqual([syntaxError("{} x").column], [4]);
  assert.deepEqual([syntaxError("").column], [1]);
});

test("the message leaves out V8's snippet of the input", () => {
  const error = syntaxError(`{"long": "${"a".repeat(1000)}", "b": x}`);
  assert.ok(error.message.length < 100, error.message);
});

test("deeply nested bad input does not overflow the stack", () => {
  const error = syntaxError("[".repeat(100_000));
  assert.equal(error.column, 100_001);
});
