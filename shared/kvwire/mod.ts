/**
 * The versioned, self-describing KV bundle format of the hand-off (see container.ts for the
 * byte layout and layers.ts for the three kinds).
 * @module
 */
export { BUNDLE_VERSION, BundleFormatError, BundleKind, bytesOf, readBundle } from "./container.ts";
export {
  allPositions,
  type EncodedHead,
  type EncodedLayer,
  type KvShape,
  type MetricBundle,
  type RawLayer,
  readEncodedLayer,
  readMetric,
  readRawLayer,
  writeEncodedLayer,
  writeMetric,
  writeRawLayer,
} from "./layers.ts";
