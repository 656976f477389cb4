/*
 * The fast format's hot loops (layout: ../layout.ts) in WebAssembly with simd128: the same
 * arithmetic as ../encode.ts and ../kernels.ts, so bodies are byte-identical and decoded values
 * bit-identical. Built by infra/wasm/build.sh; the glue is ./mod.ts, which owns the memory
 * layout and passes every region as a pointer.
 *
 * Values come and go in the frame's layout ([rows, cols], row-major): a vector holds 4 channels
 * of one token, so the delta predictor and each block's widths run down the token axis
 * lane-wise. Codes sit block by block (32 a block), so 4×4 tiles are turned between the two. A
 * chunk whose lanes pass the last channel (cols not a multiple of 4) reads past its row (the
 * glue leaves slack after every region) and stores only its own lanes, or writes the others
 * back unchanged.
 *
 * Arithmetic: y = f32(x * inv); q = roundEven(y) by adding 1.5·2^23 (exact for |y| < 2^22,
 * which the glue checks), held when |y| < 2^23; zigzag codes. Decoding gives f32(q) * step,
 * equal to JS's fround(q * step) while |q| <= 2^24; a row group holding a larger q (only a
 * corrupt body has one) is redone as fround(f64(q) * step).
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef uint8_t u8;
typedef int8_t i8;
typedef int32_t i32;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t i64;

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

#define BLOCK 32
#define SLOT_BITS 5
#define OUTLIER_FLAG 0x40
#define WIDTH_MASK 0x3f
#define MAX_WIDTH 31
#define HEADER_BYTES 44
#define Q_LIMIT 8388608.0f /* 2^23 */

/** Results beyond a function's return value, read by the glue. */
static double res[4];
EXPORT(results) double *results(void) { return res; }

INLINE u32 bit_width(u32 v) { return v ? 32 - (u32)__builtin_clz(v) : 0; }
INLINE u32 min_u32(u32 a, u32 b) { return a < b ? a : b; }
INLINE u64 load64(const u32 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return v;
}
INLINE v128_t zigzag(v128_t e) { return wasm_v128_xor(wasm_i32x4_shl(e, 1), wasm_i32x4_shr(e, 31)); }
/** Lanes [0, n) set. */
INLINE v128_t lanes_below(u32 n) {
  return wasm_i32x4_lt(wasm_i32x4_make(0, 1, 2, 3), wasm_i32x4_splat((i32)n));
}
/** fp32 bits as an int ordered like the values: -NaN < -Inf < finite (-0 < +0) < +Inf < +NaN. */
INLINE i32 sortable(u32 b) { return (i32)(b ^ ((u32)((i32)b >> 31) & 0x7fffffffu)); }
INLINE float from_sortable(i32 s) {
  u32 b = (u32)s ^ ((u32)(s >> 31) & 0x7fffffffu);
  float f;
  __builtin_memcpy(&f, &b, 4);
  return f;
}
INLINE int finite_bits(u32 b) { return (b & 0x7fffffffu) < 0x7f800000u; }

/* ------------------------------------------------------------------------------------------ */
/* range                                                                                      */

/**
 * The smallest and largest finite value of `x` into res[0], res[1] (+Inf and -Inf when there
 * is none), ordered as Math.min/Math.max order them (-0 below +0); res[2] 1 when every value
 * is finite.
 */
EXPORT(finite_range) void finite_range(const u32 *x, u32 n) {
  const v128_t m = wasm_i32x4_splat(0x7fffffff);
  v128_t lo = wasm_i32x4_splat(INT32_MAX), hi = wasm_i32x4_splat(INT32_MIN);
  u32 i = 0;
  for (; i + 16 <= n; i += 16) { /* 4 vectors per trip: the loop's own work is 2 ops */
#define STEP(k)                                                                                 \
  do {                                                                                          \
    v128_t b = wasm_v128_load(x + i + 4 * (k));                                                 \
    v128_t s = wasm_v128_xor(b, wasm_v128_and(wasm_i32x4_shr(b, 31), m));                       \
    lo = wasm_i32x4_min(lo, s);                                                                 \
    hi = wasm_i32x4_max(hi, s);                                                                 \
  } while (0)
    STEP(0);
    STEP(1);
    STEP(2);
    STEP(3);
  }
  for (; i + 4 <= n; i += 4) STEP(0);
#undef STEP
  i32 l[4], h[4];
  wasm_v128_store(l, lo);
  wasm_v128_store(h, hi);
  i32 slo = l[0], shi = h[0];
  for (int k = 1; k < 4; k++) slo = l[k] < slo ? l[k] : slo, shi = h[k] > shi ? h[k] : shi;
  for (; i < n; i++) {
    i32 s = sortable(x[i]);
    slo = s < slo ? s : slo, shi = s > shi ? s : shi;
  }
  float flo = from_sortable(slo), fhi = from_sortable(shi);
  u32 blo, bhi;
  __builtin_memcpy(&blo, &flo, 4);
  __builtin_memcpy(&bhi, &fhi, 4);
  res[2] = n != 0 && finite_bits(blo) && finite_bits(bhi);
  if (!res[2]) {
    /* a NaN or an infinity sits below or above every finite value: look again, skipping them */
    int any = 0;
    slo = INT32_MAX, shi = INT32_MIN;
    for (i = 0; i < n; i++) {
      if (!finite_bits(x[i])) continue;
      i32 s = sortable(x[i]);
      slo = s < slo ? s : slo, shi = s > shi ? s : shi;
      any = 1;
    }
    if (!any) {
      res[0] = __builtin_inf(), res[1] = -__builtin_inf();
      return;
    }
    flo = from_sortable(slo), fhi = from_sortable(shi);
  }
  res[0] = flo, res[1] = fhi;
}

