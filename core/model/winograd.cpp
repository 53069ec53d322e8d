#include "core/model/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace difflab::winograd {
namespace {

// Eight floats; loads and stores go through memcpy (unaligned vmovups).
typedef float v8 __attribute__((vector_size(32)));

#define DIFFLAB_INLINE inline __attribute__((always_inline))

DIFFLAB_INLINE v8 load(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
DIFFLAB_INLINE void store(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// u is stored in panels of 16 output channels (8 for a last odd one), each panel (Cin x 16)
// contiguous, so the product's inner loop reads it as one stream.
inline int64_t packed_index(int64_t point, int64_t i, int64_t o, int64_t cin, int64_t cout) {
  const int64_t panel = o / 16, width = std::min<int64_t>(16, cout - panel * 16);
  return point * cin * cout + panel * 16 * cin + i * width + (o - panel * 16);
}

struct Problem {
  const float* x;
  int64_t batch, height, width, cin;
  const float* u;
  const float* bias;
  int64_t bias_stride;  // 0: one bias for every image; cout: a row per image
  const float* residual;  // (B, H, W, Cout) added to the output, or null
  int64_t cout;
  float* y;
  int64_t tiles_h, tiles_w, tiles;
  int64_t block;  // tiles per block, a multiple of 6 (the GEMM kernel's rows)
};

// Bᵀ z for a column z of a 6x6 input tile (8 channels at a time). Rows of Bᵀ: (4 0 −5 0 1 0), (0 −4 −4 1 1 0), (0 4 −4 −1 1 0), (0 −2 −1 2 1 0),
// (0 2 −1 −2 1 0), (0 4 0 −5 0 1).
DIFFLAB_INLINE void bt(const v8 (&d)[6], v8 (&r)[6]) {
  r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  r[1] = d[3] + d[4] - 4.0f * (d[1] + d[2]);
  r[2] = d[4] - d[3] + 4.0f * (d[1] - d[2]);
  r[3] = d[4] - d[2] + 2.0f * (d[3] - d[1]);
  r[4] = d[4] - d[2] + 2.0f * (d[1] - d[3]);
  r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// Loads the N x N tile of 8-channel vectors at (y0, x0) of image n of `img` (B, H, W, C
// channels-last; zero outside the image), applies the 1-D transform F (N values → 6) down
// its columns and then along its rows, and stores the 6x6 result at the 36 points of
// `out` (stride ps). Bᵀ d B of an input tile (N 6, F bt) and A dy Aᵀ of an output-gradient
// tile (N 4, F a_col) are both this.
template <int N, void (*F)(const v8 (&)[N], v8 (&)[6])>
DIFFLAB_INLINE void tile_to_points(const Problem& p, const float* img, int64_t channels,
                                   int64_t n, int64_t y0, int64_t x0, int64_t c, float* out,
                                   int64_t ps) {
  v8 t[6][N];  // t[i][j] = (F applied to column j)[i]
  const v8 zero = {};
  for (int j = 0; j < N; ++j) {
    v8 col[N];
    const int64_t xx = x0 + j;
    const bool x_in = xx >= 0 && xx < p.width;
    for (int i = 0; i < N; ++i) {
      const int64_t yy = y0 + i;
      col[i] = x_in && yy >= 0 && yy < p.height
                   ? load(img + ((n * p.height + yy) * p.width + xx) * channels + c)
                   : zero;
    }
    v8 r[6];
    F(col, r);
    for (int i = 0; i < 6; ++i) t[i][j] = r[i];
  }
  for (int i = 0; i < 6; ++i) {
    v8 r[6];
    F(t[i], r);
    for (int k = 0; k < 6; ++k) store(out + (i * 6 + k) * ps, r[k]);
  }
}

// Aᵀ m A of one tile's 36 points (8 output channels), plus the bias and the residual, into
// y where the 4x4 outputs fall inside the image. Rows of Aᵀ: (1 1 1 1 1 0), (0 1 −1 2 −2 0),
// (0 1 1 4 4 0), (0 1 −1 8 −8 1).
DIFFLAB_INLINE void at(const v8 (&m)[6], v8 (&r)[4]) {
  const v8 s12 = m[1] + m[2], d12 = m[1] - m[2];
  const v8 s34 = m[3] + m[4], d34 = m[3] - m[4];
  r[0] = m[0] + s12 + s34;
  r[1] = d12 + 2.0f * d34;
  r[2] = s12 + 4.0f * s34;
  r[3] = d12 + 8.0f * d34 + m[5];
}

DIFFLAB_INLINE void output_tile(const Problem& p, int64_t n, int64_t y0, int64_t x0, int64_t c,
                                const float* m, int64_t ps) {
  v8 s[4][6];  // s[i][j] = (Aᵀ m)[i][j]
  for (int j = 0; j < 6; ++j) {
    v8 col[6];
    for (int i = 0; i < 6; ++i) col[i] = load(m + (i * 6 + j) * ps);
    v8 r[4];
    at(col, r);
    for (int i = 0; i < 4; ++i) s[i][j] = r[i];
  }
  const v8 b = p.bias ? load(p.bias + n * p.bias_stride + c) : v8{};
  for (int i = 0; i < 4; ++i) {
    const int64_t yy = y0 + i;
    if (yy >= p.height) break;
    v8 r[4];
    at(s[i], r);
    for (int j = 0; j < 4; ++j) {
      const int64_t xx = x0 + j;
      if (xx >= p.width) break;
      const int64_t at_y = ((n * p.height + yy) * p.width + xx) * p.cout + c;
      store(p.y + at_y, p.residual ? r[j] + b + load(p.residual + at_y) : r[j] + b);
    }
  }
}

// c (ROWS x 8·COLS) = a (ROWS x k) @ b (k x 8·COLS, row stride ldb), or += with ACC.
// a(i, kk) = a[i * ai + kk * ak]: rows of V for the forward (ai = Cin, ak = 1), columns of
// V for the weight gradient (ai = 1, ak = Cin).
template <int ROWS, int COLS, bool ACC>
DIFFLAB_INLINE void gemm(const float* a, int64_t ai, int64_t ak, const float* b, int64_t ldb,
                         float* c, int64_t ldc, int64_t k) {
  v8 acc[ROWS][COLS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < COLS; ++j) acc[i][j] = ACC ? load(c + i * ldc + 8 * j) : v8{};
  for (int64_t kk = 0; kk < k; ++kk) {
    v8 bv[COLS];
#pragma GCC unroll 2
    for (int j = 0; j < COLS; ++j) bv[j] = load(b + kk * ldb + 8 * j);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const float s = a[i * ai + kk * ak];
#pragma GCC unroll 2
      for (int j = 0; j < COLS; ++j) acc[i][j] += s * bv[j];
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < COLS; ++j) store(c + i * ldc + 8 * j, acc[i][j]);
}

template <int COLS>
DIFFLAB_INLINE void gemm_6xn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                             int64_t ldc, int64_t k) {
  gemm<6, COLS, false>(a, lda, 1, b, ldb, c, ldc, k);
}

// c (rows x 8·COLS) += aᵀ b for any row count, 6 at a time.
template <int COLS>
DIFFLAB_INLINE void gemm_tn_acc(const float* a, int64_t ak, int64_t rows, const float* b,
                                int64_t ldb, float* c, int64_t ldc, int64_t k) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) gemm<6, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k);
  switch (rows - r) {
    case 5: gemm<5, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k); break;
    case 4: gemm<4, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k); break;
    case 3: gemm<3, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k); break;
    case 2: gemm<2, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k); break;
    case 1: gemm<1, COLS, true>(a + r, 1, ak, b, ldb, c + r * ldc, ldc, k); break;
    default: break;
  }
}

