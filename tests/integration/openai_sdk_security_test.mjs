// The official OpenAI SDK (npm `openai`) against the server over HTTPS with bearer tokens: the
// SDK's apiKey is sent as `Authorization: Bearer`, so the right key works and a wrong one is
// the SDK's AuthenticationError (401). The test CA comes in through NODE_EXTRA_CA_CERTS.
// Usage: node openai_sdk_security_test.mjs SDK_DIR BASE_URL TOKEN
import { createRequire } from "node:module";
import { resolve } from "node:path";
import assert from "node:assert/strict";

const [sdkDir, baseURL, token] = process.argv.slice(2);
const OpenAI = createRequire(resolve(sdkDir, "package.json"))("openai");
const request = { model: "tiny-llama3", prompt: "def fibonacci(n):", max_tokens: 5, temperature: 0 };

const client = new OpenAI({ baseURL, apiKey: token, maxRetries: 0 });
const completion = await client.completions.create(request);
assert.equal(completion.usage.completion_tokens, 5);
let chunks = 0;
for await (const chunk of await client.completions.create({ ...request, stream: true })) chunks += chunk.choices.length;
assert.ok(chunks >= 5, `${chunks} chunks`);
assert.deepEqual((await client.models.list()).data.map((m) => m.id), ["tiny-llama3"]);
console.log("https with the token as apiKey: ok");

const wrong = new OpenAI({ baseURL, apiKey: `${token}-wrong`, maxRetries: 0 });
await assert.rejects(wrong.completions.create(request),
  (error) => error instanceof OpenAI.AuthenticationError && error.status === 401 && error.code === "invalid_api_key");
await assert.rejects(wrong.models.list(), (error) => error instanceof OpenAI.AuthenticationError);
console.log("a wrong apiKey: AuthenticationError: ok");
