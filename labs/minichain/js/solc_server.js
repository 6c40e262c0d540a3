// Kept-alive Solidity compiler for labs.minichain.contracts.
//
// Why a server: loading solc-js (a ~10 MB WebAssembly build) costs seconds, a compile in a warm
// process well under one. Python starts this once per process and sends one request per line.
//
// Usage:   node solc_server.js <path to node_modules/solc>
// Startup: writes {"ready": true, "version": "<full compiler version>"} once solc is loaded.
// Request: {"id": <int>, "input": <solc standard-json input object>}   (one line on stdin)
// Reply:   {"id": <int>, "output": <solc standard-json output object>} (one line on stdout)
//          {"id": <int>, "error": "<message>"} when the request itself is malformed.
// The process exits when stdin closes, so it never outlives the Python process that started it.

"use strict";

const readline = require("readline");

const solcPath = process.argv[2];
if (!solcPath) {
  process.stderr.write("usage: node solc_server.js <path to node_modules/solc>\n");
  process.exit(2);
}
const solc = require(solcPath);

// Every source must come in the request: the Python side reads imported files itself, so the
// cache key covers every byte that went into the compile.
function findImport(path) {
  return {
    error: `File not found: ${path} (give it in the sources, or keep it next to the importing file)`,
  };
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

reply({ ready: true, version: solc.version() });

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    reply({ id: null, error: `request is not JSON: ${err.message}` });
    return;
  }
  const id = request.id === undefined ? null : request.id;
  if (typeof request.input !== "object" || request.input === null) {
    reply({ id, error: "request has no 'input' object" });
    return;
  }
  try {
    let output = solc.compile(JSON.stringify(request.input), { import: findImport });
    // The compiler already returns JSON text: splice it in rather than parse and re-serialise,
    // unless it spans lines (one reply must be one line).
    if (output.includes("\n")) output = JSON.stringify(JSON.parse(output));
    process.stdout.write(`{"id":${JSON.stringify(id)},"output":${output}}\n`);
  } catch (err) {
    reply({ id, error: `solc failed: ${err && err.message ? err.message : String(err)}` });
  }
});
lines.on("close", () => process.exit(0));
