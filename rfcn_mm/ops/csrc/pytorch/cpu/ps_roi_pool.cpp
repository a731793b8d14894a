// CPU kernels of position-sensitive RoI pooling. Forward parallelises over
// (RoI, output channel); backward over output channels, which own disjoint
// input channels, so no two threads ever write the same gradient element.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include "ps_roi_utils.h"
#include "pytorch_cpp_helper.hpp"

namespace {


template <typename scalar_t>
void ps_roi_pool_forward_kernel(const scalar_t* input, const scalar_t* rois,
                                scalar_t* output, int64_t num_rois,
                                int64_t batch, int64_t channels_out,
                                int64_t height, int64_t width, int pooled_h,
                                int pooled_w, double spatial_scale,
                                bool legacy) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = static_cast<acc_t>(spatial_scale);
  const int64_t bins = pooled_h * pooled_w;
  at::parallel_for(
      0, num_rois * channels_out, 1, [&](int64_t begin, int64_t end) {
        for (int64_t idx = begin; idx < end; ++idx) {
          const int64_t r = idx / channels_out;
          const int64_t c = idx % channels_out;
          scalar_t* out = output + idx * bins;
          acc_t roi[5];
          for (int k = 0; k < 5; ++k)
            roi[k] = static_cast<acc_t>(rois[r * 5 + k]);
          const int64_t b = rfcn::roi_image(roi, batch);
          if (b < 0) {
            for (int64_t k = 0; k < bins; ++k) out[k] = scalar_t(0);
            continue;
          }
          const auto g = rfcn::pool_roi_geometry<acc_t>(
              roi, scale, pooled_h, pooled_w, legacy);
          for (int i = 0; i < pooled_h; ++i) {
            int hs, he;
            rfcn::ps_pool_bin_range(g.start_h, g.bin_h, i, (int)height, &hs,
                                    &he);
            for (int j = 0; j < pooled_w; ++j) {
              int ws, we;
              rfcn::ps_pool_bin_range(g.start_w, g.bin_w, j, (int)width, &ws,
                                      &we);
              const int64_t ch = (c * pooled_h + i) * pooled_w + j;
              const scalar_t* plane =
                  input + (b * channels_out * bins + ch) * height * width;
              acc_t sum = 0;
              for (int h = hs; h < he; ++h)
                for (int w = ws; w < we; ++w)
                  sum += static_cast<acc_t>(plane[h * width + w]);
              const int area = (he - hs) * (we - ws);
              out[i * pooled_w + j] = static_cast<scalar_t>(
                  area > 0 ? sum / static_cast<acc_t>(area) : acc_t(0));
            }
          }
        }
      });
}

template <typename scalar_t>
void ps_roi_pool_backward_kernel(
    const scalar_t* grad_output, const scalar_t* rois,
    at::opmath_type<scalar_t>* grad_input, int64_t num_rois, int64_t batch,
    int64_t channels_out, int64_t height, int64_t width, int pooled_h,
    int pooled_w, double spatial_scale, bool legacy) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = static_cast<acc_t>(spatial_scale);
  const int64_t bins = pooled_h * pooled_w;
  at::parallel_for(0, channels_out, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < num_rois; ++r) {
      acc_t roi[5];
      for (int k = 0; k < 5; ++k)
        roi[k] = static_cast<acc_t>(rois[r * 5 + k]);
      const int64_t b = rfcn::roi_image(roi, batch);
      if (b < 0) continue;
      const auto geo = rfcn::pool_roi_geometry<acc_t>(roi, scale, pooled_h,
                                                      pooled_w, legacy);
      for (int64_t c = begin; c < end; ++c) {
        const scalar_t* g = grad_output + (r * channels_out + c) * bins;
        for (int i = 0; i < pooled_h; ++i) {
          int hs, he;
          rfcn::ps_pool_bin_range(geo.start_h, geo.bin_h, i, (int)height,
                                  &hs, &he);
          for (int j = 0; j < pooled_w; ++j) {
            int ws, we;
            rfcn::ps_pool_bin_range(geo.start_w, geo.bin_w, j, (int)width,
                                    &ws, &we);
            const int area = (he - hs) * (we - ws);
            if (area <= 0) continue;
            const int64_t ch = (c * pooled_h + i) * pooled_w + j;
            acc_t* plane =
                grad_input + (b * channels_out * bins + ch) * height * width;
            const acc_t v = static_cast<acc_t>(g[i * pooled_w + j]) /
                            static_cast<acc_t>(area);
            for (int h = hs; h < he; ++h)
              for (int w = ws; w < we; ++w) plane[h * width + w] += v;
          }
        }
      }
    }
  });
}

}  // namespace

at::Tensor ps_roi_pool_forward_cpu(const at::Tensor& input_,
                                   const at::Tensor& rois_, int64_t pooled_h,
                                   int64_t pooled_w, double spatial_scale,
                                   bool legacy) {
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  auto output = at::empty({rois.size(0), channels_out, pooled_h, pooled_w},
                          input.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
      "ps_roi_pool_forward_cpu", [&] {
        ps_roi_pool_forward_kernel<scalar_t>(
            input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
            output.data_ptr<scalar_t>(), rois.size(0), input.size(0),
            channels_out, input.size(2), input.size(3), (int)pooled_h,
            (int)pooled_w, spatial_scale, legacy);
      });
  return output;
}

at::Tensor ps_roi_pool_backward_cpu(const at::Tensor& grad_output_,
                                    const at::Tensor& rois_, int64_t batch,
                                    int64_t channels, int64_t height,
                                    int64_t width, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale,
                                    bool legacy) {
  const auto grad_output = grad_output_.contiguous();
  const auto rois = rois_.contiguous();
  const auto acc_type = at::toOpMathType(grad_output.scalar_type());
  auto grad_input = at::zeros({batch, channels, height, width},
                              grad_output.options().dtype(acc_type));
  if (grad_output.numel() == 0 || grad_input.numel() == 0)
    return grad_input.to(grad_output.scalar_type());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16,
      grad_output.scalar_type(), "ps_roi_pool_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_pool_backward_kernel<scalar_t>(
            grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
            grad_input.data_ptr<acc_t>(), rois.size(0), batch,
            grad_output.size(1), height, width, (int)pooled_h, (int)pooled_w,
            spatial_scale, legacy);
      });
  return grad_input.to(grad_output.scalar_type());
}
