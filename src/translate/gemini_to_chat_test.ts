import assert from "node:assert/strict";
import { geminiToChat } from "./gemini_to_chat.ts";
import type { ChatRequest, ChatTool } from "./chat_types.ts";

const MODEL = "google/gemini-2.5-pro";
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

const weather = {
  name: "get_weather",
  description: "Current weather for a city",
  parameters: {
    type: "OBJECT",
    properties: { city: { type: "STRING" }, days: { type: "INTEGER", nullable: true } },
    required: ["city"],
  },
};
const weatherTool: ChatTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, days: { type: ["integer", "null"] } },
      required: ["city"],
    },
  },
};

interface Carried {
  readonly name: string;
  readonly body: unknown;
  readonly stream?: boolean;
  readonly want: Omit<ChatRequest, "model">;
}

const carried: Carried[] = [
  {
    name: "a single text turn becomes one user message",
    body: { contents: [{ role: "user", parts: [{ text: "Hi" }] }] },
    want: { messages: [{ role: "user", content: "Hi" }] },
  },
  {
    name: "a turn without a role is the user's",
    body: { contents: [{ parts: [{ text: "Hi" }] }] },
    want: { messages: [{ role: "user", content: "Hi" }] },
  },
  {
    name: "the system instruction becomes the first message, its parts joined",
    body: {
      systemInstruction: { parts: [{ text: "You are terse. " }, { text: "Answer in French." }] },
      contents: [{ role: "user", parts: [{ text: "Hi" }] }],
    },
    want: {
      messages: [
        { role: "system", content: "You are terse. Answer in French." },
        { role: "user", content: "Hi" },
      ],
    },
  },
  {
    name: "snake_case field names are read like camelCase ones",
    body: {
      system_instruction: { parts: [{ text: "Be brief." }] },
      contents: [{ role: "user", parts: [{ inline_data: { mime_type: "image/png", data: PNG } }] }],
      generation_config: { max_output_tokens: 50, stop_sequences: ["END"] },
    },
    want: {
      messages: [
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } }],
        },
      ],
      max_tokens: 50,
      stop: ["END"],
    },
  },
  {
    name: "multi-turn: model turns become assistant messages in order",
    body: {
      contents: [
        { role: "user", parts: [{ text: "Hello" }] },
        { role: "model", parts: [{ text: "Hi! " }, { text: "How can I help?" }] },
        { role: "user", parts: [{ text: "Tell me a joke" }] },
      ],
    },
    want: {
      messages: [
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Hi! How can I help?" },
        { role: "user", content: "Tell me a joke" },
      ],
    },
  },
  {
    name: "text and an inline image keep their order as content parts",
    body: {
      contents: [{
        role: "user",
        parts: [{ text: "What is in this picture?" }, {
          inlineData: { mimeType: "image/PNG", data: PNG },
        }],
      }],
    },
    want: {
      messages: [{
        role: "user",
        content: [
          { type: "text", text: "What is in this picture?" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
        ],
      }],
    },
  },
  {
    name: "thought summaries and thought signatures are left out",
    body: {
      contents: [
        { role: "user", parts: [{ text: "2+2?" }] },
        {
          role: "model",
          parts: [{ text: "Adding.", thought: true }, { text: "4", thoughtSignature: "c2ln" }],
        },
        { role: "user", parts: [{ text: "And 3+3?" }] },
      ],
    },
    want: {
      messages: [
        { role: "user", content: "2+2?" },
        { role: "assistant", content: "4" },
        { role: "user", content: "And 3+3?" },
      ],
    },
  },
  {
    name: "function declarations become tools with JSON Schema types",
    body: {
      contents: [{ role: "user", parts: [{ text: "Weather in Paris?" }] }],
      tools: [{ functionDeclarations: [weather] }],
    },
    want: {
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool],
    },
  },
  {
    name: "a declaration with parametersJsonSchema passes it through; none gets an empty object",
    body: {
      contents: [{ role: "user", parts: [{ text: "go" }] }],
      tools: [{
        functionDeclarations: [
          { name: "lookup", parametersJsonSchema: { type: "object", properties: { q: {} } } },
          { name: "now" },
        ],
      }],
    },
    want: {
      messages: [{ role: "user", content: "go" }],
      tools: [
        {
          type: "function",
          function: { name: "lookup", parameters: { type: "object", properties: { q: {} } } },
        },
        {
          type: "function",
          function: { name: "now", parameters: { type: "object", properties: {} } },
        },
      ],
    },
  },
  {
    name: "a call and its response pair up with deterministic ids, parallel calls kept apart",
    body: {
      contents: [
        { role: "user", parts: [{ text: "Weather in Paris and Rome?" }] },
        {
          role: "model",
          parts: [
            { text: "Checking." },
            { functionCall: { name: "get_weather", args: { city: "Paris" } } },
            { functionCall: { name: "get_weather", args: { city: "Rome" } } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_weather", response: { temp: 21 } } },
            { functionResponse: { name: "get_weather", response: { temp: 25 } } },
          ],
        },
      ],
      tools: [{ functionDeclarations: [weather] }],
    },
    want: {
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [
            {
              id: "call_get_weather_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
            {
              id: "call_get_weather_2",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Rome"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_get_weather_1", content: '{"temp":21}' },
        { role: "tool", tool_call_id: "call_get_weather_2", content: '{"temp":25}' },
      ],
      tools: [weatherTool],
    },
  },
  {
    name: "ids Gemini gave are kept; text beside a function result follows the tool message",
    body: {
      contents: [
        { role: "user", parts: [{ text: "Weather?" }] },
        {
          role: "model",
          parts: [{ functionCall: { id: "fc-7", name: "get_weather", args: { city: "Oslo" } } }],
        },
        {
          role: "function",
          parts: [
            { text: "Here you go:" },
            { functionResponse: { id: "fc-7", name: "get_weather", response: { temp: -3 } } },
          ],
        },
      ],
    },
    want: {
      messages: [
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{
            id: "fc-7",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
          }],
        },
        { role: "tool", tool_call_id: "fc-7", content: '{"temp":-3}' },
        { role: "user", content: "Here you go:" },
      ],
    },
  },
  {
    name: "toolConfig ANY with one allowed name forces that function",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ functionDeclarations: [weather, { name: "other" }] }],
      toolConfig: {
        functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] },
      },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      tools: [weatherTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    },
  },
  {
    name: "toolConfig NONE becomes none",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ functionDeclarations: [weather] }],
      toolConfig: { functionCallingConfig: { mode: "NONE" } },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      tools: [weatherTool],
      tool_choice: "none",
    },
  },
  {
    name: "toolConfig ANY becomes required",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ functionDeclarations: [weather] }],
      toolConfig: { functionCallingConfig: { mode: "ANY" } },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      tools: [weatherTool],
      tool_choice: "required",
    },
  },
  {
    name: "generationConfig: sampling, length, stop sequences, candidates, penalties, seed",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: {
        temperature: 0.2,
        topP: 0.9,
        topK: 40,
        maxOutputTokens: 256,
        stopSequences: ["\n\n", "END"],
        candidateCount: 2,
        presencePenalty: 0.5,
        frequencyPenalty: 0.1,
        seed: 7,
        thinkingConfig: { thinkingBudget: 0, includeThoughts: true },
        responseModalities: ["TEXT"],
      },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
      labels: { team: "a" },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 256,
      n: 2,
      presence_penalty: 0.5,
      frequency_penalty: 0.1,
      seed: 7,
      stop: ["\n\n", "END"],
    },
  },
  {
    name: "JSON mode without a schema is json_object",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { responseMimeType: "application/json" },
    },
    want: { messages: [{ role: "user", content: "x" }], response_format: { type: "json_object" } },
  },
  {
    name: "a responseSchema becomes a json_schema in property order",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: {
        responseMimeType: "application/json",
        responseSchema: {
          type: "ARRAY",
          items: {
            type: "OBJECT",
            properties: { b: { type: "NUMBER" }, a: { type: "STRING", enum: ["x", "y"] } },
            propertyOrdering: ["a", "b"],
          },
          maxItems: "3",
        },
      },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "response",
          schema: {
            type: "array",
            items: {
              type: "object",
              properties: { a: { type: "string", enum: ["x", "y"] }, b: { type: "number" } },
            },
            maxItems: 3,
          },
        },
      },
    },
  },
  {
    name: "a responseJsonSchema is sent as it is",
    body: {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: {
        responseMimeType: "application/json",
        responseJsonSchema: { type: "object", additionalProperties: false },
      },
    },
    want: {
      messages: [{ role: "user", content: "x" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "response",
          schema: { type: "object", additionalProperties: false },
        },
      },
    },
  },
  {
    name: "streaming asks for usage in the last chunk",
    body: { contents: [{ role: "user", parts: [{ text: "Hi" }] }] },
    stream: true,
    want: {
      messages: [{ role: "user", content: "Hi" }],
      stream: true,
      stream_options: { include_usage: true },
    },
  },
];

