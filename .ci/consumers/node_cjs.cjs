// Node CommonJS consumer: `require` of the ES-module package (require(esm): built in from Node 20.19
// and 22.12). The package has no top-level await, which require(esm) needs.
const lib = require("@hamok/core");

import("./scenario.mjs")
  .then(({ run }) => run(lib, { label: "node-cjs", natsUrl: process.env.HAMOK_NATS_URL }))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
