/**
 * The Gemini generateContent answer, as far as the translation writes it: what a native client
 * (the @google/genai SDKs, Gemini CLI) receives when a fallback provider answered instead.
 *
 * Shape: https://ai.google.dev/api/generate-content#generatecontentresponse
 */

/**
 * FinishReason values used here (a subset of Google's enum:
 * https://ai.google.dev/api/generate-content#FinishReason).
 */
export type FinishReason = "STOP" | "MAX_TOKENS" | "SAFETY" | "OTHER" | "MALFORMED_FUNCTION_CALL";

export type GeminiPart =
  | { readonly text: string }
  | {
    readonly functionCall: { readonly name: string; readonly args: Record<string, unknown> };
  };

export interface GeminiCandidate {
  readonly content: { readonly parts: readonly GeminiPart[]; readonly role: "model" };
  readonly finishReason?: FinishReason;
  readonly index: number;
}

export interface UsageMetadata {
  readonly promptTokenCount: number;
  readonly candidatesTokenCount: number;
  readonly totalTokenCount: number;
  /** Reasoning tokens, which Gemini counts apart from candidatesTokenCount. */
  readonly thoughtsTokenCount?: number;
  readonly cachedContentTokenCount?: number;
}

export interface GenerateContentResponse {
  readonly candidates: readonly GeminiCandidate[];
  readonly usageMetadata?: UsageMetadata;
  readonly modelVersion: string;
  readonly responseId?: string;
}
