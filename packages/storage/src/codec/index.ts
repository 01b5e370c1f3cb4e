export { SealedCodec, PooledSealedCodec, DATA_KEY_BYTES, type SealedCodecOptions, type ManifestContext } from "./sealed-codec";
export { COMPRESSIONS, type Compression } from "./compression";
export { MANIFEST_INDEX, OBJECT_MAGIC, HEADER_BYTES, TAG_BYTES } from "./object-header";
// CodecPool has its own entry, "@stratus/storage/codec-pool": its worker file must stay out of the
// dashboard's bundle, which imports this index.
export type { CodecPool, CodecPoolOptions, SealedBody } from "./codec-pool";