/* ------------------------------------------------------------------------------------------ */
/* encoder                                                                                    */

/**
 * roundEven(y) of a vector with |y| < 2^22 (the glue only calls the encoder on such frames,
 * NaN and infinities apart), plus ROUND_BITS: y + 1.5·2^23 lands in [2^23, 2^24), where fp32
 * steps by 1, so the sum rounds y to an integer, ties to even, and its bits are that integer
 * plus the bits of 1.5·2^23. Lanes with |y| >= 2^22 come out wrong; the quantizer does not
 * hold them.
 */
#define ROUND_BITS 0x4b400000
INLINE v128_t round_biased(v128_t y) { return wasm_f32x4_add(y, wasm_f32x4_splat(12582912.0f)); }
/** Mask of the lanes the quantizer holds: |y| < 2^23, so not NaN nor infinite. */
INLINE v128_t held(v128_t y) { return wasm_f32x4_lt(wasm_f32x4_abs(y), wasm_f32x4_splat(Q_LIMIT)); }

/**
 * Residual bits of the sampled row groups under each predictor (as encode.ts's
 * choosePredictor: a value off the quantizer's range repeats the one before it); returns 1
 * when delta is cheaper.
 */
EXPORT(choose_delta) i32 choose_delta(const float *x, u32 rows, u32 cols, float inv) {
  const u32 groups = (rows + BLOCK - 1) / BLOCK;
  const u32 stride = groups / 8 > 1 ? groups / 8 : 1;
  const v128_t invv = wasm_f32x4_splat(inv);
  i64 none = 0, delta = 0;
  for (u32 g = 0; g < groups; g += stride) {
    const u32 r0 = g * BLOCK, len = min_u32(BLOCK, rows - r0);
    for (u32 c = 0; c < cols; c += 4) {
      const float *xp = x + (u64)r0 * cols + c;
      v128_t prev = wasm_i32x4_splat(0), mn = prev, md = prev;
      for (u32 j = 0; j < len; j++, xp += cols) {
        const v128_t y = wasm_f32x4_mul(wasm_v128_load(xp), invv);
        const v128_t q = wasm_v128_bitselect(wasm_i32x4_sub(round_biased(y), wasm_i32x4_splat(ROUND_BITS)), prev, held(y));
        v128_t e = wasm_i32x4_sub(q, prev);
        prev = q;
        mn = wasm_v128_or(mn, zigzag(q));
        md = wasm_v128_or(md, zigzag(e));
      }
      u32 a[4], d[4];
      wasm_v128_store(a, mn);
      wasm_v128_store(d, md);
      const u32 nl = min_u32(4, cols - c);
      for (u32 l = 0; l < nl; l++) none += len * bit_width(a[l]), delta += len * bit_width(d[l]);
    }
  }
  return delta < none;
}

/** A 4×4 tile of i32 turned: lanes of `r[k]` become the k-th lanes of the results. */
INLINE void transpose4(v128_t *r) {
  const v128_t ab0 = wasm_i32x4_shuffle(r[0], r[1], 0, 4, 1, 5), cd0 = wasm_i32x4_shuffle(r[2], r[3], 0, 4, 1, 5);
  const v128_t ab1 = wasm_i32x4_shuffle(r[0], r[1], 2, 6, 3, 7), cd1 = wasm_i32x4_shuffle(r[2], r[3], 2, 6, 3, 7);
  r[0] = wasm_i64x2_shuffle(ab0, cd0, 0, 2);
  r[1] = wasm_i64x2_shuffle(ab0, cd0, 1, 3);
  r[2] = wasm_i64x2_shuffle(ab1, cd1, 0, 2);
  r[3] = wasm_i64x2_shuffle(ab1, cd1, 1, 3);
}

/** The first slot of a full or partial block (`zb`, 32 codes) holding `code`. */
INLINE u32 slot_of(const i32 *zb, u32 code) {
  const v128_t c = wasm_i32x4_splat((i32)code);
  u32 hits = 0;
#pragma clang loop unroll(full)
  for (u32 g = 0; g < BLOCK / 4; g++) hits |= wasm_i32x4_bitmask(wasm_i32x4_eq(wasm_v128_load(zb + 4 * g), c)) << (4 * g);
  return (u32)__builtin_ctz(hits);
}