for (const { name, body, stream, want } of carried) {
  Deno.test(`geminiToChat() carries: ${name}`, () => {
    const result = geminiToChat(body, MODEL, stream ?? false);
    assert.ok(result.ok, result.ok ? "" : result.reason);
    assert.deepEqual(result.request, { model: MODEL, ...want });
  });
}

Deno.test("geminiToChat() gives the same ids for the same request every time", () => {
  const body = {
    contents: [
      { role: "user", parts: [{ text: "go" }] },
      { role: "model", parts: [{ functionCall: { name: "f", args: {} } }] },
      { role: "user", parts: [{ functionResponse: { name: "f", response: {} } }] },
      { role: "model", parts: [{ functionCall: { name: "f", args: { n: 2 } } }] },
      { role: "user", parts: [{ functionResponse: { name: "f", response: {} } }] },
    ],
  };
  const first = geminiToChat(body, MODEL, false);
  const again = geminiToChat(structuredClone(body), MODEL, false);
  assert.deepEqual(first, again);
  assert.ok(first.ok);
  const ids = first.request.messages.flatMap((m) =>
    m.role === "tool"
      ? [m.tool_call_id]
      : m.role === "assistant"
      ? m.tool_calls!.map((c) => c.id)
      : []
  );
  assert.deepEqual(ids, ["call_f_1", "call_f_1", "call_f_2", "call_f_2"]);
});

