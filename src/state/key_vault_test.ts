import assert from "node:assert/strict";
import { KeyVault, SealError } from "./key_vault.ts";

const KEY = "AIzaSyExampleExampleExampleExample12345";
const PLACE = ["rotator", "keys", "0123456789ab"];
const vault = await KeyVault.fromSecret("correct horse battery staple");

Deno.test("KeyVault.seal() output opens back to the key and never contains it", async () => {
  const sealed = await vault.seal(KEY, PLACE);
  assert.equal(sealed.byteLength, 12 + KEY.length + 16, "nonce || ciphertext || tag");
  assert.ok(!new TextDecoder("latin1").decode(sealed).includes(KEY.slice(4, 20)));
  assert.equal(await vault.open(sealed, PLACE), KEY);
});

Deno.test("KeyVault.seal() uses a fresh nonce each time", async () => {
  const a = await vault.seal(KEY, PLACE);
  const b = await vault.seal(KEY, PLACE);
  assert.notDeepEqual(a.slice(0, 12), b.slice(0, 12));
  assert.notDeepEqual(a, b);
});

Deno.test("KeyVault.open() refuses another secret, another place, and altered bytes", async () => {
  const sealed = await vault.seal(KEY, PLACE);
  const other = await KeyVault.fromSecret("a different secret entirely");
  await assert.rejects(other.open(sealed, PLACE), SealError);
  await assert.rejects(vault.open(sealed, ["rotator", "keys", "ba9876543210"]), SealError);
  const altered = sealed.slice();
  altered[20] ^= 1;
  await assert.rejects(vault.open(altered, PLACE), SealError);
  await assert.rejects(vault.open(sealed.slice(0, 20), PLACE), SealError);
});