/**
 * One chunk of up to `nl` <= 4 channels of a row group of `len` rows: zigzagged residuals into
 * `zb` (block by block, 32 codes each: 4×4 tiles turned on the way), each block's width `w1`,
 * width without its largest code `w2` and that code's slot. The width without the top code is
 * that of the second largest code, when the largest is the only one of the full width
 * (encode.ts's second look). `exc`: whether the frame has values the quantizer cannot hold;
 * returns nonzero when this chunk met one. `partial`: `len` < 32.
 */
INLINE i32 quantize_chunk(const float *x, i32 *zb, u32 cols, u32 len, v128_t inv, const int delta,
                          const int exc, const int tail, const int partial, u32 nl, u8 *w1, u8 *w2,
                          u8 *slot) {
  const v128_t valid = tail ? lanes_below(nl) : wasm_i32x4_splat(-1);
  /* delta keeps q biased by ROUND_BITS, which cancels in q - prev */
  v128_t prev = delta ? wasm_i32x4_splat(ROUND_BITS) : wasm_i32x4_splat(0);
  v128_t bad = wasm_i32x4_splat(0), m1 = bad, m2 = bad;
  for (u32 j = 0; j < len; j += 4) {
    v128_t code[4];
#pragma clang loop unroll(full)
    for (u32 k = 0; k < 4; k++) {
      if (partial && j + k >= len) { /* past the frame's last row: a placeholder, never packed */
        code[k] = wasm_i32x4_splat(0);
        continue;
      }
      const v128_t y = wasm_f32x4_mul(wasm_v128_load(x + (u64)(j + k) * cols), inv);
      v128_t e;
      if (delta) {
        v128_t q = round_biased(y);
        if (exc) {
          const v128_t in = held(y);
          bad = wasm_v128_or(bad, wasm_v128_andnot(valid, in));
          q = wasm_v128_bitselect(q, prev, in); /* an exception repeats the value before it */
        }
        e = wasm_i32x4_sub(q, prev);
        prev = q;
      } else {
        e = wasm_i32x4_sub(round_biased(y), wasm_i32x4_splat(ROUND_BITS));
        if (exc) {
          const v128_t in = held(y);
          bad = wasm_v128_or(bad, wasm_v128_andnot(valid, in));
          e = wasm_v128_and(e, in); /* an exception's placeholder is 0 */
        }
      }
      const v128_t cd = code[k] = zigzag(e);
      /* codes are below 2^31: signed compares */
      m2 = wasm_i32x4_max(m2, wasm_i32x4_min(m1, cd));
      m1 = wasm_i32x4_max(m1, cd);
    }
    transpose4(code);
    wasm_v128_store(zb + j, code[0]);
    if (!tail || nl > 1) wasm_v128_store(zb + BLOCK + j, code[1]);
    if (!tail || nl > 2) wasm_v128_store(zb + 2 * BLOCK + j, code[2]);
    if (!tail) wasm_v128_store(zb + 3 * BLOCK + j, code[3]);
  }
  u32 a[4], b[4];
  wasm_v128_store(a, m1);
  wasm_v128_store(b, m2);
  for (u32 l = 0; l < nl; l++) {
    const u32 w = bit_width(a[l]), w_rest = bit_width(b[l]);
    w1[l] = (u8)w;
    /* the largest code alone sets the top bit: it is unique (slots past `len` hold 0) */
    if (w >= 2 && w_rest < w) w2[l] = (u8)w_rest, slot[l] = (u8)slot_of(zb + l * BLOCK, a[l]);
    else w2[l] = (u8)w, slot[l] = 0;
  }
  return exc && wasm_v128_any_true(bad);
}

/** quantize_chunk for the cold cases (a group's last channels, the frame's last group): one
 * copy with the choices at run time, to keep the module small. */
static __attribute__((noinline)) i32 quantize_chunk_any(const float *x, i32 *zb, u32 cols, u32 len, v128_t inv,
                                                        int delta, int exc, u32 nl, u8 *w1, u8 *w2, u8 *slot) {
  return quantize_chunk(x, zb, cols, len, inv, delta, exc, nl < 4, len < BLOCK, nl, w1, w2, slot);
}

INLINE i32 quantize_group(const float *x, i32 *zb, u32 cols, u32 len, v128_t inv, const int delta,
                          const int exc, u8 *w1, u8 *w2, u8 *slot) {
  i32 bad = 0;
  u32 c = 0;
  if (len == BLOCK) {
    for (; c + 4 <= cols; c += 4) {
      bad |= quantize_chunk(x + c, zb + c * BLOCK, cols, len, inv, delta, exc, 0, 0, 4, w1 + c, w2 + c, slot + c);
    }
  }
  for (; c < cols; c += 4) {
    bad |= quantize_chunk_any(x + c, zb + c * BLOCK, cols, len, inv, delta, exc, min_u32(4, cols - c), w1 + c,
                              w2 + c, slot + c);
  }
  return bad;
}

