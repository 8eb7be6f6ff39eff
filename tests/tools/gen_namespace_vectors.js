// Regenerates tests/data/assign/growthbook_namespace_vectors.jsonl from GrowthBook's own
// JavaScript SDK (npm @growthbook/growthbook): its namespace rule (inNamespace: hash v1 of the
// unit under "__" + namespace, in [lo, hi)) and whole experiment runs with a namespace, so
// abgate's mutual exclusion is checked against the reference implementation. Usage:
//   cd "$(mktemp -d)" && npm install @growthbook/growthbook@1.8.0 &&
//   NODE_PATH=$PWD/node_modules node /path/to/gen_namespace_vectors.js > growthbook_namespace_vectors.jsonl
const path = require("path");
const sdk = require("@growthbook/growthbook");
const utilPath = path.join(require.resolve("@growthbook/growthbook").replace(/dist[\/\\].*$/, ""),
                           "dist/cjs/util.js");
const { inNamespace } = require(utilPath);
const version = require(path.join(path.dirname(utilPath), "../../package.json")).version;

// Deterministic PRNG (mulberry32) so the file is reproducible.
let s = 20261127;
const rand = () => {
  s |= 0; s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
const pick = (n) => Array.from({ length: n }, () => alnum[Math.floor(rand() * alnum.length)]).join("");
const special = ["0", "123", "user_42", "ünïcödé", "日本語ユーザー", "🎉party🎉", "tab\there", "𝔘𝔫𝔦", "x".repeat(300)];
const namespaces = ["ranking", "checkout-tests", "pricing.v2", "ns"];

console.log(JSON.stringify({ _provenance: `@growthbook/growthbook ${version}: dist/cjs/util.js inNamespace and ` +
  `GrowthBook.run({key, variations, weights, namespace, hashVersion: 2}) via tests/tools/gen_namespace_vectors.js; ` +
  `exact equality expected; variation -1 = not in the experiment` }));
const units = [...special];
for (let i = 0; i < 400; ++i) units.push(pick(6 + Math.floor(rand() * 20)));
for (let i = 0; i < 40; ++i) units.push(String(Math.floor(rand() * 1e9)));
let row = 0;
for (const unit of units) {
  const name = namespaces[row % namespaces.length];
  const key = ["ranking_ab", "exp-2026", "checkout"][row % 3];
  ++row;
  // Ranges on a 0.001 grid, as GrowthBook's hash v1 has 1000 values (edges are the hard cases).
  const lo = Math.floor(rand() * 900) / 1000;
  const hi = Math.min(1, lo + (1 + Math.floor(rand() * 600)) / 1000);
  const ns = [name, lo, hi];
  const arms = 2 + Math.floor(rand() * 2);
  const weights = Array.from({ length: arms }, () => 1 / arms);
  const gb = new sdk.GrowthBook({ attributes: { id: unit } });
  const res = gb.run({ key, variations: Array.from({ length: arms }, (_, i) => i), weights, namespace: ns,
                       hashVersion: 2 });
  console.log(JSON.stringify({ namespace: name, range: [lo, hi], unit, seed: key, weights,
                               in_namespace: inNamespace(unit, ns),
                               variation: res.inExperiment ? res.variationId : -1 }));
}
