/**
 * Entry for the Deno CLI and Deno Deploy: reads the environment (plus `.env` locally), opens the
 * state store, serves the app with Deno.serve, and prints one start-up line.
 *
 *   deno task start            (local: Deno KV in ./data/, or STATE=memory)
 *   deno deploy --prod         (Deno Deploy: the app's assigned KV database)
 */

import denoJson from "../deno.json" with { type: "json" };
import { ConfigError } from "../src/config.ts";
import { DotenvError } from "../src/dotenv.ts";
import { buildFromEnv } from "../src/health.ts";
import { startApp, startupFields } from "../src/startup.ts";
import { bufferedStdout, denoPlatform, readEnv, readProvidersFile } from "./deno_env.ts";
import { openStore } from "./deno_store.ts";
import { denoWebSockets } from "./deno_websockets.ts";

const ENTRY = "entries/deno.ts";

async function main(): Promise<void> {
  const platform = denoPlatform();
  const out = bufferedStdout();
  let started;
  try {
    const env = await readEnv();
    started = await startApp({
      env,
      providersFileText: await readProvidersFile(env.PROVIDERS_FILE),
      meta: {
        version: denoJson.version,
        entry: ENTRY,
        platform,
        ...buildFromEnv(Deno.env.toObject()),
      },
      // The same variables as the config: STATE, KV_PATH and KV_POLL_MS may be in .env too.
      openStore: (config) => openStore(env, config),
      publicPlatform: platform === "deno-deploy",
      writeLog: out.write,
      webSockets: denoWebSockets,
      // app.fetch below is Deno.serve's handler and nothing else reads its responses.
      releaseStreamChunks: true,
    });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DotenvError) {
      console.error(error.message);
      Deno.exit(1);
    }
    throw error;
  }
  const { app, config } = started;
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen({ hostname, port }) {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      app.log.info("started", startupFields(started, `http://${host}:${port}`));
      out.flush();
    },
  }, (request) => app.fetch(request));

  const shutdown = async () => {
    await server.shutdown();
    await app.close();
    await started.store.close();
    out.flush();
    Deno.exit(0);
  };
  if (platform === "deno") {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, shutdown);
  }
  await server.finished;
}

if (import.meta.main) await main();