INLINE u32 quantize_groups(const float *x, i32 *z, u32 rows, u32 cols, float inv, const int delta,
                           const int any_exc, u8 *w1, u8 *w2, u8 *slot, u32 *exc) {
  const v128_t invv = wasm_f32x4_splat(inv);
  u32 ne = 0;
  for (u32 g = 0, r0 = 0; r0 < rows; g++, r0 += BLOCK) {
    const u32 len = min_u32(BLOCK, rows - r0);
    const u64 at = (u64)r0 * cols, b0 = (u64)g * cols;
    const i32 bad = quantize_group(x + at, z + b0 * BLOCK, cols, len, invv, delta, any_exc, w1 + b0, w2 + b0,
                                   slot + b0);
    if (bad) { /* exceptions, in ascending order of index */
      const u64 end = at + (u64)len * cols;
      for (u64 i = at; i < end; i++) {
        float y = x[i] * inv;
        if (!(y < Q_LIMIT && y > -Q_LIMIT)) exc[ne++] = (u32)i;
      }
    }
  }
  return ne;
}

/**
 * Pass 2 of the encoder over a frame of fp32 values `x` ([rows, cols]) whose finite values all
 * give |x · inv| < 2^22: zigzagged residuals into `z` (32 per block, block order), per block
 * `w1`, `w2` and `slot`,
 * exception indices into `exc`. `finite`: no NaN nor infinity in the frame, so no exception.
 * Returns how many exceptions.
 */
EXPORT(quantize_frame)
u32 quantize_frame(const float *x, i32 *z, u32 rows, u32 cols, float inv, i32 delta, i32 finite, u8 *w1,
                   u8 *w2, u8 *slot, u32 *exc) {
  if (finite) {
    return delta ? quantize_groups(x, z, rows, cols, inv, 1, 0, w1, w2, slot, exc)
                 : quantize_groups(x, z, rows, cols, inv, 0, 0, w1, w2, slot, exc);
  }
  return delta ? quantize_groups(x, z, rows, cols, inv, 1, 1, w1, w2, slot, exc)
               : quantize_groups(x, z, rows, cols, inv, 0, 1, w1, w2, slot, exc);
}

/**
 * Which blocks store their largest code apart (two passes, as encode.ts): each block's width
 * byte into `widths`; res[0] outliers, res[1] outlier bits, res[2] payload words.
 */
EXPORT(choose_widths)
void choose_widths(const u8 *w1, const u8 *w2, u8 *widths, u32 rows, u32 cols) {
  const u32 groups = (rows + BLOCK - 1) / BLOCK, blocks = groups * cols;
  const u32 last = rows - (groups - 1) * BLOCK, tail = blocks - cols;
  u32 outlier_bits = 0;
  for (int pass = 0; pass < 2; pass++) {
    u32 wo = 0;
    for (u32 b = 0; b < blocks; b++) {
      const u32 len = b >= tail ? last : BLOCK;
      const i32 price = SLOT_BITS + (pass == 0 ? w1[b] : outlier_bits);
      const i32 apart = (i32)(w1[b] - w2[b]) * (i32)len > price;
      widths[b] = apart ? w2[b] | OUTLIER_FLAG : w1[b];
      if (apart && w1[b] > wo) wo = w1[b];
    }
    outlier_bits = wo;
  }
  u32 outliers = 0;
  u64 words = 0;
  for (u32 b = 0; b < blocks; b++) {
    const u32 len = b >= tail ? last : BLOCK;
    outliers += (widths[b] & OUTLIER_FLAG) != 0;
    words += (len * (widths[b] & WIDTH_MASK) + 31) >> 5;
  }
  res[0] = outliers, res[1] = outlier_bits, res[2] = (double)words;
}

/** Appends fields of up to 31 bits, LSB first. */
typedef struct {
  u64 acc;
  u32 nb;
  u32 *o;
} appender;

INLINE void put(appender *a, u32 v, u32 w) {
  a->acc |= (u64)v << a->nb;
  a->nb += w;
  if (a->nb >= 32) *a->o++ = (u32)a->acc, a->acc >>= 32, a->nb -= 32;
}

/** Packs `len` codes at `w` bits from `o`, branch-free; returns the word after the last. */
INLINE u32 *pack_codes(const i32 *z, u32 len, u32 w, u32 *o) {
  u64 acc = 0;
  u32 nb = 0;
  for (u32 j = 0; j < len; j++, z++) {
    acc |= (u64)(u32)*z << nb;
    nb += w;
    *o = (u32)acc; /* the word being filled: within the block's words */
    const u32 s = nb >> 5;
    o += s;
    acc >>= s << 5;
    nb &= 31;
  }
  if (nb) *o++ = (u32)acc;
  return o;
}

/**
 * Packs 4 full blocks of the same width `w` at once, one a lane: `r` holds their codes turned
 * 4×4 (r[j] has slot j of each block), words go to `o0`..`o3`, `w` each. Every lane shifts by
 * the same constants, and each finished word goes out with a lane store. Unrolled for each
 * width.
 */
