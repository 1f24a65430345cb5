/**
 * Parses a `.env` file: `NAME=value` lines, `#` comments, optional `export `, single or double
 * quotes (double-quoted values may span lines, so a newline-separated API_KEYS fits). Errors give
 * the line number only, never the value (values are keys and tokens).
 */

export class DotenvError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq === -1) {
      throw new DotenvError(`.env line ${lineNo}: expected NAME=value`);
    }
    const name = line.slice(0, eq).trim().replace(/^export\s+/, "");
    if (!NAME.test(name)) {
      // Never echo it: the text before "=" may be a key pasted on a line of its own.
      throw new DotenvError(
        `.env line ${lineNo}: the text before "=" is not a variable name (letters, digits, _)`,
      );
    }
    let value = line.slice(eq + 1).trim();
    const quote = value[0];
    if (quote === '"' || quote === "'") {
      let body = value.slice(1);
      // A double-quoted value may continue on the following lines until its closing quote.
      while (!closes(body, quote)) {
        if (quote === "'" || i + 1 >= lines.length) {
          throw new DotenvError(`.env line ${lineNo}: the quoted value of ${name} is not closed`);
        }
        body += "\n" + lines[++i];
      }
      const end = lastUnescaped(body, quote);
      value = body.slice(0, end);
      if (quote === '"') {
        value = value.replace(/\\(["\\n])/g, (_, c) => c === "n" ? "\n" : c);
      }
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[name] = value;
  }
  return out;
}

function closes(body: string, quote: string): boolean {
  return lastUnescaped(body, quote) !== -1;
}

function lastUnescaped(body: string, quote: string): number {
  for (let i = 0; i < body.length; i++) {
    if (body[i] === "\\" && quote === '"') {
      i++;
      continue;
    }
    if (body[i] === quote) return i;
  }
  return -1;
}