// One block of tiles [t0, t0 + block): input transform, 36 products, output transform.
// Tiles past the end are zero and their outputs dropped.
DIFFLAB_INLINE void block_impl(const Problem& p, int64_t t0, float* v, float* m) {
  const int64_t nb = p.block;
  const int64_t per_image = p.tiles_h * p.tiles_w;
  const int64_t vps = nb * p.cin, mps = nb * p.cout;
  for (int64_t t = 0; t < nb; ++t) {
    const int64_t g = t0 + t;
    if (g >= p.tiles) {
      for (int q = 0; q < kPoints; ++q) std::memset(v + q * vps + t * p.cin, 0, p.cin * sizeof(float));
      continue;
    }
    const int64_t n = g / per_image, r = g % per_image;
    const int64_t y0 = (r / p.tiles_w) * 4 - 1, x0 = (r % p.tiles_w) * 4 - 1;
    for (int64_t c = 0; c < p.cin; c += 8)
      tile_to_points<6, bt>(p, p.x, p.cin, n, y0, x0, c, v + t * p.cin + c, vps);
  }
  for (int q = 0; q < kPoints; ++q) {
    const float* vq = v + q * vps;
    const float* uq = p.u + q * p.cin * p.cout;
    float* mq = m + q * mps;
    int64_t co = 0;
    for (; co + 16 <= p.cout; co += 16)
      for (int64_t r = 0; r < nb; r += 6)
        gemm_6xn<2>(vq + r * p.cin, p.cin, uq + co * p.cin, 16, mq + r * p.cout + co, p.cout, p.cin);
    for (; co < p.cout; co += 8)  // the last panel, 8 wide
      for (int64_t r = 0; r < nb; r += 6)
        gemm_6xn<1>(vq + r * p.cin, p.cin, uq + co * p.cin, 8, mq + r * p.cout + co, p.cout, p.cin);
  }
  for (int64_t t = 0; t < nb && t0 + t < p.tiles; ++t) {
    const int64_t g = t0 + t;
    const int64_t n = g / per_image, r = g % per_image;
    const int64_t y0 = (r / p.tiles_w) * 4, x0 = (r % p.tiles_w) * 4;
    for (int64_t c = 0; c < p.cout; c += 8) output_tile(p, n, y0, x0, c, m + t * p.cout + c, mps);
  }
}