INLINE void pack_blocks4(const v128_t *r, u32 *o0, u32 *o1, u32 *o2, u32 *o3, const u32 w) {
  v128_t acc = wasm_i32x4_splat(0);
#pragma clang loop unroll(full)
  for (u32 j = 0; j < BLOCK; j++) {
    const u32 bp = j * w, sh = bp & 31;
    const v128_t v = wasm_v128_load(r + j);
    acc = wasm_v128_or(acc, wasm_i32x4_shl(v, sh));
    if (sh + w >= 32) { /* sh > 0 here: w < 32 */
      wasm_v128_store32_lane(o0 + (bp >> 5), acc, 0);
      wasm_v128_store32_lane(o1 + (bp >> 5), acc, 1);
      wasm_v128_store32_lane(o2 + (bp >> 5), acc, 2);
      wasm_v128_store32_lane(o3 + (bp >> 5), acc, 3);
      acc = wasm_u32x4_shr(v, 32 - sh);
    }
  }
}

/** The codes of 4 blocks turned 4×4 into `r`: r[j] holds slot j of each. */
static __attribute__((noinline)) void gather4(const i32 *z0, const i32 *z1, const i32 *z2, const i32 *z3, v128_t *r) {
  for (u32 j = 0; j < BLOCK; j += 4) {
    v128_t t[4] = {wasm_v128_load(z0 + j), wasm_v128_load(z1 + j), wasm_v128_load(z2 + j), wasm_v128_load(z3 + j)};
    transpose4(t);
    r[j] = t[0], r[j + 1] = t[1], r[j + 2] = t[2], r[j + 3] = t[3];
  }
}

/** The widths with an unrolled packer (KV at practical bounds: well within); wider blocks take
 * pack_codes. */
#define WIDTHS_UNROLLED(X)                                                                           \
  X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
#define MAX_UNROLLED 16

/** Packs every full block of width `w` listed in `zat`/`wat` (codes from `z + zat[k]`, words to
 * `o + wat[k]`), 4 at a time; blocks go by width so that each width's unrolled loop runs back
 * to back. */
#define PACK_CASE(W)                                                                                 \
  case W:                                                                                            \
    for (; k + 4 <= count; k += 4) {                                                                 \
      gather4(z + zat[k], z + zat[k + 1], z + zat[k + 2], z + zat[k + 3], r);                        \
      pack_blocks4(r, o + wat[k], o + wat[k + 1], o + wat[k + 2], o + wat[k + 3], W);                \
    }                                                                                                \
    break;
static __attribute__((noinline)) void pack_width(const i32 *z, u32 *o, const u32 *zat, const u32 *wat, u32 count,
                                                 u32 w) {
  v128_t r[BLOCK];
  u32 k = 0;
  switch (w) { WIDTHS_UNROLLED(PACK_CASE) }
  for (; k < count; k++) pack_codes(z + zat[k], BLOCK, w, o + wat[k]);
}

/**
 * Pass 3 of the encoder: the widths, the outliers apart (zeroing their codes in `z`), every
 * block's codes and the exceptions (index, then fp32 bits) into `body`, at the glue's offsets.
 * The header is the glue's. `order` (2 · blocks words) sorts the full blocks by width.
 */
EXPORT(pack_frame)
void pack_frame(const u32 *xbits, i32 *z, u32 rows, u32 cols, const u8 *widths, const u8 *slot,
                u32 outlier_bits, const u32 *exc, u32 ne, u8 *body, u32 outliers_at, u32 payload_at,
                u32 exc_at, u32 *order) {
  const u32 groups = (rows + BLOCK - 1) / BLOCK, blocks = groups * cols;
  const u32 full = rows / BLOCK * cols; /* blocks of 32 codes; the rest are the last group's */
  u8 *wb = body + HEADER_BYTES;
  for (u32 b = 0; b < blocks; b++) wb[b] = widths[b];
  for (u32 b = blocks; b & 3; b++) wb[b] = 0;
  /* outliers apart, in block order, and how many full blocks of each width */
  u32 count[32] = {0};
  appender apart = {0, 0, (u32 *)(body + outliers_at)};
  for (u32 b = 0; b < blocks; b++) {
    const u32 wd = widths[b];
    if (wd & OUTLIER_FLAG) {
      i32 *top = z + (u64)b * BLOCK + slot[b];
      put(&apart, slot[b], SLOT_BITS);
      if (outlier_bits) put(&apart, (u32)*top, outlier_bits);
      *top = 0;
    }
    if (b < full && (wd & WIDTH_MASK) <= MAX_UNROLLED) count[wd & WIDTH_MASK]++;
  }
  if (apart.nb) *apart.o = (u32)apart.acc;
  /* full blocks grouped by width, for the unrolled packers; the others packed in place */
  u32 start[32], at = 0;
  for (u32 w = 0; w < 32; w++) start[w] = at, at += count[w];
  u32 *zat = order, *wat = order + blocks, *o = (u32 *)(body + payload_at), words = 0;
  const u32 last = rows - (groups - 1) * BLOCK;
  for (u32 b = 0; b < blocks; b++) {
    const u32 w = widths[b] & WIDTH_MASK;
    if (w == 0) continue;
    if (b < full && w <= MAX_UNROLLED) {
      const u32 k = start[w]++;
      zat[k] = b * BLOCK, wat[k] = words;
      words += w;
    } else {
      words = (u32)(pack_codes(z + (u64)b * BLOCK, b < full ? BLOCK : last, w, o + words) - o);
    }
  }
  for (u32 w = 1, k = count[0]; w <= MAX_UNROLLED; k += count[w], w++) {
    if (count[w]) pack_width(z, o, zat + k, wat + k, count[w], w);
  }
  u32 *ei = (u32 *)(body + exc_at), *ev = ei + ne;
  for (u32 k = 0; k < ne; k++) ei[k] = exc[k], ev[k] = xbits[exc[k]];
}

