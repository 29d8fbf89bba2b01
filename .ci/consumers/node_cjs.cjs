// Node CommonJS consumer: `require` of the ES-module package (require(esm): a flag on Node 20.17+,
// built in from Node 22.12). The package has no top-level await, which require(esm) needs.
const lib = require("@hamok/core");

import("./scenario.mjs")
  .then(({ run }) => run(lib, { label: "node-cjs", natsUrl: process.env.HAMOK_NATS_URL }))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
