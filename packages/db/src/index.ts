export * from "./client";
export * from "./errors";
export * from "./ids";
export * from "./schema";
export * from "./users";
export * from "./volumes";
export * from "./chunk-map";
export * from "./garbage";
