/**
 * The OpenAI chat-completions wire format, as far as the translation writes and reads it: the
 * request we send to a fallback provider and the answers (whole or streamed) it sends back.
 *
 * Shapes: https://platform.openai.com/docs/api-reference/chat (create, object, streaming);
 * OpenRouter follows them (https://openrouter.ai/docs/api/reference/overview).
 */

/** One piece of a user message's content. */
export type ChatContentPart =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "image_url"; readonly image_url: { readonly url: string } };

export interface ChatToolCall {
  readonly id: string;
  readonly type: "function";
  readonly function: { readonly name: string; readonly arguments: string };
}

export type ChatMessage =
  | { readonly role: "system"; readonly content: string }
  | { readonly role: "user"; readonly content: string | readonly ChatContentPart[] }
  | {
    readonly role: "assistant";
    readonly content: string | null;
    readonly tool_calls?: readonly ChatToolCall[];
  }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string };

export interface ChatTool {
  readonly type: "function";
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters: Record<string, unknown>;
  };
}

export type ChatToolChoice =
  | "auto"
  | "none"
  | "required"
  | { readonly type: "function"; readonly function: { readonly name: string } };

export type ChatResponseFormat =
  | { readonly type: "json_object" }
  | {
    readonly type: "json_schema";
    readonly json_schema: { readonly name: string; readonly schema: Record<string, unknown> };
  };

/** A chat-completions request body. */
export interface ChatRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly ChatTool[];
  readonly tool_choice?: ChatToolChoice;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly max_tokens?: number;
  readonly stop?: readonly string[];
  readonly n?: number;
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
  readonly seed?: number;
  readonly response_format?: ChatResponseFormat;
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage: boolean };
}

/** Token counts as OpenAI (and OpenRouter, with extra fields) report them. */
export interface ChatUsage {
  readonly prompt_tokens?: number;
  readonly completion_tokens?: number;
  readonly total_tokens?: number;
  readonly completion_tokens_details?: { readonly reasoning_tokens?: number };
  readonly prompt_tokens_details?: { readonly cached_tokens?: number };
}
