// Regenerates tests/data/assign/growthbook_sdk_vectors.jsonl from GrowthBook's own JavaScript
// SDK (npm @growthbook/growthbook), so the golden file is produced by the reference
// implementation, not by abgate. Usage:
//   cd "$(mktemp -d)" && npm install @growthbook/growthbook@1.8.0 &&
//   NODE_PATH=$PWD/node_modules node /path/to/gen_assign_vectors.js > growthbook_sdk_vectors.jsonl
// The SDK's util module is not in its package "exports", hence the direct path.
const path = require("path");
const utilPath = path.join(require.resolve("@growthbook/growthbook").replace(/dist[\/\\].*$/, ""),
                           "dist/cjs/util.js");
const { hash, getBucketRanges, chooseVariation } = require(utilPath);
const version = require(path.join(path.dirname(utilPath), "../../package.json")).version;

// Deterministic PRNG (mulberry32) so the file is reproducible.
let s = 20261126;
const rand = () => {
  s |= 0; s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
const pick = (chars, n) => Array.from({ length: n }, () => chars[Math.floor(rand() * chars.length)]).join("");
const special = ["", "0", "123", "user_42", "ünïcödé", "日本語ユーザー", "🎉party🎉", "a\u0000b",
                 "tab\there", "\"quoted\",comma", "𝔘𝔫𝔦", "x".repeat(300), "Ωmega", "é", "e\u0301"];
const seeds = ["", "hyatt_booking_ab", "seed", "日本", "🎉", "exp-2026-11"];

console.log(JSON.stringify({ _provenance: `@growthbook/growthbook ${version} dist/cjs/util.js via ` +
  `tests/tools/gen_assign_vectors.js; exact equality expected (hash values are k/10000)` }));
const units = [...special];
for (let i = 0; i < 300; ++i) units.push(pick(alnum, 16));
for (let i = 0; i < 40; ++i) units.push(String(Math.floor(rand() * 1e9)));
let row = 0;
for (const unit of units) {
  const seed = seeds[row++ % seeds.length];
  const arms = 2 + Math.floor(rand() * 4);
  let weights = Array.from({ length: arms }, () => 1 + Math.floor(rand() * 99));
  const total = weights.reduce((a, b) => a + b, 0);
  weights = weights.map((w) => w / total);
  const coverage = rand() < 0.3 ? Math.round(rand() * 100) / 100 : 1;
  const n = hash(seed, unit, 2);
  const ranges = getBucketRanges(arms, coverage, weights);
  console.log(JSON.stringify({ seed, unit, hash_v2: n, hash_v1: hash(seed, unit, 1), weights,
                               coverage, ranges, variation: chooseVariation(n, ranges) }));
}