/* ------------------------------------------------------------------------------------------ */
/* decoder                                                                                    */

/**
 * Checks every width byte; returns the first bad block or -1, and res[0] the blocks flagging
 * an outlier, res[1] the payload words the widths need. 16 bytes a vector: a byte is bad when
 * bit 7 or bit 5 (a width past 31) is set, and a full block's words are its width.
 */
EXPORT(check_widths) i32 check_widths(const u8 *widths, u32 rows, u32 cols) {
  const u32 groups = (rows + BLOCK - 1) / BLOCK, blocks = groups * cols;
  const u32 last = rows - (groups - 1) * BLOCK, tail = blocks - cols;
  v128_t bad = wasm_i32x4_splat(0), flagged = bad, words = bad;
  u32 b = 0;
  for (; b + 16 <= blocks; b += 16) {
    const v128_t v = wasm_v128_load(widths + b);
    bad = wasm_v128_or(bad, wasm_v128_and(v, wasm_i8x16_splat((i8)0xa0)));
    const v128_t f = wasm_u8x16_shr(wasm_v128_and(v, wasm_i8x16_splat(OUTLIER_FLAG)), 6);
    const v128_t w = wasm_v128_and(v, wasm_i8x16_splat(WIDTH_MASK));
    flagged = wasm_i32x4_add(flagged, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(f)));
    words = wasm_i32x4_add(words, wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(w)));
  }
  u32 fl[4], wd[4];
  wasm_v128_store(fl, flagged);
  wasm_v128_store(wd, words);
  u64 nflag = (u64)fl[0] + fl[1] + fl[2] + fl[3], nwords = (u64)wd[0] + wd[1] + wd[2] + wd[3];
  if (wasm_v128_any_true(bad)) { /* the first bad byte */
    for (u32 k = 0;; k++) if (widths[k] & 0xa0) return (i32)k;
  }
  for (; b < blocks; b++) {
    if (widths[b] & 0xa0) return (i32)b;
    nflag += (widths[b] & OUTLIER_FLAG) != 0, nwords += widths[b] & WIDTH_MASK;
  }
  /* the last row group's blocks hold `last` codes, not 32 */
  for (u32 k = tail; k < blocks; k++) {
    const u32 w = widths[k] & WIDTH_MASK;
    nwords = nwords - w + ((last * w + 31) >> 5);
  }
  res[0] = (double)nflag, res[1] = (double)nwords;
  return -1;
}

/**
 * Reads the outliers apart (`count` words from `ow`): `slot` (-1 for none) and `big` per
 * block. Returns 0, 1 when the section is overrun, 2 for a slot past its block (res[0] the
 * slot, res[1] the block's length).
 */
EXPORT(read_outliers)
i32 read_outliers(const u32 *ow, u32 count, const u8 *widths, u32 rows, u32 cols, u32 bits, i8 *slot,
                  i32 *big) {
  const u32 groups = (rows + BLOCK - 1) / BLOCK, blocks = groups * cols;
  const u32 last = rows - (groups - 1) * BLOCK, tail = blocks - cols;
  const u64 limit = (u64)count * 32;
  u64 bit = 0;
  for (u32 b = 0; b < blocks; b++) slot[b] = -1;
  for (u32 b = 0; b < blocks; b++) {
    if (!(widths[b] & OUTLIER_FLAG)) continue;
    if (bit + SLOT_BITS > limit) return 1;
    const u32 s = (u32)(load64(ow + (bit >> 5)) >> (bit & 31)) & ((1u << SLOT_BITS) - 1);
    bit += SLOT_BITS;
    u32 v = 0;
    if (bits) {
      if (bit + bits > limit) return 1;
      v = (u32)(load64(ow + (bit >> 5)) >> (bit & 31)) & ((1u << bits) - 1);
      bit += bits;
    }
    const u32 len = b >= tail ? last : BLOCK;
    if (s >= len) {
      res[0] = s, res[1] = len;
      return 2;
    }
    slot[b] = (i8)s, big[b] = (i32)v;
  }
  return 0;
}

