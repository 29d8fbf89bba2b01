/**
 * The version of this package (kept equal to `package.json` and `deno.json` by a test).
 *
 * @module
 */

/**
 * This package's version.
 *
 * @example
 * ```ts
 * import { HAMOK_VERSION } from "@hamok/core";
 * console.log(HAMOK_VERSION); // "0.1.0"
 * ```
 */
export const HAMOK_VERSION: string = "0.1.0";