interface Refused {
  readonly name: string;
  readonly body: unknown;
  /** Words the reason must contain, so a user sees what and why. */
  readonly reason: RegExp;
}

const text = (t: string) => ({ role: "user", parts: [{ text: t }] });

const refused: Refused[] = [
  {
    name: "an uploaded file reference",
    body: {
      contents: [{
        role: "user",
        parts: [{ fileData: { mimeType: "application/pdf", fileUri: "https://x/files/abc" } }],
      }],
    },
    reason: /uploaded file \(fileData\).*contents\[0\]\.parts\[0\]/,
  },
  {
    name: "cached content",
    body: { contents: [text("x")], cachedContent: "cachedContents/abc" },
    reason: /context cache \(cachedContent\)/,
  },
  {
    name: "Google Search grounding",
    body: { contents: [text("x")], tools: [{ googleSearch: {} }] },
    reason: /Google Search grounding \(googleSearch\).*other providers do not offer/,
  },
  {
    name: "code execution",
    body: { contents: [text("x")], tools: [{ codeExecution: {} }] },
    reason: /code execution \(codeExecution\)/,
  },
  {
    name: "URL context",
    body: { contents: [text("x")], tools: [{ url_context: {} }] },
    reason: /URL context \(urlContext\)/,
  },
  {
    name: "inline audio",
    body: {
      contents: [{
        role: "user",
        parts: [{ inlineData: { mimeType: "audio/mpeg", data: "AAAA" } }],
      }],
    },
    reason: /audio\/mpeg data .*text and images only/,
  },
  {
    name: "an inline PDF",
    body: {
      contents: [{
        role: "user",
        parts: [{ inlineData: { mimeType: "application/pdf", data: "JVBE" } }],
      }],
    },
    reason: /application\/pdf/,
  },
  {
    name: "safety settings that ask for blocking",
    body: {
      contents: [text("x")],
      safetySettings: [{
        category: "HARM_CATEGORY_HATE_SPEECH",
        threshold: "BLOCK_LOW_AND_ABOVE",
      }],
    },
    reason: /block HARM_CATEGORY_HATE_SPEECH at BLOCK_LOW_AND_ABOVE/,
  },
  {
    name: "image output",
    body: { contents: [text("x")], generationConfig: { responseModalities: ["TEXT", "IMAGE"] } },
    reason: /IMAGE output/,
  },
  {
    name: "an enum response type",
    body: { contents: [text("x")], generationConfig: { responseMimeType: "text/x.enum" } },
    reason: /text\/x\.enum output/,
  },
  {
    name: "log probabilities",
    body: { contents: [text("x")], generationConfig: { responseLogprobs: true } },
    reason: /log probabilities/,
  },
  {
    name: "an unknown generationConfig field",
    body: { contents: [text("x")], generationConfig: { frobnicate: 1 } },
    reason: /generationConfig\.frobnicate is not one/,
  },
  {
    name: "a function name chat completions reject",
    body: { contents: [text("x")], tools: [{ functionDeclarations: [{ name: "ns.tool" }] }] },
    reason: /function name at tools\[0\]\.functionDeclarations\[0\]\.name/,
  },
  {
    name: "a function result with no call before it",
    body: {
      contents: [{ role: "user", parts: [{ functionResponse: { name: "f", response: {} } }] }],
    },
    reason: /functionResponse for f .*answers no earlier functionCall/,
  },
  {
    name: "a call left unanswered before the conversation goes on",
    body: {
      contents: [
        text("go"),
        { role: "model", parts: [{ functionCall: { name: "f", args: {} } }] },
        text("never mind"),
      ],
    },
    reason: /call to f with no functionResponse/,
  },
  {
    name: "a request body that is not an object",
    body: "hello",
    reason: /not a JSON object/,
  },
  {
    name: "empty contents",
    body: { contents: [] },
    reason: /contents is empty/,
  },
];

