#include "core/model/attention_kernel.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/model/simd.h"

#ifdef DIFFLAB_HAVE_BLAS
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);
#endif

namespace difflab {
namespace {

// Row-major C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C, through the
// column-major BLAS by computing Cᵀ = op(B)ᵀ op(A)ᵀ.
void gemm_rm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
             int lda, const float* b, int ldb, float beta, float* c, int ldc) {
#ifdef DIFFLAB_HAVE_BLAS
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  sgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
#else
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      c[i * ldc + j] = alpha * acc + (beta == 0.f ? 0.f : beta * c[i * ldc + j]);
    }
#endif
}

// Each row of s (rows x cols) → softmax of it. 8 columns at a time with the vectorised exp
// (core/model/simd.h); libm's scalar expf here took 2 % of a DDIM step.
DIFFLAB_CLONES void softmax_rows(float* s, int rows, int cols) {
  using namespace simd;
  for (int i = 0; i < rows; ++i) {
    float* row = s + static_cast<int64_t>(i) * cols;
    float mx = *std::max_element(row, row + cols);
    const v8 m8 = splat(mx);
    v8 sum8 = {};
    int j = 0;
    for (; j + kWidth <= cols; j += kWidth) {
      const v8 e = fast_exp8(load8(row + j) - m8);
      store8(row + j, e);
      sum8 += e;
    }
    float sum = hsum(sum8);
    for (; j < cols; ++j) sum += (row[j] = fast_exp(row[j] - mx));
    const float inv = 1.f / sum;
    const v8 inv8 = splat(inv);
    j = 0;
    for (; j + kWidth <= cols; j += kWidth) store8(row + j, load8(row + j) * inv8);
    for (; j < cols; ++j) row[j] *= inv;
  }
}

class AttentionFunction : public torch::autograd::Function<AttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in,
                               double scale) {
    auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const int64_t n = q.size(0);
    const int d = static_cast<int>(q.size(1)), l = static_cast<int>(q.size(2));
    auto probs = torch::empty({n, l, l}, q.options());
    auto out = torch::empty_like(q);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    const int64_t dl = static_cast<int64_t>(d) * l, ll = static_cast<int64_t>(l) * l;
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        float* p = pp + b * ll;
        // S = scale · Qᵀ K  (L×L), then softmax along rows.
        gemm_rm(true, false, l, l, d, static_cast<float>(scale), qp + b * dl, l, kp + b * dl, l,
                0.f, p, l);
        softmax_rows(p, l, l);
        // O = V Pᵀ  (d×L).
        gemm_rm(false, true, d, l, l, 1.f, vp + b * dl, l, p, l, 0.f, op + b * dl, l);
      }
    });
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    auto dout = grads[0].contiguous();
    const int64_t n = q.size(0);
    const int d = static_cast<int>(q.size(1)), l = static_cast<int>(q.size(2));
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const int64_t dl = static_cast<int64_t>(d) * l, ll = static_cast<int64_t>(l) * l;
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>(),
                *pp = probs.data_ptr<float>(), *gp = dout.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> ds(ll);
      for (int64_t b = begin; b < end; ++b) {
        const float* p = pp + b * ll;
        const float* g = gp + b * dl;
        // dV = dO P  (d×L).
        gemm_rm(false, false, d, l, l, 1.f, g, l, p, l, 0.f, dvp + b * dl, l);
        // dP = dOᵀ V  (L×L), then dS = P ⊙ (dP − Σ_j dP ⊙ P) row by row.
        gemm_rm(true, false, l, l, d, 1.f, g, l, vp + b * dl, l, 0.f, ds.data(), l);
        for (int i = 0; i < l; ++i) {
          float* row = ds.data() + static_cast<int64_t>(i) * l;
          const float* prow = p + static_cast<int64_t>(i) * l;
          float dot = 0.f;
          for (int j = 0; j < l; ++j) dot += row[j] * prow[j];
          for (int j = 0; j < l; ++j) row[j] = prow[j] * (row[j] - dot);
        }
        // dQ = scale · K dSᵀ, dK = scale · Q dS  (d×L each).
        gemm_rm(false, true, d, l, l, scale, kp + b * dl, l, ds.data(), l, 0.f, dqp + b * dl, l);
        gemm_rm(false, false, d, l, l, scale, qp + b * dl, l, ds.data(), l, 0.f, dkp + b * dl, l);
      }
    });
    return {dq, dk, dv, torch::Tensor()};
  }
};

}  // namespace

at::Tensor multihead_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                         const at::Tensor& v, double scale) {
  auto weight = torch::softmax(torch::bmm(q.transpose(1, 2), k) * scale, -1);
  return torch::bmm(v, weight.transpose(1, 2));
}

bool attention_nhwc_applies(const at::Tensor& qkv) {
  return qkv.dim() == 4 && qkv.device().is_cpu() && qkv.scalar_type() == torch::kFloat32 &&
         qkv.size(1) % 3 == 0 && qkv.is_contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor multihead_attention_nhwc(const at::Tensor& qkv, int64_t heads, double scale) {
  TORCH_CHECK(attention_nhwc_applies(qkv) && (qkv.size(1) / 3) % heads == 0,
              "multihead_attention_nhwc: wants (B, 3C, H, W) float32 channels-last, C a multiple of ",
              heads, ", got ", qkv.sizes());
  const int64_t b = qkv.size(0), c = qkv.size(1) / 3, l = qkv.size(2) * qkv.size(3);
  const int d = static_cast<int>(c / heads), li = static_cast<int>(l);
  const int ld_in = static_cast<int>(3 * c), ld_out = static_cast<int>(c);
  auto out = torch::empty({b, c, qkv.size(2), qkv.size(3)}, qkv.options(),
                          at::MemoryFormat::ChannelsLast);
  const float* in = qkv.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, b * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> s(static_cast<size_t>(l * l));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t n = bh / heads, h = bh % heads;
      const float* q = in + n * l * 3 * c + h * 3 * d;  // (L x d), rows 3C apart
      // S = scale · Q Kᵀ (L×L), softmax along rows, O = S V (L×d) into head h's channels.
      gemm_rm(false, true, li, li, d, static_cast<float>(scale), q, ld_in, q + d, ld_in, 0.f,
              s.data(), li);
      softmax_rows(s.data(), li, li);
      gemm_rm(false, false, li, d, li, 1.f, s.data(), li, q + 2 * d, ld_in, 0.f,
              op + n * l * c + h * d, ld_out);
    }
  });
  return out;
}

at::Tensor multihead_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale) {
  // The kernel reads all three through data_ptr: any of them on another device or of
  // another type (a CUDA key with a CPU query) goes to torch ops, which check devices.
  auto cpu_float = [](const at::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
  };
  if (!cpu_float(q) || !cpu_float(k) || !cpu_float(v))
    return multihead_attention_reference(q, k, v, scale);
  return AttentionFunction::apply(q, k, v, scale);
}

}  // namespace difflab
