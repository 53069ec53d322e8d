#include "core/model/norm_act.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/model/embedding.h"
#include "core/model/simd.h"

namespace difflab {
namespace {

// ---- element helpers (inlined into every clone below) ----

using namespace simd;

inline float load(const float* p, int64_t i) { return p[i]; }
inline void store(float* p, int64_t i, float v) { p[i] = v; }

DIFFLAB_SIMD float sigmoid(float y) { return 1.0f / (1.0f + fast_exp(-y)); }
DIFFLAB_SIMD v8 sigmoid8(v8 y) { return 1.0f / (1.0f + fast_exp8(-y)); }
constexpr int kV = kWidth;

constexpr int kLanes = 16;  // independent partial sums, so the reduction vectorises exactly

// ---- span kernels: one channel's H·W values (or a whole group's, for the statistics) ----

template <typename T> DIFFLAB_SIMD float span_sum_body(const T* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += load(x, i + j);
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += load(x, i);
  return s;
}

template <typename T> DIFFLAB_SIMD float span_sqdev_body(const T* x, int64_t n, float mean) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float d = load(x, i + j) - mean;
      acc[j] += d * d;
    }
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) {
    const float d = load(x, i) - mean;
    s += d * d;
  }
  return s;
}

// out = act(a·x + b)
template <typename T>
DIFFLAB_SIMD void span_forward_body(const T* x, T* out, int64_t n, float a, float b, bool silu) {
  if (silu) {
    int64_t i = 0;
    for (; i + kV <= n; i += kV) {
      const v8 y = load8(x + i) * a + b;
      store8(out + i, y * sigmoid8(y));
    }
    for (; i < n; ++i) {
      const float y = load(x, i) * a + b;
      store(out, i, y * sigmoid(y));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) store(out, i, load(x, i) * a + b);
  }
}

// dy = dz · act'(y) into `dy` (float), then the sums Σ dy and Σ dy·x̂ of the span (two
// simple loops: each vectorises, one fused loop did not).
template <typename T>
DIFFLAB_SIMD void span_backward1_body(const T* x, const T* dz, float* dy, int64_t n, float a,
                                      float b, float mean, float rstd, bool silu, float* sum_dy,
                                      float* sum_dy_xhat) {
  if (silu) {
    int64_t i = 0;
    for (; i + kV <= n; i += kV) {
      const v8 y = load8(x + i) * a + b;
      const v8 s = sigmoid8(y);
      store8(dy + i, load8(dz + i) * (s * (1.0f + y * (1.0f - s))));
    }
    for (; i < n; ++i) {
      const float y = load(x, i) * a + b;
      const float s = sigmoid(y);
      dy[i] = load(dz, i) * (s * (1.0f + y * (1.0f - s)));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) dy[i] = load(dz, i);
  }
  float s1[kLanes] = {}, s2[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float g = dy[i + j];
      s1[j] += g;
      s2[j] += g * ((load(x, i + j) - mean) * rstd);
    }
  float t1 = 0.0f, t2 = 0.0f;
  for (int j = 0; j < kLanes; ++j) {
    t1 += s1[j];
    t2 += s2[j];
  }
  for (; i < n; ++i) {
    t1 += dy[i];
    t2 += dy[i] * ((load(x, i) - mean) * rstd);
  }
  *sum_dy = t1;
  *sum_dy_xhat = t2;
}

// dx = rstd · (γ·dy − c1 − x̂·c2)
template <typename T>
DIFFLAB_SIMD void span_backward2_body(const T* x, const float* dy, T* dx, int64_t n, float gamma,
                                      float mean, float rstd, float c1, float c2) {
  for (int64_t i = 0; i < n; ++i) {
    const float xhat = (load(x, i) - mean) * rstd;
    store(dx, i, rstd * (gamma * dy[i] - c1 - xhat * c2));
  }
}

// ---- channels-last (NHWC) forward, for sampling: every pass runs along the channels ----

// acc[c] += Σ over `rows` rows of (x[r][c] − centre[c])² when centre is given, else of
// x[r][c] (rows of `c` channels, contiguous).
DIFFLAB_SIMD void rows_sums_body(const float* x, int64_t rows, int64_t c, const float* centre,
                                 float* acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    if (centre) {
      for (int64_t k = 0; k < c; ++k) {
        const float d = xr[k] - centre[k];
        acc[k] += d * d;
      }
    } else {
      for (int64_t k = 0; k < c; ++k) acc[k] += xr[k];
    }
  }
}