// A z for a column z of a 4x4 output-gradient tile: the transpose of the output transform.
DIFFLAB_INLINE void a_col(const v8 (&z)[4], v8 (&r)[6]) {
  const v8 s02 = z[0] + z[2], s13 = z[1] + z[3];
  r[0] = z[0];
  r[1] = s02 + s13;
  r[2] = s02 - s13;
  r[3] = z[0] + 2.0f * z[1] + 4.0f * z[2] + 8.0f * z[3];
  r[4] = z[0] - 2.0f * z[1] + 4.0f * z[2] - 8.0f * z[3];
  r[5] = z[3];
}

// dU (36, Cin, Cout) += Σ over the block's tiles of V(tile)ᵀ dM(tile), per point.
DIFFLAB_INLINE void grad_block_impl(const Problem& p, const float* dy, int64_t t0, float* v,
                                    float* m, float* du) {
  const int64_t nb = p.block;
  const int64_t per_image = p.tiles_h * p.tiles_w;
  const int64_t vps = nb * p.cin, mps = nb * p.cout;
  const int64_t count = std::min<int64_t>(nb, p.tiles - t0);
  for (int64_t t = 0; t < count; ++t) {
    const int64_t g = t0 + t;
    const int64_t n = g / per_image, r = g % per_image;
    const int64_t ty = (r / p.tiles_w) * 4, tx = (r % p.tiles_w) * 4;
    for (int64_t c = 0; c < p.cin; c += 8)
      tile_to_points<6, bt>(p, p.x, p.cin, n, ty - 1, tx - 1, c, v + t * p.cin + c, vps);
    for (int64_t c = 0; c < p.cout; c += 8)
      tile_to_points<4, a_col>(p, dy, p.cout, n, ty, tx, c, m + t * p.cout + c, mps);
  }
  for (int q = 0; q < kPoints; ++q) {
    const float* vq = v + q * vps;
    const float* mq = m + q * mps;
    float* dq = du + q * p.cin * p.cout;
    int64_t co = 0;
    for (; co + 16 <= p.cout; co += 16)
      gemm_tn_acc<2>(vq, p.cin, p.cin, mq + co, p.cout, dq + co, p.cout, count);
    for (; co < p.cout; co += 8)
      gemm_tn_acc<1>(vq, p.cin, p.cin, mq + co, p.cout, dq + co, p.cout, count);
  }
}

// The same code for three instruction sets, chosen once (GCC's target attribute; an
// always_inline body takes its caller's instruction set). Elsewhere all three are the
// baseline, and instruction_level() picks that one.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DIFFLAB_TARGET(isa) __attribute__((target(isa)))
#else
#define DIFFLAB_TARGET(isa)
#endif
#define DIFFLAB_BLOCKS(suffix, target)                                                    \
  target void block_##suffix(const Problem& p, int64_t t0, float* v, float* m) {         \
    block_impl(p, t0, v, m);                                                             \
  }                                                                                      \
  target void grad_block_##suffix(const Problem& p, const float* dy, int64_t t0, float* v, \
                                  float* m, float* du) {                                 \
    grad_block_impl(p, dy, t0, v, m, du);                                                \
  }
