// Index math of deformable position-sensitive RoI pooling, shared by the
// CPU and CUDA kernels: RoI geometry in the two coordinate modes, the
// offset cell of a bin, and one bilinear sample with the derivatives of
// its weights (for the offsets' gradient).
#ifndef RFCN_DEFORM_PS_ROI_UTILS_H
#define RFCN_DEFORM_PS_ROI_UTILS_H

#include "ps_roi_utils.h"

namespace rfcn {

// C's round (half away from zero), which the reference kernel applies to
// the RoI corners in legacy mode.
template <typename T>
RFCN_HOST_DEVICE T round_half_away(T v) {
  return v < static_cast<T>(0) ? -floor(-v + static_cast<T>(0.5))
                               : floor(v + static_cast<T>(0.5));
}

template <typename T>
struct DeformRoI {
  T start_h, start_w, roi_h, roi_w, bin_h, bin_w, sub_h, sub_w;
};

// Legacy (Deformable-ConvNets): rounded corners, +1, -0.5 shift, sizes at
// least 0.1. Continuous (mmdet 3 boxes): -0.5 shift (pixel centres at
// integer + 0.5), sizes at least 0.
template <typename T>
RFCN_HOST_DEVICE DeformRoI<T> deform_roi_geometry(const T* roi, T scale,
                                                  int pooled_h, int pooled_w,
                                                  int samples, bool legacy) {
  DeformRoI<T> g;
  const T half = static_cast<T>(0.5);
  T end_w, end_h, min_size;
  if (legacy) {
    g.start_w = round_half_away(roi[1]) * scale - half;
    g.start_h = round_half_away(roi[2]) * scale - half;
    end_w = (round_half_away(roi[3]) + static_cast<T>(1)) * scale - half;
    end_h = (round_half_away(roi[4]) + static_cast<T>(1)) * scale - half;
    min_size = static_cast<T>(0.1);
  } else {
    g.start_w = roi[1] * scale - half;
    g.start_h = roi[2] * scale - half;
    end_w = roi[3] * scale - half;
    end_h = roi[4] * scale - half;
    min_size = static_cast<T>(0);
  }
  g.roi_w = end_w - g.start_w;
  g.roi_h = end_h - g.start_h;
  g.roi_w = g.roi_w > min_size ? g.roi_w : min_size;
  g.roi_h = g.roi_h > min_size ? g.roi_h : min_size;
  g.bin_w = g.roi_w / static_cast<T>(pooled_w);
  g.bin_h = g.roi_h / static_cast<T>(pooled_h);
  g.sub_w = g.bin_w / static_cast<T>(samples);
  g.sub_h = g.bin_h / static_cast<T>(samples);
  return g;
}

// Position of sample `k` (0 .. samples - 1) of a bin along one axis whose
// (offset) start is `start`: sub-bin corners in legacy mode, centres
// otherwise.
template <typename T>
RFCN_HOST_DEVICE T deform_sample_pos(T start, T sub, int k, bool legacy) {
  return legacy ? start + static_cast<T>(k) * sub
                : start + (static_cast<T>(k) + static_cast<T>(0.5)) * sub;
}

// One bilinear sample at (y, x) of an H x W plane: neighbour offsets and
// weights, and the derivatives of the weights with respect to y and x
// (0 where the position was clamped). Returns false for a sample that
// does not count: in legacy mode one outside [-0.5, H - 0.5] x
// [-0.5, W - 0.5] (skipped, the bin averages the others); in continuous
// mode one beyond a pixel outside the map (mmcv's rule: it counts as 0).
// Neighbours are x_low and min(x_low + 1, W - 1), so at integer positions
// the derivative is the right-hand one.
template <typename T>
RFCN_HOST_DEVICE bool deform_bilinear(int height, int width, T y, T x,
                                      bool legacy, BilinearSample<T>* s,
                                      T dwdy[4], T dwdx[4]) {
  const T zero = static_cast<T>(0);
  const T one = static_cast<T>(1);
  T gy = one, gx = one;  // d(clamped)/d(position)
  if (legacy) {
    const T half = static_cast<T>(0.5);
    if (!(y >= -half && y <= static_cast<T>(height) - half && x >= -half &&
          x <= static_cast<T>(width) - half))
      return false;
    if (y < zero) y = zero, gy = zero;
    if (x < zero) x = zero, gx = zero;
    if (y > static_cast<T>(height - 1)) y = static_cast<T>(height - 1), gy = 0;
    if (x > static_cast<T>(width - 1)) x = static_cast<T>(width - 1), gx = 0;
  } else {
    if (!(y >= -one && y <= static_cast<T>(height) && x >= -one &&
          x <= static_cast<T>(width)))
      return false;
    if (y <= zero) y = zero, gy = zero;
    if (x <= zero) x = zero, gx = zero;
  }
  int y_low = static_cast<int>(y);
  int x_low = static_cast<int>(x);
  int y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
    if (!legacy) gy = zero;
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
    if (!legacy) gx = zero;
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - static_cast<T>(y_low), lx = x - static_cast<T>(x_low);
  const T hy = one - ly, hx = one - lx;
  s->offset[0] = y_low * width + x_low;
  s->offset[1] = y_low * width + x_high;
  s->offset[2] = y_high * width + x_low;
  s->offset[3] = y_high * width + x_high;
  s->weight[0] = hy * hx;
  s->weight[1] = hy * lx;
  s->weight[2] = ly * hx;
  s->weight[3] = ly * lx;
  dwdy[0] = -hx * gy;
  dwdy[1] = -lx * gy;
  dwdy[2] = hx * gy;
  dwdy[3] = lx * gy;
  dwdx[0] = -hy * gx;
  dwdx[1] = hy * gx;
  dwdx[2] = -ly * gx;
  dwdx[3] = ly * gx;
  return true;
}

// Where output bin (i, j) of channel c of RoI r starts once moved by its
// offset, and the index of its x offset in `offset` (y is part_h * part_w
// entries on; -1 without offsets). Output channel c belongs to offset
// group c * groups / channels_out; the bin reads offset cell
// (i * part_h / pooled_h, j * part_w / pooled_w).
template <typename T, typename scalar_t>
RFCN_HOST_DEVICE void deform_bin_start(const DeformRoI<T>& g,
                                       const scalar_t* offset, int64_t r,
                                       int64_t c, int i, int j,
                                       int64_t channels_out, int groups,
                                       int pooled_h, int pooled_w,
                                       int part_h, int part_w, T trans_std,
                                       T* hs, T* ws, int64_t* index) {
  T tx = static_cast<T>(0), ty = static_cast<T>(0);
  *index = -1;
  if (offset != nullptr) {
    const int64_t grp = c * groups / channels_out;
    const int pi = i * part_h / pooled_h, pj = j * part_w / pooled_w;
    const int64_t cell = static_cast<int64_t>(part_h) * part_w;
    *index = (r * 2 * groups + 2 * grp) * cell + pi * part_w + pj;
    tx = static_cast<T>(offset[*index]) * trans_std;
    ty = static_cast<T>(offset[*index + cell]) * trans_std;
  }
  *ws = g.start_w + static_cast<T>(j) * g.bin_w + tx * g.roi_w;
  *hs = g.start_h + static_cast<T>(i) * g.bin_h + ty * g.roi_h;
}

// Whether a bin's start, once moved by its offset, is a finite position.
// A NaN or infinite offset (or one that overflows) makes the bin pool NaN,
// so that the loss shows it and the finite-loss check stops training, and
// pass no gradient; it never silently pools 0.
template <typename T>
RFCN_HOST_DEVICE bool finite_start(T hs, T ws) {
  return hs - hs == static_cast<T>(0) && ws - ws == static_cast<T>(0);
}

// Calls f(sample, dwdy, dwdx) for every sample of a bin that reads the
// map, and returns the number the bin averages over: in legacy mode the
// samples that were not skipped, otherwise all of them.
template <typename T, typename F>
RFCN_HOST_DEVICE int deform_for_each_sample(const DeformRoI<T>& g, T hs,
                                            T ws, int samples, bool legacy,
                                            int height, int width, F&& f) {
  int count = 0;
  for (int iy = 0; iy < samples; ++iy) {
    const T y = deform_sample_pos(hs, g.sub_h, iy, legacy);
    for (int ix = 0; ix < samples; ++ix) {
      const T x = deform_sample_pos(ws, g.sub_w, ix, legacy);
      BilinearSample<T> s;
      T dwdy[4], dwdx[4];
      if (deform_bilinear<T>(height, width, y, x, legacy, &s, dwdy, dwdx)) {
        f(s, dwdy, dwdx);
        ++count;
      } else if (!legacy) {
        ++count;  // beyond the map: counts as 0
      }
    }
  }
  return count;
}

// The number deform_for_each_sample returns, without computing the
// samples: all of them in continuous mode, in legacy mode those inside
// [-0.5, H - 0.5] x [-0.5, W - 0.5] (the test of deform_bilinear).
template <typename T>
RFCN_HOST_DEVICE int deform_sample_count(const DeformRoI<T>& g, T hs, T ws,
                                         int samples, bool legacy,
                                         int height, int width) {
  if (!legacy) return samples * samples;
  const T half = static_cast<T>(0.5);
  int rows = 0, cols = 0;
  for (int k = 0; k < samples; ++k) {
    const T y = deform_sample_pos(hs, g.sub_h, k, true);
    const T x = deform_sample_pos(ws, g.sub_w, k, true);
    rows += (y >= -half && y <= static_cast<T>(height) - half) ? 1 : 0;
    cols += (x >= -half && x <= static_cast<T>(width) - half) ? 1 : 0;
  }
  return rows * cols;
}

}  // namespace rfcn

#endif  // RFCN_DEFORM_PS_ROI_UTILS_H
