/**
 * How a batch of alerts reads in a chat room or a JSON consumer: one line per alert in plain
 * words, wrapped in the body each webhook expects. Keys appear only as fingerprints and labels.
 *
 * Slack incoming webhooks take `{"text"}` (https://api.slack.com/messaging/webhooks); Discord
 * takes `{"content"}` of at most 2000 characters
 * (https://discord.com/developers/docs/resources/webhook#execute-webhook).
 */

import type { AlertFormat } from "../config.ts";
import type { Alert } from "./watch.ts";

/** Who is speaking, so messages from several deployments can be told apart. */
export interface AlertSource {
  readonly version: string;
  readonly platform: string;
  readonly build?: string;
}

const DISCORD_LIMIT = 2000;
const SLACK_LIMIT = 30000;

const WINDOW_TEXT: Record<string, string> = {
  minute: "per-minute quota spent",
  day: "per-day quota spent, resets at midnight Pacific",
  unknown: "rate-limited (429 without a named quota)",
  no_allowance: "no quota for this model (limit: 0)",
  project: "projects over their spending cap",
};

/** One line per alert, in plain text with `code` marks (read well in Slack, Discord and logs). */
export function alertLines(alerts: readonly Alert[], now: number): string[] {
  return alerts.map((alert) => {
    switch (alert.kind) {
      case "key_disabled": {
        const what = alert.scope === "key"
          ? `Key \`${alert.id}\`${alert.label ? ` (${alert.label})` : ""}`
          : `Project \`${alert.id}\` (${alert.keyIds.length} key(s): ${
            alert.keyIds.map((id) => `\`${id}\``).join(", ")
          })`;
        const back = alert.recheckAt === null
          ? "Only an operator can re-enable it."
          : `It is tried again at ${time(alert.recheckAt)} (in ${delay(alert.recheckAt - now)}).`;
        return `🔴 ${what} was disabled: ${alert.reason} (HTTP ${alert.status}). ${back}`;
      }
      case "model_exhausted": {
        const why = alert.reason === "ALL_KEYS_DISABLED"
          ? "every key is disabled"
          : alert.reason === "NO_KEYS"
          ? "the pool has no keys"
          : `all ${alert.keys} keys are cooling${
            alert.window ? ` (${WINDOW_TEXT[alert.window] ?? alert.window})` : ""
          }`;
        const when = alert.recoversAt === null
          ? "No key recovers without an operator."
          : `The first key is due back at ${time(alert.recoversAt)} (in ${
            delay(alert.recoversAt - now)
          }).`;
        const times = alert.episodes > 1 ? ` It ran dry ${alert.episodes} times.` : "";
        return `🟠 No usable key for model \`${model(alert.model)}\`: ${why}. ${when}${times}`;
      }
      case "model_recovered": {
        const times = alert.episodes > 1
          ? ` It ran dry ${alert.episodes} times since ${time(alert.downSince)}.`
          : "";
        return `🟢 Model \`${model(alert.model)}\` has a usable key again (out for ${
          delay(alert.at - alert.downSince)
        }).${times}`;
      }
    }
  });
}

/** The message text: a header naming the rotator, then the alert lines. */
export function alertText(
  alerts: readonly Alert[],
  dropped: number,
  source: AlertSource,
  now: number,
): string {
  const header = `gemini-key-rotator ${source.version} on ${source.platform}` +
    (source.build ? ` (build ${source.build})` : "");
  const lines = alertLines(alerts, now);
  if (dropped > 0) lines.push(`… and ${dropped} more alert(s) not listed.`);
  return [header, ...lines].join("\n");
}

/** The webhook body for `format`, already a JSON string. */
export function webhookBody(
  format: AlertFormat,
  alerts: readonly Alert[],
  dropped: number,
  source: AlertSource,
  now: number,
): string {
  const text = alertText(alerts, dropped, source, now);
  switch (format) {
    case "slack":
      // Slack reads &, < and > as markup: https://api.slack.com/reference/surfaces/formatting
      return JSON.stringify({ text: truncate(slackEscape(text), SLACK_LIMIT) });
    case "discord":
      // No @everyone or role pings from an alert text.
      return JSON.stringify({
        content: truncate(text, DISCORD_LIMIT),
        allowed_mentions: { parse: [] },
      });
    case "json":
      return JSON.stringify({
        source: "gemini-key-rotator",
        version: source.version,
        platform: source.platform,
        build: source.build ?? null,
        sentAt: new Date(now).toISOString(),
        text,
        dropped,
        alerts: alerts.map(toJson),
      });
  }
}

function toJson(alert: Alert): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  switch (alert.kind) {
    case "key_disabled":
      return { ...alert, at: iso(alert.at), recheckAt: iso(alert.recheckAt) };
    case "model_exhausted":
      return { ...alert, at: iso(alert.at), recoversAt: iso(alert.recoversAt) };
    case "model_recovered":
      return { ...alert, at: iso(alert.at), downSince: iso(alert.downSince) };
  }
}

function model(name: string): string {
  return name === "" ? "(none)" : name.slice(0, 100).replaceAll("`", "'");
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function delay(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes % 60} min`;
}

function slackEscape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function truncate(text: string, limit: number): string {
  return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
}
