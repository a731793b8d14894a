// rfcn_mm's CUDA deformable PS RoI pooling kernels run on the host
// (cuda_on_host.h), launched as rfcn_mm/ops/csrc/pytorch/cuda/
// deform_ps_roi_pool_cuda.cu launches them.
// stdin: cases, each int32 backward, float64, legacy, with_offset, batch,
// channels, height, width, pooled_h, pooled_w, part_h, part_w, samples,
// groups, num_rois; float64 spatial_scale, trans_std; then in the case's
// dtype the input, the (num_rois, 5) RoIs, the offsets (with_offset) and,
// for the backward, the output gradient. stdout: the output, or the input
// gradient followed by the offsets' gradient.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cuda_on_host.h"
#include "deform_ps_roi_pool_cuda_kernel.cuh"  // as host_source makes it
#include "launch_utils.cuh"

struct Case {
  int backward, f64, legacy, with_offset, batch, channels, height, width,
      pooled_h, pooled_w, part_h, part_w, samples, groups, num_rois;
  double spatial_scale, trans_std;
};

template <typename T>
static bool read(T* dst, size_t count) {
  return fread(dst, sizeof(T), count, stdin) == count;
}

template <typename T>
static int run(const Case& c) {
  const int bins = c.pooled_h * c.pooled_w, cout = c.channels / bins;
  const int64_t in_size = int64_t(c.batch) * c.channels * c.height * c.width;
  const int64_t out_size = int64_t(c.num_rois) * cout * bins;
  const int64_t off_size =
      c.with_offset ? int64_t(c.num_rois) * 2 * c.groups * c.part_h * c.part_w
                    : 0;
  std::vector<T> x(in_size), rois(c.num_rois * 5), off(off_size);
  if (!read(x.data(), x.size()) || !read(rois.data(), rois.size()) ||
      !read(off.data(), off.size()))
    return 2;
  const T* off_ptr = c.with_offset ? off.data() : nullptr;
  const T scale = static_cast<T>(c.spatial_scale);
  const T trans_std = static_cast<T>(c.trans_std);
  const HostDim3 grid = {unsigned(rfcn::num_blocks(out_size)), 1, 1};
  if (!c.backward) {
    std::vector<T> y(out_size);
    launch(grid, rfcn::kThreadsPerBlock, [&] {
      deform_ps_roi_pool_forward_cuda_kernel<T, T>(
          out_size, x.data(), rois.data(), off_ptr, y.data(), c.batch, cout,
          c.height, c.width, c.pooled_h, c.pooled_w, c.part_h, c.part_w,
          c.samples, c.groups, scale, trans_std, c.legacy != 0);
    });
    fwrite(y.data(), sizeof(T), y.size(), stdout);
    return 0;
  }
  std::vector<T> grad(out_size), grad_x(in_size, T(0)),
      grad_off(off_size, T(0));
  if (!read(grad.data(), grad.size())) return 2;
  launch(grid, rfcn::kThreadsPerBlock, [&] {
    deform_ps_roi_pool_backward_cuda_kernel<T, T>(
        out_size, grad.data(), x.data(), rois.data(), off_ptr, grad_x.data(),
        c.with_offset ? grad_off.data() : nullptr, c.batch, cout, c.height,
        c.width, c.pooled_h, c.pooled_w, c.part_h, c.part_w, c.samples,
        c.groups, scale, trans_std, c.legacy != 0);
  });
  fwrite(grad_x.data(), sizeof(T), grad_x.size(), stdout);
  fwrite(grad_off.data(), sizeof(T), grad_off.size(), stdout);
  return 0;
}

int main() {
  int32_t h[15];
  double d[2];
  while (read(h, 15) && read(d, 2)) {
    const Case c{h[0], h[1],  h[2],  h[3],  h[4],  h[5], h[6], h[7], h[8],
                 h[9], h[10], h[11], h[12], h[13], h[14], d[0], d[1]};
    const int status = c.f64 ? run<double>(c) : run<float>(c);
    if (status != 0) return status;
  }
  return 0;
}