DIFFLAB_BLOCKS(avx512, DIFFLAB_TARGET("avx512f,avx512vl,avx2,fma"))
DIFFLAB_BLOCKS(avx2, DIFFLAB_TARGET("avx2,fma"))
DIFFLAB_BLOCKS(default, )
#undef DIFFLAB_BLOCKS

using BlockFn = void (*)(const Problem&, int64_t, float*, float*);
using GradBlockFn = void (*)(const Problem&, const float*, int64_t, float*, float*, float*);

// 2: AVX-512, 1: AVX2 + FMA, 0: baseline.
int instruction_level() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
  return 0;
}

// The clone for this CPU's instruction level.
template <typename Fn>
Fn pick(Fn avx512, Fn avx2, Fn fallback) {
  const int level = instruction_level();
  return level == 2 ? avx512 : level == 1 ? avx2 : fallback;
}

Problem problem(const float* x, int64_t batch, int64_t height, int64_t width, int64_t cin,
                const float* u, const float* bias, int64_t cout, float* y) {
  Problem p{x, batch, height, width, cin, u, bias, 0, nullptr, cout, y, 0, 0, 0, 0};
  p.tiles_h = (height + 3) / 4;
  p.tiles_w = (width + 3) / 4;
  p.tiles = batch * p.tiles_h * p.tiles_w;
  return p;
}

// Tiles per block: a block's 36 transformed tiles (in and out) within 256 KB, at least 2
// blocks per thread, a multiple of the GEMM kernel's 6 rows. (Measured on an AVX2 EPYC,
// 512 KB L2 a core, 16 images: 256 KB 21.5 ms for the default UNet's seven 3x3 shapes,
// 512 KB 25.1, 768 KB 24.0, 1.5 MB 24.5, 3 MB 26.8.)
int64_t block_size(int64_t tiles, int64_t cin, int64_t cout, int threads, int64_t budget = 256 * 1024) {
  const int64_t by_cache = budget / (kPoints * 4 * (cin + cout));
  const int64_t by_threads = (tiles + 2 * threads - 1) / (2 * threads);
  return std::max<int64_t>(6, std::min<int64_t>({by_cache, by_threads, 96}) / 6 * 6);
}

}  // namespace

bool supports(int64_t in_channels, int64_t out_channels) {
  return in_channels > 0 && out_channels > 0 && in_channels % 8 == 0 && out_channels % 8 == 0;
}

void transform_weights(const float* weight, int64_t out_channels, int64_t in_channels, float* u) {
  // G = (1/4 0 0), (−1/6 −1/6 −1/6), (−1/6 1/6 −1/6), (1/24 1/12 1/6), (1/24 −1/12 1/6), (0 0 1)
  auto g_rows = [](const float (&g)[3], float (&r)[6]) {
    r[0] = g[0] / 4.0f;
    r[1] = -(g[0] + g[1] + g[2]) / 6.0f;
    r[2] = -(g[0] - g[1] + g[2]) / 6.0f;
    r[3] = g[0] / 24.0f + g[1] / 12.0f + g[2] / 6.0f;
    r[4] = g[0] / 24.0f - g[1] / 12.0f + g[2] / 6.0f;
    r[5] = g[2];
  };
  // Training transforms every weight twice a step: input channels across the threads,
  // output channels innermost so each of the 36 planes is written in order.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < in_channels; ++i)
    for (int64_t o = 0; o < out_channels; ++o) {
      const float* w = weight + (o * in_channels + i) * 9;
      float tmp[6][3];  // G g
      for (int col = 0; col < 3; ++col) {
        const float g[3] = {w[col], w[3 + col], w[6 + col]};
        float r[6];
        g_rows(g, r);
        for (int a = 0; a < 6; ++a) tmp[a][col] = r[a];
      }
      for (int a = 0; a < 6; ++a) {
        const float g[3] = {tmp[a][0], tmp[a][1], tmp[a][2]};
        float r[6];
        g_rows(g, r);
        for (int b = 0; b < 6; ++b) u[packed_index(a * 6 + b, i, o, in_channels, out_channels)] = r[b];
      }
    }
}

