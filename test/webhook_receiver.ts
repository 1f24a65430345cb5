/**
 * A local webhook receiver for alert tests: records each POST, answers with scripted statuses,
 * and lets a test wait for the next message instead of sleeping.
 */

export interface ReceivedMessage {
  readonly path: string;
  readonly contentType: string | null;
  readonly body: string;
  readonly json: Record<string, unknown>;
}

export interface WebhookReceiver {
  /** Where to post: includes a secret-looking path, as Slack and Discord URLs do. */
  readonly url: string;
  readonly secretPath: string;
  readonly messages: ReceivedMessage[];
  /** Requests seen, including those answered with an error status. */
  readonly attempts: number;
  /** Statuses for the next requests, in order; 200 once they run out. */
  script(...statuses: number[]): void;
  /** Resolves with the `n`th message received with a 2xx (1-based), now or when it arrives. */
  message(n: number): Promise<ReceivedMessage>;
  /** Resolves when the total number of requests reaches `n`. */
  attemptsReach(n: number): Promise<void>;
  close(): Promise<void>;
}

export function startWebhookReceiver(): WebhookReceiver {
  const secretPath = "/services/T0SECRET/B0SECRET/xoxSecretPathToken";
  const messages: ReceivedMessage[] = [];
  const statuses: number[] = [];
  let attempts = 0;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());

  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await req.text();
    attempts++;
    const status = statuses.shift() ?? 200;
    if (status >= 200 && status < 300) {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body);
      } catch { /* recorded as is */ }
      messages.push({
        path: new URL(req.url).pathname,
        contentType: req.headers.get("content-type"),
        body,
        json,
      });
    }
    wake();
    // Close after each answer: Deno 2.5's server.shutdown() otherwise waits out idle keep-alives.
    return new Response(status === 200 ? "ok" : "no", { status, headers: { connection: "close" } });
  });

  const until = (ready: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = () => (ready() ? resolve() : waiters.push(check));
      check();
    });

  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}${secretPath}`,
    secretPath,
    messages,
    get attempts() {
      return attempts;
    },
    script(...next) {
      statuses.push(...next);
    },
    async message(n) {
      await until(() => messages.length >= n);
      return messages[n - 1];
    },
    attemptsReach(n) {
      return until(() => attempts >= n);
    },
    close: () => server.shutdown(),
  };
}