// out[r][c] = act(a[c]·x[r][c] + b[c])
DIFFLAB_SIMD void rows_forward_body(const float* x, float* out, int64_t rows, int64_t c,
                                    const float* a, const float* b, bool silu) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float* orow = out + r * c;
    if (silu) {
      int64_t k = 0;
      for (; k + kV <= c; k += kV) {
        const v8 y = load8(xr + k) * load8(a + k) + load8(b + k);
        store8(orow + k, y * sigmoid8(y));
      }
      for (; k < c; ++k) {
        const float y = xr[k] * a[k] + b[k];
        orow[k] = y * sigmoid(y);
      }
    } else {
      for (int64_t k = 0; k < c; ++k) orow[k] = xr[k] * a[k] + b[k];
    }
  }
}

// The clones (DIFFLAB_CLONES, core/model/simd.h): one per instruction set, picked when the
// program loads.

#define DIFFLAB_SPANS(T, suffix)                                                                  \
  DIFFLAB_CLONES float span_sum_##suffix(const T* x, int64_t n) { return span_sum_body(x, n); }   \
  DIFFLAB_CLONES float span_sqdev_##suffix(const T* x, int64_t n, float mean) {                  \
    return span_sqdev_body(x, n, mean);                                                          \
  }                                                                                              \
  DIFFLAB_CLONES void span_forward_##suffix(const T* x, T* out, int64_t n, float a, float b,     \
                                            bool silu) {                                         \
    span_forward_body(x, out, n, a, b, silu);                                                    \
  }                                                                                              \
  DIFFLAB_CLONES void span_backward1_##suffix(const T* x, const T* dz, float* dy, int64_t n,     \
                                              float a, float b, float mean, float rstd,          \
                                              bool silu, float* s1, float* s2) {                 \
    span_backward1_body(x, dz, dy, n, a, b, mean, rstd, silu, s1, s2);                           \
  }                                                                                              \
  DIFFLAB_CLONES void span_backward2_##suffix(const T* x, const float* dy, T* dx, int64_t n,     \
                                              float gamma, float mean, float rstd, float c1,     \
                                              float c2) {                                        \
    span_backward2_body(x, dy, dx, n, gamma, mean, rstd, c1, c2);                                \
  }

DIFFLAB_SPANS(float, f32)
#undef DIFFLAB_SPANS

DIFFLAB_CLONES void rows_sums(const float* x, int64_t rows, int64_t c, const float* centre, float* acc) {
  rows_sums_body(x, rows, c, centre, acc);
}
DIFFLAB_CLONES void rows_forward(const float* x, float* out, int64_t rows, int64_t c, const float* a,
                                 const float* b, bool silu) {
  rows_forward_body(x, out, rows, c, a, b, silu);
}

// Overloads so the drivers below are written once.
inline float span_sum(const float* x, int64_t n) { return span_sum_f32(x, n); }
inline float span_sqdev(const float* x, int64_t n, float m) { return span_sqdev_f32(x, n, m); }
inline void span_forward(const float* x, float* o, int64_t n, float a, float b, bool s) {
  span_forward_f32(x, o, n, a, b, s);
}
inline void span_backward1(const float* x, const float* dz, float* dy, int64_t n, float a, float b,
                           float m, float r, bool s, float* s1, float* s2) {
  span_backward1_f32(x, dz, dy, n, a, b, m, r, s, s1, s2);
}
inline void span_backward2(const float* x, const float* dy, float* dx, int64_t n, float g, float m,
                           float r, float c1, float c2) {
  span_backward2_f32(x, dy, dx, n, g, m, r, c1, c2);
}

// ---- drivers over (N, G) ----

struct Shape {
  int64_t n, c, hw, groups, cg;  // cg = channels per group
};

Shape shape_of(const at::Tensor& x, int64_t groups) {
  Shape s;
  s.n = x.size(0);
  s.c = x.size(1);
  s.hw = x.numel() / std::max<int64_t>(1, s.n * s.c);
  s.groups = groups;
  s.cg = s.c / groups;
  return s;
}

