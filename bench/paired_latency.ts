/**
 * Added tail latency, measured in pairs: the bare proxy and the rotator run side by side and
 * one open-loop generator sends to both, a request to each in the same turn of its event loop.
 * A pause of the generator, the mock or the machine then lands on both alike, so the difference
 * between their p99s is the rotator's own. (Measured one after the other, the bare proxy's own
 * p99 moved by several ms between runs here, ten times the 1 ms target.)
 *
 *   deno task bench:latency [--rate N] [--seconds N] [--rounds N]
 *
 * Each round sends RATE pairs a second for SECONDS, evenly spaced, open loop; which target is
 * sent to first alternates pair by pair. Latency runs from the send to the end of the answer's
 * body. Both servers share SERVER_CORE; the mock and this script share CLIENT_CORE.
 */

import {
  assertAlive,
  CLIENT_CORE,
  flagValue,
  GENERATE,
  openLoop,
  pin,
  quantile,
  round,
  type Server,
  SERVER_CORE,
  startServer,
  timedGenerate,
  TOKEN,
} from "./lib.ts";

const RATE = Number(flagValue("--rate") ?? 250);
const SECONDS = Number(flagValue("--seconds") ?? 10);
const ROUNDS = Number(flagValue("--rounds") ?? 5);

interface Sample {
  readonly latencies: number[];
  failed: number;
}

async function timed(url: string, into: Sample): Promise<void> {
  const result = await timedGenerate(url);
  if (result?.ok) into.latencies.push(result.ms);
  else into.failed++;
}

/**
 * One round: `RATE` pairs a second, both requests of a pair sent in the same turn of the event
 * loop (a late turn delays both alike), the target that goes first alternating pair by pair.
 */
async function pairedRound(
  bareUrl: string,
  rotatorUrl: string,
  seconds: number,
): Promise<{ bare: Sample; rotator: Sample; late: number }> {
  const bare: Sample = { latencies: [], failed: 0 };
  const rotator: Sample = { latencies: [], failed: 0 };
  const total = Math.round(RATE * seconds);
  const pending: Promise<void>[] = [];
  const late = await openLoop(RATE, total, (i) => {
    if (i % 2 === 0) pending.push(timed(bareUrl, bare), timed(rotatorUrl, rotator));
    else pending.push(timed(rotatorUrl, rotator), timed(bareUrl, bare));
  });
  await Promise.all(pending);
  return { bare, rotator, late };
}

const servers: Server[] = [];
try {
  await pin(Deno.pid, CLIENT_CORE);
  const mock = await startServer("mock", ["--allow-net", "--allow-env", "bench/mock.ts"]);
  servers.push(mock);
  await pin(mock.pid, CLIENT_CORE);
  const bare = await startServer("bare", ["--allow-net", "--allow-env", "bench/bare_proxy.ts"], {
    UPSTREAM: mock.url,
  });
  servers.push(bare);
  const rotator = await startServer(
    "rotator",
    ["--allow-net", "--allow-env", "--allow-read", "entries/deno.ts"],
    {
      ACCESS_TOKEN: TOKEN,
      GEMINI_API_BASE_URL: mock.url,
      HOST: "127.0.0.1",
      PORT: "0",
      STATE: "memory",
      LOG_REQUESTS: "false",
      API_KEYS: [1, 2, 3].map((i) => `AIzaSyBenchOkay${String(i).padStart(24, "0")}`).join(","),
    },
  );
  servers.push(rotator);
  await pin(bare.pid, SERVER_CORE);
  await pin(rotator.pid, SERVER_CORE);

  const bareUrl = bare.url + GENERATE;
  const rotatorUrl = rotator.url + GENERATE;
  await pairedRound(bareUrl, rotatorUrl, 3); // warm-up: connections, JIT

  const rows: {
    bareP50: number;
    bareP99: number;
    rotatorP50: number;
    rotatorP99: number;
    late: number;
    failed: number;
  }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { bare: bar, rotator: rot, late } = await pairedRound(bareUrl, rotatorUrl, SECONDS);
    const row = {
      bareP50: quantile(bar.latencies, 0.5),
      bareP99: quantile(bar.latencies, 0.99),
      rotatorP50: quantile(rot.latencies, 0.5),
      rotatorP99: quantile(rot.latencies, 0.99),
      late,
      failed: bar.failed + rot.failed,
    };
    rows.push(row);
    console.error(
      `  round ${r + 1}: bare p50/p99 ${row.bareP50.toFixed(2)}/${row.bareP99.toFixed(2)} ms, ` +
        `rotator ${row.rotatorP50.toFixed(2)}/${row.rotatorP99.toFixed(2)} ms, late pairs ${late}`,
    );
  }
  assertAlive(servers);

  const added50 = rows.map((row) => row.rotatorP50 - row.bareP50);
  const added99 = rows.map((row) => row.rotatorP99 - row.bareP99);
  const lines = [
    `Paired latency, ${new Date().toISOString()}, Deno ${Deno.version.deno}: ${RATE} req/s to ` +
    `each of the bare proxy and the rotator (3 keys), in pairs, ${ROUNDS} rounds of ${SECONDS} s`,
    "",
    "| Round | bare p50 / p99, ms | rotator p50 / p99, ms | added p50, ms | added p99, ms | late pairs | failed |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((row, i) =>
      `| ${i + 1} | ${row.bareP50.toFixed(2)} / ${row.bareP99.toFixed(2)} | ` +
      `${row.rotatorP50.toFixed(2)} / ${row.rotatorP99.toFixed(2)} | ${added50[i].toFixed(2)} | ` +
      `${added99[i].toFixed(2)} | ${row.late} | ${row.failed} |`
    ),
    `| **median** | | | **${round(quantile(added50, 0.5), 2).toFixed(2)}** | **${
      round(quantile(added99, 0.5), 2).toFixed(2)
    }** | | |`,
  ];
  console.log(lines.join("\n"));
} finally {
  for (const server of servers.reverse()) await server.stop();
}
