export { SealedCodec, PooledSealedCodec, DATA_KEY_BYTES, type SealedCodecOptions, type ManifestContext } from "./sealed-codec";
export { COMPRESSIONS, type Compression } from "./compression";
export { MANIFEST_INDEX, OBJECT_MAGIC, HEADER_BYTES, TAG_BYTES } from "./object-header";
export { CodecPool, type CodecPoolOptions, type SealedBody } from "./codec-pool";