for (const { name, body, reason } of refused) {
  Deno.test(`geminiToChat() refuses ${name}, saying why`, () => {
    const result = geminiToChat(body, MODEL, false);
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.match(result.reason, reason);
      assert.match(result.reason, /\.$/, "the reason is a sentence");
    }
  });
}

Deno.test("geminiToChat() pairs a result whose id no call carries by position", () => {
  const result = geminiToChat(
    {
      contents: [
        { role: "user", parts: [{ text: "Read it" }] },
        { role: "model", parts: [{ functionCall: { name: "read_file", args: { path: "a" } } }] },
        {
          role: "user",
          parts: [{
            functionResponse: {
              id: "read_file__read_file_1764000000000_0",
              name: "read_file",
              response: { output: "hello" },
            },
          }],
        },
      ],
    },
    MODEL,
    false,
  );
  assert.ok(result.ok, result.ok ? "" : result.reason);
  const [, assistant, tool] = result.request.messages;
  assert.equal(assistant.role === "assistant" && assistant.tool_calls?.[0].id, "call_read_file_1");
  assert.deepEqual(tool, {
    role: "tool",
    tool_call_id: "call_read_file_1",
    content: '{"output":"hello"}',
  });
});

Deno.test("geminiToChat() carries a Gemini CLI turn: tools, thoughts, ids on both sides", () => {
  const result = geminiToChat(
    {
      systemInstruction: { role: "user", parts: [{ text: "You are an agent." }] },
      contents: [
        { role: "user", parts: [{ text: "List files" }] },
        {
          role: "model",
          parts: [
            { text: "Planning.", thought: true },
            {
              functionCall: { id: "ls__ls_1_0", name: "ls", args: { dir: "." } },
              thoughtSignature: "c2ln",
            },
          ],
        },
        {
          role: "user",
          parts: [{
            functionResponse: { id: "ls__ls_1_0", name: "ls", response: { output: "a b" } },
          }],
        },
      ],
      tools: [{
        functionDeclarations: [{
          name: "ls",
          description: "List a directory",
          parametersJsonSchema: { type: "object", properties: { dir: { type: "string" } } },
        }],
      }],
      generationConfig: {
        temperature: 1,
        topP: 0.95,
        topK: 64,
        thinkingConfig: { includeThoughts: true, thinkingBudget: 8192 },
      },
    },
    MODEL,
    true,
  );
  assert.ok(result.ok, result.ok ? "" : result.reason);
  assert.deepEqual(result.request.messages.map((m) => m.role), [
    "system",
    "user",
    "assistant",
    "tool",
  ]);
  const tool = result.request.messages[3];
  assert.equal(tool.role === "tool" && tool.tool_call_id, "ls__ls_1_0");
  assert.equal(result.request.temperature, 1);
  assert.equal(result.request.top_p, 0.95);
});