/** Unpacks `len` codes of `w` bits from `wp` into `t`. */
INLINE void unpack_column(const u32 *wp, u32 w, u32 len, i32 *t) {
  if (w == 0) {
    for (u32 j = 0; j < len; j++) t[j] = 0;
    return;
  }
  const u32 mask = (u32)((1ull << w) - 1);
  for (u32 j = 0, bp = 0; j < len; j++, bp += w) t[j] = (i32)((u32)(load64(wp + (bp >> 5)) >> (bp & 31)) & mask);
}

/**
 * Unpacking a full block of `w` <= 25 bits, 4 codes a vector: the 4 bytes holding each code go
 * to its lane (a byte shuffle of a 16-byte load; reads up to 16 bytes past the block), then a
 * multiply by 2^(7 - r) and a shift by 7 bring its bit offset `r` within its first byte to 0
 * (`r + w` <= 32 bits must fit the lane). The shuffles and multipliers depend on the width
 * only: tables, so no branch on the width (a switch mispredicted on most blocks).
 */
#define SIMD_WIDTH 25
static v128_t unpack_idx[SIMD_WIDTH + 1][BLOCK / 4], unpack_mul[SIMD_WIDTH + 1][BLOCK / 4];
static int tables_ready;

static void init_tables(void) {
  for (u32 w = 0; w <= SIMD_WIDTH; w++) {
    for (u32 g = 0; g < BLOCK / 4; g++) {
      const u32 o = 4 * g * w - 8 * ((4 * g * w) >> 3);
      u8 idx[16];
      i32 mul[4];
      for (u32 l = 0; l < 4; l++) {
        const u32 bit = o + l * w;
        for (u32 k = 0; k < 4; k++) idx[4 * l + k] = (u8)((bit >> 3) + k);
        mul[l] = 1 << (7 - (bit & 7));
      }
      unpack_idx[w][g] = wasm_v128_load(idx);
      unpack_mul[w][g] = wasm_v128_load(mul);
    }
  }
  tables_ready = 1;
}

INLINE void unpack_block_simd(const u32 *wp, i32 *t, u32 w) {
  const u8 *bytes = (const u8 *)wp;
  const v128_t mask = wasm_i32x4_splat((i32)((1u << w) - 1));
  const v128_t *idx = unpack_idx[w], *mul = unpack_mul[w];
#pragma clang loop unroll(full)
  for (u32 g = 0; g < BLOCK / 4; g++) {
    v128_t v = wasm_i8x16_swizzle(wasm_v128_load(bytes + ((g * w) >> 1)), idx[g]);
    v = wasm_u32x4_shr(wasm_i32x4_mul(v, mul[g]), 7);
    wasm_v128_store(t + 4 * g, wasm_v128_and(v, mask));
  }
}

/** Unpacks a full block (32 codes of `w` bits) into `t`, one code at a time (the widths over
 * 25, rare). */
INLINE void unpack_block_scalar(const u32 *wp, i32 *t, u32 w) {
  const u32 mask = (1u << w) - 1;
  for (u32 j = 0, bp = 0; j < BLOCK; j++, bp += w) t[j] = (i32)((u32)(load64(wp + (bp >> 5)) >> (bp & 31)) & mask);
}

/** Unpacks a full block of `w` bits from `wp` into `t` (32 codes). */
INLINE void unpack_full(const u32 *wp, i32 *t, u32 w) {
  if (w <= SIMD_WIDTH) unpack_block_simd(wp, t, w);
  else unpack_block_scalar(wp, t, w);
}

/** Values from quantized integers, 4 lanes: f32(q) · step, exact while |q| <= 2^24. */
INLINE v128_t dequantize(v128_t q, v128_t step) { return wasm_f32x4_mul(wasm_f32x4_convert_i32x4(q), step); }

INLINE v128_t unzigzag(v128_t code) {
  return wasm_v128_xor(wasm_u32x4_shr(code, 1), wasm_i32x4_neg(wasm_v128_and(code, wasm_i32x4_splat(1))));
}

/**
 * Codes of 4 blocks (`tb`: 32 each, one after the other) to the values of their channels:
 * 4×4 tiles turned to rows, then the predictor down the rows. `check`: returns the OR of |q|
 * (bits >= 24 flag a value f32(q) does not hold exactly), else 0.
 */
INLINE v128_t rebuild_chunk(const i32 *tb, float *out, u32 cols, u32 len, v128_t step, const int delta,
                            const int check, const int tail, u32 nl) {
  const v128_t valid = tail ? lanes_below(nl) : wasm_i32x4_splat(-1);
  v128_t prev = wasm_i32x4_splat(0), big = prev;
  for (u32 j = 0; j < len; j += 4) {
    v128_t row[4] = {wasm_v128_load(tb + j), wasm_v128_load(tb + BLOCK + j), wasm_v128_load(tb + 2 * BLOCK + j),
                     wasm_v128_load(tb + 3 * BLOCK + j)};
    transpose4(row);
    for (u32 k = 0; k < 4; k++) {
      if (j + k >= len) break;
      v128_t q = unzigzag(row[k]);
      if (delta) q = wasm_i32x4_add(prev, q), prev = q;
      if (check) big = wasm_v128_or(big, wasm_i32x4_abs(q));
      v128_t v = dequantize(q, step);
      float *op = out + (u64)(j + k) * cols;
      if (tail) v = wasm_v128_bitselect(v, wasm_v128_load(op), valid);
      wasm_v128_store(op, v);
    }
  }
  return tail ? wasm_v128_and(big, valid) : big;
}

