export * from "./object-store/object-store";
export * from "./block-device";
export * from "./chunk-index";
export * from "./errors";
