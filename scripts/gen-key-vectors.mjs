// A second, independent implementation of kvbroker's content keys (docs/content-keys.md), over the reference
// xxHash compiled to wasm. It writes the vectors that core's tests check the Java implementation against.
//
//   d="$(mktemp -d)" && cp scripts/gen-key-vectors.mjs "$d" && (cd "$d" && npm install xxhash-wasm@1.1.0) \
//     && node "$d/gen-key-vectors.mjs" > core/src/test/resources/content-key-vectors.json
//
// Gateway authors can read it as a compact reference for another language.
import xxhash from "xxhash-wasm";

const { h64Raw } = await xxhash();
const enc = new TextEncoder();
const hex = (v) => v.toString(16).padStart(16, "0");

class Buf {
  constructor() { this.bytes = []; }
  byte(b) { this.bytes.push(b & 0xff); }
  raw(arr) { for (const b of arr) this.byte(b); }
  u32(v) { for (let i = 0; i < 4; i++) this.byte(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn)); }
  u64(v) { const x = BigInt.asUintN(64, BigInt(v)); for (let i = 0n; i < 8n; i++) this.byte(Number((x >> (8n * i)) & 0xffn)); }
  hash() { return h64Raw(Uint8Array.from(this.bytes), 0n); }
}

// Extra-key values: {i: "123"} is an integer (as a string, for 64-bit range), {f: 1.5} a float, {b: "hex"} bytes.
function encode(buf, v) {
  if (v === null) buf.byte(0x00);
  else if (v === true || v === false) buf.byte(v ? 0x03 : 0x02);
  else if (typeof v === "object" && "i" in v) { buf.byte(0x04); buf.u64(BigInt(v.i)); }
  else if (typeof v === "object" && "f" in v) {
    buf.byte(0x05);
    const dv = new DataView(new ArrayBuffer(8)); dv.setFloat64(0, v.f, true);
    for (let i = 0; i < 8; i++) buf.byte(dv.getUint8(i));
  }
  else if (typeof v === "string") { const b = enc.encode(v); buf.byte(0x06); buf.u32(b.length); buf.raw(b); }
  else if (typeof v === "object" && "b" in v) {
    const b = Buffer.from(v.b, "hex"); buf.byte(0x07); buf.u32(b.length); buf.raw(b);
  }
  else if (Array.isArray(v)) { buf.byte(0x08); buf.u32(v.length); for (const x of v) encode(buf, x); }
  else throw new Error("unsupported extra key " + JSON.stringify(v));
}

function normalize(extra, lora) {
  if (!Array.isArray(extra)) return null;
  const kept = extra.filter((x) => x !== null && !(lora !== null && x === lora));
  return kept.length === 0 ? null : kept;
}

function root(model, lora) {
  const b = new Buf();
  b.raw(enc.encode("kvbroker.key.v1")); b.byte(0); b.raw(enc.encode(model)); b.byte(0); b.raw(enc.encode(lora ?? ""));
  return b.hash();
}

function chunk(parent, tokens, from, g, extra) {
  const b = new Buf();
  b.u64(parent);
  for (let i = from; i < from + g; i++) b.u32(tokens[i]);
  if (extra !== null) encode(b, extra);
  return b.hash();
}

const range = (a, n) => Array.from({ length: n }, (_, i) => a + i);
const cases = [];
function promptCase(name, model, lora, g, tokens) {
  let key = root(model, lora);
  const keys = [];
  for (let c = 0; c + g <= tokens.length; c += g) { key = chunk(key, tokens, c, g, null); keys.push(hex(key)); }
  cases.push({ name, kind: "prompt", model, lora, granularity: g, tokens, root: hex(root(model, lora)), keys });
}
function blockCase(name, model, lora, g, parentTokens, tokens, span, extra) {
  // The block follows a parent chain computed from parentTokens (one key per chunk), extra on its first chunk.
  let key = root(model, lora);
  for (let c = 0; c + g <= parentTokens.length; c += g) key = chunk(key, parentTokens, c, g, null);
  const normalized = normalize(extra, lora);
  for (let c = 0; c < span; c++) key = chunk(key, tokens, c * g, g, c === 0 ? normalized : null);
  cases.push({ name, kind: "block", model, lora, granularity: g, parentTokens, tokens, span, extra,
    normalized, key: hex(key) });
}

promptCase("two chunks, base model", "Qwen/Qwen3-0.6B", null, 16, range(1, 40));
promptCase("large token ids", "Qwen/Qwen3-0.6B", null, 16,
  [128000, 128006, 9125, 128007, 271, 0, 127, 128, 255, 256, 65535, 65536, 128255, 42, 2, 3, ...range(151900, 16)]);
promptCase("adapter keyspace", "Qwen/Qwen3-0.6B", "adapter", 16, range(1, 32));
promptCase("granularity 32", "meta-llama/Llama-3.1-8B", null, 32, range(1000, 96));
promptCase("utf-8 model name", "модель/ß-7b", null, 16, range(7, 16));
blockCase("salted child block of a LoRA request", "Qwen/Qwen3-0.6B", "adapter", 16, range(1, 16), range(17, 16),
  1, ["adapter", "salt-1"]);
blockCase("lora name alone normalizes to no extra", "Qwen/Qwen3-0.6B", "adapter", 16, [], range(1, 16), 1,
  ["adapter"]);
blockCase("32-token block at granularity 16 (span 2)", "Qwen/Qwen3-0.6B", null, 16, range(1, 16), range(17, 32),
  2, null);
blockCase("multimodal extra keys", "Qwen/Qwen2-VL-7B", null, 16, [], range(1, 16), 1,
  [["mmhash-abc", { i: "3" }], { f: 1.5 }, true, { b: "00ff" }, { i: "-1" }]);

const xxh64 = ["", "61", "616263", Buffer.from(range(0, 100)).toString("hex")]
  .map((h) => ({ input: h, hash: hex(h64Raw(Uint8Array.from(Buffer.from(h, "hex")), 0n)) }));

console.log(JSON.stringify({ algorithm: "kvbroker.key.v1", generator: "scripts/gen-key-vectors.mjs with xxhash-wasm 1.1.0",
  xxh64, cases }, null, 1));
