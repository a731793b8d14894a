// CPU kernels of deformable position-sensitive RoI pooling. The forward
// and the input gradient run in parallel over output channels (which own
// disjoint input channels); the offsets' gradient runs in parallel over
// RoIs (which own disjoint offset rows), so no atomics are needed.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <limits>

#include "deform_ps_roi_utils.h"
#include "pytorch_cpp_helper.hpp"

namespace {

struct DeformArgs {
  int64_t num_rois, batch, channels_out, height, width;
  int pooled_h, pooled_w, part_h, part_w, samples, groups;
  double spatial_scale, trans_std;
  bool legacy;
};

template <typename scalar_t>
void forward_kernel(const scalar_t* input, const scalar_t* rois,
                    const scalar_t* offset, scalar_t* output,
                    const DeformArgs a) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t bins = a.pooled_h * a.pooled_w;
  at::parallel_for(
      0, a.num_rois * a.channels_out, 1, [&](int64_t begin, int64_t end) {
        for (int64_t idx = begin; idx < end; ++idx) {
          const int64_t r = idx / a.channels_out, c = idx % a.channels_out;
          scalar_t* out = output + idx * bins;
          acc_t roi[5];
          for (int k = 0; k < 5; ++k)
            roi[k] = static_cast<acc_t>(rois[r * 5 + k]);
          const int64_t b = rfcn::roi_image(roi, a.batch);
          if (b < 0) {
            for (int64_t k = 0; k < bins; ++k) out[k] = scalar_t(0);
            continue;
          }
          const auto g = rfcn::deform_roi_geometry<acc_t>(
              roi, static_cast<acc_t>(a.spatial_scale), a.pooled_h,
              a.pooled_w, a.samples, a.legacy);
          for (int i = 0; i < a.pooled_h; ++i) {
            for (int j = 0; j < a.pooled_w; ++j) {
              acc_t hs, ws;
              int64_t oi;
              rfcn::deform_bin_start(g, offset, r, c, i, j, a.channels_out,
                                     a.groups, a.pooled_h, a.pooled_w,
                                     a.part_h, a.part_w,
                                     static_cast<acc_t>(a.trans_std), &hs,
                                     &ws, &oi);
              if (!rfcn::finite_start(hs, ws)) {
                out[i * a.pooled_w + j] = static_cast<scalar_t>(
                    std::numeric_limits<acc_t>::quiet_NaN());
                continue;
              }
              const scalar_t* plane =
                  input + ((b * a.channels_out + c) * bins + i * a.pooled_w +
                           j) * a.height * a.width;
              acc_t sum = 0;
              const int count = rfcn::deform_for_each_sample(
                  g, hs, ws, a.samples, a.legacy, (int)a.height,
                  (int)a.width,
                  [&](const rfcn::BilinearSample<acc_t>& s, const acc_t*,
                      const acc_t*) {
                    sum += rfcn::interpolate<acc_t>(plane, s);
                  });
              out[i * a.pooled_w + j] = static_cast<scalar_t>(
                  count > 0 ? sum / static_cast<acc_t>(count) : acc_t(0));
            }
          }
        }
      });
}

// Gradients: to the input when grad_input is given (parallel over output
// channels), to the offsets when grad_offset is given (parallel over
// RoIs).
template <typename scalar_t, typename acc_t>
void backward_kernel(const scalar_t* grad_output, const scalar_t* input,
                     const scalar_t* rois, const scalar_t* offset,
                     acc_t* grad_input, acc_t* grad_offset,
                     const DeformArgs a) {
  const int64_t bins = a.pooled_h * a.pooled_w;
  const int64_t cell = a.part_h * a.part_w;
  const bool by_roi = grad_offset != nullptr;
  const int64_t outer = by_roi ? a.num_rois : a.channels_out;
  const acc_t trans_std = static_cast<acc_t>(a.trans_std);
  at::parallel_for(0, outer, 1, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const int64_t r0 = by_roi ? o : 0, r1 = by_roi ? o + 1 : a.num_rois;
      const int64_t c0 = by_roi ? 0 : o, c1 = by_roi ? a.channels_out : o + 1;
      for (int64_t r = r0; r < r1; ++r) {
        acc_t roi[5];
        for (int k = 0; k < 5; ++k)
          roi[k] = static_cast<acc_t>(rois[r * 5 + k]);
        const int64_t b = rfcn::roi_image(roi, a.batch);
        if (b < 0) continue;
        const auto g = rfcn::deform_roi_geometry<acc_t>(
            roi, static_cast<acc_t>(a.spatial_scale), a.pooled_h, a.pooled_w,
            a.samples, a.legacy);
        for (int64_t c = c0; c < c1; ++c) {
          for (int i = 0; i < a.pooled_h; ++i) {
            for (int j = 0; j < a.pooled_w; ++j) {
              acc_t hs, ws;
              int64_t oi;
              rfcn::deform_bin_start(g, offset, r, c, i, j, a.channels_out,
                                     a.groups, a.pooled_h, a.pooled_w,
                                     a.part_h, a.part_w, trans_std, &hs, &ws,
                                     &oi);
              if (!rfcn::finite_start(hs, ws)) continue;
              const int64_t plane_at =
                  ((b * a.channels_out + c) * bins + i * a.pooled_w + j) *
                  a.height * a.width;
              // the count first: legacy mode averages the kept samples
              const int count = rfcn::deform_sample_count(
                  g, hs, ws, a.samples, a.legacy, (int)a.height,
                  (int)a.width);
              if (count == 0) continue;
              const acc_t go =
                  static_cast<acc_t>(
                      grad_output[(r * a.channels_out + c) * bins +
                                  i * a.pooled_w + j]) /
                  static_cast<acc_t>(count);
              acc_t gx = 0, gy = 0;
              rfcn::deform_for_each_sample(
                  g, hs, ws, a.samples, a.legacy, (int)a.height,
                  (int)a.width,
                  [&](const rfcn::BilinearSample<acc_t>& s,
                      const acc_t* dwdy, const acc_t* dwdx) {
                    for (int k = 0; k < 4; ++k) {
                      if (!by_roi)
                        grad_input[plane_at + s.offset[k]] +=
                            s.weight[k] * go;
                      if (by_roi) {
                        const acc_t v =
                            static_cast<acc_t>(input[plane_at + s.offset[k]]);
                        gx += dwdx[k] * v;
                        gy += dwdy[k] * v;
                      }
                    }
                  });
              if (by_roi && oi >= 0) {
                grad_offset[oi] += gx * go * trans_std * g.roi_w;
                grad_offset[oi + cell] += gy * go * trans_std * g.roi_h;
              }
            }
          }
        }
      }
    }
  });
}

