// The official OpenAI SDK (npm `openai`) against the real server: completions and chat
// completions, streamed and not, and an error. Prints one line per check; exits 1 on a failure.
// Usage: node openai_sdk_test.mjs SDK_DIR BASE_URL EXPECTED_TEXT_FILE  (SDK_DIR: npm's --prefix)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import assert from "node:assert/strict";

const [sdkDir, baseURL, expectedFile] = process.argv.slice(2);
const OpenAI = createRequire(resolve(sdkDir, "package.json"))("openai");
const expected = readFileSync(expectedFile, "utf8");  // grinqh generate's greedy text
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const request = { model: "tiny-llama3", prompt: "def fibonacci(n):", max_tokens: 20, temperature: 0 };

const whole = await client.completions.create(request);
assert.equal(whole.object, "text_completion");
assert.equal(whole.choices[0].text, expected);
assert.equal(whole.choices[0].finish_reason, "length");
assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);
console.log("completion: ok");

let streamed = "", chunks = 0, usage = null;
const stream = await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) streamed += choice.text, chunks++;
}
assert.equal(streamed, expected);
assert.ok(chunks > 2, `${chunks} chunks: not streamed`);
assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
console.log("streamed completion: ok");

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ["tiny-llama3"]);
console.log("models: ok");

// The bundled model has no chat template: chat is a 400 naming `messages`, streamed or not.
for (const stream of [false, true]) {
  await assert.rejects(
    client.chat.completions.create({ model: "tiny-llama3", messages: [{ role: "user", content: "hi" }], stream }),
    (error) => error instanceof OpenAI.BadRequestError && error.status === 400 && error.param === "messages" &&
      /chat template/.test(error.message));
}
console.log("chat without a template: ok");

await assert.rejects(client.completions.create({ ...request, n: 2 }),
  (error) => error instanceof OpenAI.BadRequestError && error.param === "n");
await assert.rejects(client.completions.create({ ...request, model: "gpt-4" }),
  (error) => error instanceof OpenAI.NotFoundError && error.code === "model_not_found");
console.log("errors: ok");