/** rebuild_chunk for a group's last channels: one copy with the choices at run time. */
static __attribute__((noinline)) v128_t rebuild_chunk_any(const i32 *tb, float *out, u32 cols, u32 len, v128_t step,
                                                          int delta, u32 nl) {
  return rebuild_chunk(tb, out, cols, len, step, delta, 1, 1, nl);
}

INLINE void decode_groups(const u32 *words, const u8 *widths, const i8 *slot, const i32 *big, u32 rows,
                          u32 cols, float step, const int delta, const int check, i32 *t, float *out) {
  const v128_t stepv = wasm_f32x4_splat(step);
  for (u32 g = 0, r0 = 0; r0 < rows; g++, r0 += BLOCK) {
    const u32 len = min_u32(BLOCK, rows - r0);
    const u64 b0 = (u64)g * cols;
    for (u32 c = 0; c < cols; c++) {
      const u32 w = widths[b0 + c] & WIDTH_MASK;
      i32 *tb = t + c * BLOCK;
      if (len == BLOCK) unpack_full(words, tb, w);
      else unpack_column(words, w, len, tb);
      if (slot[b0 + c] >= 0) tb[slot[b0 + c]] = big[b0 + c];
      words += (len * w + 31) >> 5;
    }
    float *og = out + (u64)r0 * cols;
    v128_t wide = wasm_i32x4_splat(0);
    u32 c = 0;
    for (; c + 4 <= cols; c += 4) {
      wide = wasm_v128_or(wide, rebuild_chunk(t + c * BLOCK, og + c, cols, len, stepv, delta, check, 0, 4));
    }
    if (c < cols) wide = wasm_v128_or(wide, rebuild_chunk_any(t + c * BLOCK, og + c, cols, len, stepv, delta, cols - c));
    if (check && wasm_v128_any_true(wasm_v128_and(wide, wasm_i32x4_splat((i32)0xff000000)))) {
      /* |q| past 2^24: f32(q) rounds, so take JS's route, fround(f64(q) * step) */
      const double sd = step;
      for (c = 0; c < cols; c++) {
        i32 prev = 0;
        for (u32 j = 0; j < len; j++) {
          const u32 code = (u32)t[c * BLOCK + j];
          const i32 e = (i32)((code >> 1) ^ (0u - (code & 1)));
          const i32 q = delta ? (i32)((u32)prev + (u32)e) : e;
          prev = q;
          og[(u64)j * cols + c] = (float)((double)q * sd);
        }
      }
    }
  }
}

/**
 * Decodes the payload (from `words`) of a frame of `rows × cols` fp32 values into `out`; `t`
 * holds one row group's codes, block by block (32 · (cols + 3) words). `outlier_bits` bounds
 * the outliers' codes: with the widths it bounds |q|, and when that is at most 2^24 (every
 * stream at a practical bound) no value needs the exact route.
 */
EXPORT(decode_frame)
void decode_frame(const u32 *words, const u8 *widths, const i8 *slot, const i32 *big, u32 rows, u32 cols,
                  i32 delta, float step, u32 outlier_bits, i32 *t, float *out) {
  const u32 blocks = (rows + BLOCK - 1) / BLOCK * cols;
  if (!tables_ready) init_tables();
  v128_t wv = wasm_i8x16_splat(0);
  u32 b = 0;
  for (; b + 16 <= blocks; b += 16) wv = wasm_u8x16_max(wv, wasm_v128_and(wasm_v128_load(widths + b), wasm_i8x16_splat(WIDTH_MASK)));
  u8 wb[16];
  wasm_v128_store(wb, wv);
  u32 w = outlier_bits;
  for (u32 k = 0; k < 16; k++) w = wb[k] > w ? wb[k] : w;
  for (; b < blocks; b++) w = (widths[b] & WIDTH_MASK) > w ? widths[b] & WIDTH_MASK : w;
  /* |e| <= 2^(w-1); a delta block sums 32 of them */
  const int check = delta ? w > 20 : w > 25;
  if (delta) {
    if (check) decode_groups(words, widths, slot, big, rows, cols, step, 1, 1, t, out);
    else decode_groups(words, widths, slot, big, rows, cols, step, 1, 0, t, out);
  } else {
    if (check) decode_groups(words, widths, slot, big, rows, cols, step, 0, 1, t, out);
    else decode_groups(words, widths, slot, big, rows, cols, step, 0, 0, t, out);
  }
}