template <typename T>
void forward_kernel(const T* x, T* out, const float* gamma, const float* beta, float* mean_out,
                    float* rstd_out, const Shape& s, float eps, bool silu) {
  at::parallel_for(0, s.n * s.groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t ng = begin; ng < end; ++ng) {
      const int64_t g = ng % s.groups;
      const int64_t m = s.cg * s.hw;
      const T* xg = x + ng * m;
      const float mean = span_sum(xg, m) / static_cast<float>(m);
      const float var = span_sqdev(xg, m, mean) / static_cast<float>(m);
      const float rstd = 1.0f / std::sqrt(var + eps);
      mean_out[ng] = mean;
      rstd_out[ng] = rstd;
      for (int64_t k = 0; k < s.cg; ++k) {
        const int64_t c = g * s.cg + k;
        const float a = rstd * gamma[c];
        const float b = beta[c] - mean * a;
        span_forward(xg + k * s.hw, out + ng * m + k * s.hw, s.hw, a, b, silu);
      }
    }
  });
}

template <typename T>
void backward_kernel(const T* x, const T* dz, const float* gamma, const float* beta, const float* mean_in,
                     const float* rstd_in, T* dx, float* part_dy, float* part_dy_xhat,
                     const Shape& s, bool silu) {
  at::parallel_for(0, s.n * s.groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> dy(static_cast<size_t>(s.cg * s.hw));
    for (int64_t ng = begin; ng < end; ++ng) {
      const int64_t n = ng / s.groups, g = ng % s.groups;
      const int64_t m = s.cg * s.hw;
      const float mean = mean_in[ng], rstd = rstd_in[ng];
      const T* xg = x + ng * m;
      const T* dzg = dz + ng * m;
      float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
      for (int64_t k = 0; k < s.cg; ++k) {
        const int64_t c = g * s.cg + k;
        const float a = rstd * gamma[c];
        const float b = beta[c] - mean * a;
        float s1 = 0.0f, s2 = 0.0f;
        span_backward1(xg + k * s.hw, dzg + k * s.hw, dy.data() + k * s.hw, s.hw, a, b, mean, rstd,
                       silu, &s1, &s2);
        part_dy[n * s.c + c] = s1;
        part_dy_xhat[n * s.c + c] = s2;
        sum_dxhat += gamma[c] * s1;
        sum_dxhat_xhat += gamma[c] * s2;
      }
      const float c1 = sum_dxhat / static_cast<float>(m);
      const float c2 = sum_dxhat_xhat / static_cast<float>(m);
      for (int64_t k = 0; k < s.cg; ++k) {
        const int64_t c = g * s.cg + k;
        span_backward2(xg + k * s.hw, dy.data() + k * s.hw, dx + ng * m + k * s.hw, s.hw, gamma[c],
                       mean, rstd, c1, c2);
      }
    }
  });
}

// x (N, H·W, C) channels-last → out in the same layout; statistics per (n, group) in two
// passes over the image (the sums, then the squared deviations from the group mean), as
// forward_kernel takes them, so both layouts give the same values to rounding.
void forward_kernel_nhwc(const float* x, float* out, const float* gamma, const float* beta,
                         const Shape& s, float eps, bool silu) {
  at::parallel_for(0, s.n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(s.c), centre(s.c), a(s.c), b(s.c);
    for (int64_t n = begin; n < end; ++n) {
      const float* xn = x + n * s.hw * s.c;
      const float m = static_cast<float>(s.cg * s.hw);
      std::fill(acc.begin(), acc.end(), 0.0f);
      rows_sums(xn, s.hw, s.c, nullptr, acc.data());
      for (int64_t g = 0; g < s.groups; ++g) {
        float sum = 0.0f;
        for (int64_t k = 0; k < s.cg; ++k) sum += acc[g * s.cg + k];
        for (int64_t k = 0; k < s.cg; ++k) centre[g * s.cg + k] = sum / m;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      rows_sums(xn, s.hw, s.c, centre.data(), acc.data());
      for (int64_t g = 0; g < s.groups; ++g) {
        float sq = 0.0f;
        for (int64_t k = 0; k < s.cg; ++k) sq += acc[g * s.cg + k];
        const float rstd = 1.0f / std::sqrt(sq / m + eps);
        for (int64_t k = 0; k < s.cg; ++k) {
          const int64_t c = g * s.cg + k;
          a[c] = rstd * gamma[c];
          b[c] = beta[c] - centre[c] * a[c];
        }
      }
      rows_forward(xn, out + n * s.hw * s.c, s.hw, s.c, a.data(), b.data(), silu);
    }
  });
}

