// Child process of cbor_loading.test.ts: loads Hamok's CBOR codec and reports whether cbor-x's
// native helper got installed. Under Deno it runs with no permissions at all.
import { isNativeAccelerationEnabled } from "cbor-x/decode";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";

const back = decodeCbor(encodeCbor({ text: "x".repeat(200), n: 1 })) as { text: string; n: number };
console.log(`roundtrip=${back.text.length === 200 && back.n === 1} native=${isNativeAccelerationEnabled}`);
