/** The package entry ("petasan"): the public API lives in lib/. */
export * from "./lib/index.js";