template <typename T> T* ptr(const at::Tensor& t) { return static_cast<T*>(t.data_ptr()); }

class GroupNormActFunction : public torch::autograd::Function<GroupNormActFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t groups, double eps, bool silu) {
    const auto x = x_in.contiguous();
    const auto w = weight.contiguous(), b = bias.contiguous();
    const Shape s = shape_of(x, groups);
    auto out = torch::empty_like(x, at::MemoryFormat::Contiguous);
    auto mean = torch::empty({s.n * s.groups}, x.options().dtype(torch::kFloat32));
    auto rstd = torch::empty_like(mean);
    const float e = static_cast<float>(eps);
    forward_kernel(ptr<float>(x), ptr<float>(out), ptr<float>(w), ptr<float>(b), ptr<float>(mean),
                   ptr<float>(rstd), s, e, silu);
    ctx->save_for_backward({x, w, b, mean, rstd});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["silu"] = silu;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &b = saved[2], &mean = saved[3], &rstd = saved[4];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const bool silu = ctx->saved_data["silu"].toBool();
    const auto dz = grads[0].to(torch::kFloat32).contiguous();
    const Shape s = shape_of(x, groups);
    auto dx = torch::empty_like(x, at::MemoryFormat::Contiguous);
    auto part_dy = torch::empty({s.n, s.c}, x.options().dtype(torch::kFloat32));
    auto part_dy_xhat = torch::empty_like(part_dy);
    backward_kernel(ptr<float>(x), ptr<float>(dz), ptr<float>(w), ptr<float>(b), ptr<float>(mean),
                    ptr<float>(rstd), ptr<float>(dx), ptr<float>(part_dy), ptr<float>(part_dy_xhat), s,
                    silu);
    // dγ_c = Σ_n Σ_hw dy·x̂, dβ_c = Σ_n Σ_hw dy.
    return {dx, part_dy_xhat.sum(0), part_dy.sum(0), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

at::Tensor group_norm_act_reference(const at::Tensor& x, int64_t groups, const at::Tensor& weight,
                                    const at::Tensor& bias, double eps, Activation act,
                                    bool activate_out) {
  at::Tensor y = x.scalar_type() == torch::kFloat32
                     ? torch::group_norm(x, groups, weight, bias, eps)
                     : torch::group_norm(x.to(torch::kFloat32), groups, weight, bias, eps).to(x.scalar_type());
  return activate_out ? activate_temporary(y, act) : y;
}

at::Tensor group_norm_act(const at::Tensor& x, int64_t groups, const at::Tensor& weight,
                          const at::Tensor& bias, double eps, Activation act, bool activate_out) {
  const bool supported =
      x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
      x.dim() >= 2 && groups > 0 && x.size(1) % groups == 0 && weight.defined() && bias.defined() &&
      weight.scalar_type() == torch::kFloat32 && bias.scalar_type() == torch::kFloat32 &&
      (!activate_out || act == Activation::SiLU) && x.numel() > 0;
  if (!supported) return group_norm_act_reference(x, groups, weight, bias, eps, act, activate_out);
  // Sampling keeps a channels-last tensor (the Winograd convolutions hand one over) as it
  // is: no gradient, no reorder.
  const bool grad = torch::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
  if (!grad && x.dim() == 4 && !x.is_contiguous() &&
      x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    const auto w = weight.contiguous(), b = bias.contiguous();
    auto out = torch::empty_like(x, at::MemoryFormat::ChannelsLast);
    forward_kernel_nhwc(ptr<float>(x), ptr<float>(out), ptr<float>(w), ptr<float>(b),
                        shape_of(x, groups), static_cast<float>(eps), activate_out);
    return out;
  }
  return GroupNormActFunction::apply(x, weight, bias, groups, eps, activate_out);
}

}  // namespace difflab