DeformArgs make_args(int64_t num_rois,
                     int64_t batch, int64_t channels_out, int64_t height,
                     int64_t width, int64_t pooled_h, int64_t pooled_w,
                     int64_t part_h, int64_t part_w, int64_t samples,
                     int64_t groups, double spatial_scale, double trans_std,
                     bool legacy) {
  DeformArgs a;
  a.num_rois = num_rois;
  a.batch = batch;
  a.channels_out = channels_out;
  a.height = height;
  a.width = width;
  a.pooled_h = (int)pooled_h;
  a.pooled_w = (int)pooled_w;
  a.part_h = (int)part_h;
  a.part_w = (int)part_w;
  a.samples = (int)samples;
  a.groups = (int)groups;
  a.spatial_scale = spatial_scale;
  a.trans_std = trans_std;
  a.legacy = legacy;
  return a;
}

}  // namespace

at::Tensor deform_ps_roi_pool_forward_cpu(
    const at::Tensor& input_, const at::Tensor& rois_,
    const at::Tensor& offset_, int64_t pooled_h, int64_t pooled_w,
    double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy) {
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const bool with_offset = offset_.numel() > 0;
  const auto offset = offset_.contiguous();
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  auto output = at::empty({rois.size(0), channels_out, pooled_h, pooled_w},
                          input.options());
  if (output.numel() == 0) return output;
  const int64_t groups = with_offset ? offset.size(1) / 2 : 1;
  const auto a = make_args(rois.size(0), input.size(0), channels_out,
                           input.size(2), input.size(3), pooled_h, pooled_w,
                           part_h, part_w, sample_per_part, groups,
                           spatial_scale, trans_std, legacy);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
      "deform_ps_roi_pool_forward_cpu", [&] {
        forward_kernel<scalar_t>(
            input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
            with_offset ? offset.data_ptr<scalar_t>() : nullptr,
            output.data_ptr<scalar_t>(), a);
      });
  return output;
}

std::tuple<at::Tensor, at::Tensor> deform_ps_roi_pool_backward_cpu(
    const at::Tensor& grad_output_, const at::Tensor& input_,
    const at::Tensor& rois_, const at::Tensor& offset_, int64_t pooled_h,
    int64_t pooled_w, double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy) {
  const auto grad_output = grad_output_.contiguous();
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const bool with_offset = offset_.numel() > 0;
  const auto offset = offset_.contiguous();
  const auto acc_type = at::toOpMathType(input.scalar_type());
  auto grad_input = at::zeros(input.sizes(), input.options().dtype(acc_type));
  auto grad_offset =
      at::zeros(offset.sizes(), offset.options().dtype(acc_type));
  if (grad_output.numel() > 0 && input.numel() > 0) {
    const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
    const int64_t groups = with_offset ? offset.size(1) / 2 : 1;
    const auto a = make_args(
        rois.size(0), input.size(0), channels_out, input.size(2),
        input.size(3), pooled_h, pooled_w, part_h, part_w, sample_per_part,
        groups, spatial_scale, trans_std, legacy);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
        "deform_ps_roi_pool_backward_cpu", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          const scalar_t* off =
              with_offset ? offset.data_ptr<scalar_t>() : nullptr;
          backward_kernel<scalar_t, acc_t>(
              grad_output.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(),
              rois.data_ptr<scalar_t>(), off, grad_input.data_ptr<acc_t>(),
              nullptr, a);
          if (with_offset)
            backward_kernel<scalar_t, acc_t>(
                grad_output.data_ptr<scalar_t>(),
                input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), off,
                nullptr, grad_offset.data_ptr<acc_t>(), a);
        });
  }
  return std::make_tuple(grad_input.to(input.scalar_type()),
                         grad_offset.to(offset.scalar_type()));
}