void conv3x3_nhwc(const float* x, int64_t batch, int64_t height, int64_t width,
                  int64_t in_channels, const float* u, const float* bias, int64_t out_channels,
                  float* y, const Extras& extras) {
  static const BlockFn block_fn = pick<BlockFn>(block_avx512, block_avx2, block_default);
  Problem p = problem(x, batch, height, width, in_channels, u, bias, out_channels, y);
  if (bias && extras.bias_per_image) p.bias_stride = out_channels;
  p.residual = extras.residual;
  if (p.tiles == 0) return;
  const int threads = std::max(1, omp_get_max_threads());
  p.block = block_size(p.tiles, in_channels, out_channels, threads);
  const int64_t blocks = (p.tiles + p.block - 1) / p.block;
  const size_t v_size = kPoints * p.block * in_channels, m_size = kPoints * p.block * out_channels;
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, blocks)))
  {
    thread_local std::vector<float> scratch;
    if (scratch.size() < v_size + m_size) scratch.resize(v_size + m_size);
    float* v = scratch.data();
    float* m = v + v_size;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) block_fn(p, b * p.block, v, m);
  }
}

void weight_grad_nhwc(const float* x, const float* dy, int64_t batch, int64_t height,
                      int64_t width, int64_t in_channels, int64_t out_channels, float* dweight) {
  static const GradBlockFn grad_fn =
      pick<GradBlockFn>(grad_block_avx512, grad_block_avx2, grad_block_default);
  Problem p = problem(x, batch, height, width, in_channels, nullptr, nullptr, out_channels, nullptr);
  const int64_t points = kPoints * in_channels * out_channels;
  std::vector<float> du(static_cast<size_t>(points), 0.0f);
  if (p.tiles > 0) {
    const int threads = std::max(1, omp_get_max_threads());
    // Larger blocks than the forward's: each block adds into the whole dU, so fewer passes
    // over it (AVX2 EPYC, batch 64, the default UNet's seven shapes: 256 KB 129 ms, 1 MB
    // 108, 2 MB 117, 4 MB 121; oneDNN's weight gradients 241 ms).
    p.block = block_size(p.tiles, in_channels, out_channels, threads, 1024 * 1024);
    const int64_t blocks = (p.tiles + p.block - 1) / p.block;
    const int team = static_cast<int>(std::min<int64_t>(threads, blocks));
    // One dU per thread, summed at the end (the sum's order is fixed: thread 0, 1, ...).
    std::vector<std::vector<float>> partial(static_cast<size_t>(team));
    const size_t v_size = kPoints * p.block * in_channels, m_size = kPoints * p.block * out_channels;
#pragma omp parallel num_threads(team)
    {
      const int id = omp_get_thread_num();
      std::vector<float> scratch(v_size + m_size);
      auto& mine = partial[static_cast<size_t>(id)];
      mine.assign(static_cast<size_t>(points), 0.0f);
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b)
        grad_fn(p, dy, b * p.block, scratch.data(), scratch.data() + v_size, mine.data());
    }
    for (const auto& part : partial)
      for (int64_t i = 0; i < points; ++i) du[static_cast<size_t>(i)] += part[static_cast<size_t>(i)];
  }
  // dg = Gᵀ dU G per channel pair.
  const float G[6][3] = {{0.25f, 0, 0},
                         {-1 / 6.0f, -1 / 6.0f, -1 / 6.0f},
                         {-1 / 6.0f, 1 / 6.0f, -1 / 6.0f},
                         {1 / 24.0f, 1 / 12.0f, 1 / 6.0f},
                         {1 / 24.0f, -1 / 12.0f, 1 / 6.0f},
                         {0, 0, 1}};
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < out_channels; ++o)
    for (int64_t i = 0; i < in_channels; ++i) {
      float d[6][6];
      for (int q = 0; q < kPoints; ++q)
        d[q / 6][q % 6] = du[static_cast<size_t>((q * in_channels + i) * out_channels + o)];
      float t[3][6];  // Gᵀ d
      for (int a = 0; a < 3; ++a)
        for (int c = 0; c < 6; ++c) {
          float acc = 0;
          for (int k = 0; k < 6; ++k) acc += G[k][a] * d[k][c];
          t[a][c] = acc;
        }
      float* out = dweight + (o * in_channels + i) * 9;
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          float acc = 0;
          for (int c = 0; c < 6; ++c) acc += t[a][c] * G[c][b];
          out[a * 3 + b] = acc;
        }
    }
}

}  // namespace difflab::winograd
