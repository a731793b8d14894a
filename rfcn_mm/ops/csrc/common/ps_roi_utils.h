// Index math shared by the CPU and CUDA kernels of the position-sensitive
// RoI ops, so that both devices compute bins and samples identically.
#ifndef RFCN_PS_ROI_UTILS_H
#define RFCN_PS_ROI_UTILS_H

#include <cmath>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define RFCN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RFCN_HOST_DEVICE inline
#endif

namespace rfcn {

// Image of an RoI row (batch, x1, y1, x2, y2), or -1 when the batch index
// names no image of the batch (negative, too large, NaN or infinite) or a
// coordinate is NaN or infinite: the kernels then pool zeros and pass no
// gradient. The tests are made in floating point, so no out-of-range value
// is ever cast (x - x is 0 exactly for finite x, NaN otherwise).
template <typename T>
RFCN_HOST_DEVICE int roi_image(const T* roi, int64_t batch) {
  const T b = roi[0];
  if (!(b >= static_cast<T>(0) && b < static_cast<T>(batch))) return -1;
  for (int k = 1; k < 5; ++k)
    if (!(roi[k] - roi[k] == static_cast<T>(0))) return -1;
  return static_cast<int>(b);
}

// `value` clamped to [0, size] in floating point, then cast; NaN gives 0.
// Casting first would be undefined for coordinates beyond the int range.
template <typename T>
RFCN_HOST_DEVICE int clamp_to_index(T value, int size) {
  if (!(value > static_cast<T>(0))) return 0;
  if (!(value < static_cast<T>(size))) return size;
  return static_cast<int>(value);
}

// Integer pixel range [start, end) of bin `idx` along one axis (Eq. 1 of the
// paper generalised to continuous coordinates): every pixel that overlaps
// the continuous bin [roi_start + idx * bin, roi_start + (idx + 1) * bin),
// clipped to [0, size). The range is empty (end <= start) for bins of zero
// size or wholly outside the map, and for non-finite coordinates.
template <typename T>
RFCN_HOST_DEVICE void ps_pool_bin_range(T roi_start, T bin_size, int idx,
                                        int size, int* start, int* end) {
  *start = clamp_to_index(floor(roi_start + static_cast<T>(idx) * bin_size),
                          size);
  *end = clamp_to_index(ceil(roi_start + static_cast<T>(idx + 1) * bin_size),
                        size);
}

// Geometry of one RoI for PS RoI pooling, from its (batch, x1, y1, x2, y2)
// row converted to the accumulation type: corner and bin size in feature-map
// coordinates. By default the corners are continuous and x2/y2 exclusive
// (mmdet 3), with no minimum RoI size: a zero-size RoI has empty bins. In
// legacy mode they are those of the reference's PSROIPooling (caffe-rfcn,
// MXNet): corners rounded to whole image pixels (half away from zero), the
// end pixel included (+1), and the RoI at least 0.1 map pixels on a side.
template <typename T>
struct PoolRoI {
  T start_h, start_w, bin_h, bin_w;
};

template <typename T>
RFCN_HOST_DEVICE PoolRoI<T> pool_roi_geometry(const T* roi, T spatial_scale,
                                              int pooled_h, int pooled_w,
                                              bool legacy = false) {
  PoolRoI<T> g;
  T roi_w, roi_h;
  if (legacy) {
    const T one = static_cast<T>(1);
    const T min_size = static_cast<T>(0.1);
    g.start_w = round(roi[1]) * spatial_scale;
    g.start_h = round(roi[2]) * spatial_scale;
    roi_w = (round(roi[3]) + one) * spatial_scale - g.start_w;
    roi_h = (round(roi[4]) + one) * spatial_scale - g.start_h;
    roi_w = roi_w > min_size ? roi_w : min_size;
    roi_h = roi_h > min_size ? roi_h : min_size;
  } else {
    g.start_w = roi[1] * spatial_scale;
    g.start_h = roi[2] * spatial_scale;
    roi_w = roi[3] * spatial_scale - g.start_w;
    roi_h = roi[4] * spatial_scale - g.start_h;
    roi_w = roi_w > static_cast<T>(0) ? roi_w : static_cast<T>(0);
    roi_h = roi_h > static_cast<T>(0) ? roi_h : static_cast<T>(0);
  }
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  return g;
}

// Pixel rectangle [hs, he) x [ws, we) of bin (i, j) of an RoI; returns its
// area, <= 0 for an empty bin.
template <typename T>
RFCN_HOST_DEVICE int pool_bin_rect(const PoolRoI<T>& g, int i, int j,
                                   int height, int width, int* hs, int* he,
                                   int* ws, int* we) {
  ps_pool_bin_range(g.start_h, g.bin_h, i, height, hs, he);
  ps_pool_bin_range(g.start_w, g.bin_w, j, width, ws, we);
  return (*he - *hs) * (*we - *ws);
}

// Bilinear interpolation weights at (y, x) with mmcv's border handling:
// samples more than one pixel outside the map contribute nothing, samples
// in the outer half-pixel are clamped to the border. Returns false when the
// sample contributes nothing.
template <typename T>
RFCN_HOST_DEVICE bool bilinear_weights(int height, int width, T y, T x,
                                       T* w1, T* w2, T* w3, T* w4, int* x_low,
                                       int* x_high, int* y_low, int* y_high) {
  // written as "not inside" so that NaN coordinates are rejected too
  if (!(y >= static_cast<T>(-1) && y <= static_cast<T>(height) &&
        x >= static_cast<T>(-1) && x <= static_cast<T>(width))) {
    return false;
  }
  if (y <= static_cast<T>(0)) y = 0;
  if (x <= static_cast<T>(0)) x = 0;
  *y_low = static_cast<int>(y);
  *x_low = static_cast<int>(x);
  if (*y_low >= height - 1) {
    *y_high = *y_low = height - 1;
    y = static_cast<T>(*y_low);
  } else {
    *y_high = *y_low + 1;
  }
  if (*x_low >= width - 1) {
    *x_high = *x_low = width - 1;
    x = static_cast<T>(*x_low);
  } else {
    *x_high = *x_low + 1;
  }
  T ly = y - static_cast<T>(*y_low);
  T lx = x - static_cast<T>(*x_low);
  T hy = static_cast<T>(1) - ly;
  T hx = static_cast<T>(1) - lx;
  *w1 = hy * hx;
  *w2 = hy * lx;
  *w3 = ly * hx;
  *w4 = ly * lx;
  return true;
}

// Largest adaptive sample grid along one axis. Only RoIs over 2^30 bins
// of pixels reach it; their samples are then spaced more than a pixel
// apart.
constexpr int kMaxAdaptiveGrid = 1 << 30;

// Adaptive samples per bin along one axis: ceil(bin size), at least 1,
// computed in floating point (NaN gives 1).
template <typename T>
RFCN_HOST_DEVICE int adaptive_grid(T bin_size) {
  const T grid = ceil(bin_size);
  if (!(grid > static_cast<T>(1))) return 1;
  if (!(grid < static_cast<T>(kMaxAdaptiveGrid))) return kMaxAdaptiveGrid;
  return static_cast<int>(grid);
}

// Geometry of one RoI for PS RoI Align: start and size in feature-map
// coordinates and the number of samples per bin along each axis.
template <typename T>
struct AlignRoI {
  T start_h, start_w, bin_h, bin_w;
  int grid_h, grid_w;
};

template <typename T>
RFCN_HOST_DEVICE AlignRoI<T> align_roi_geometry(const T* roi, T spatial_scale,
                                                int pooled_h, int pooled_w,
                                                int sampling_ratio,
                                                bool aligned) {
  AlignRoI<T> g;
  T offset = aligned ? static_cast<T>(0.5) : static_cast<T>(0);
  g.start_w = roi[1] * spatial_scale - offset;
  g.start_h = roi[2] * spatial_scale - offset;
  T roi_w = roi[3] * spatial_scale - offset - g.start_w;
  T roi_h = roi[4] * spatial_scale - offset - g.start_h;
  if (!aligned) {
    // legacy (non-aligned) mode forces malformed RoIs to be 1x1
    roi_w = roi_w > static_cast<T>(1) ? roi_w : static_cast<T>(1);
    roi_h = roi_h > static_cast<T>(1) ? roi_h : static_cast<T>(1);
  }
  roi_w = roi_w > static_cast<T>(0) ? roi_w : static_cast<T>(0);
  roi_h = roi_h > static_cast<T>(0) ? roi_h : static_cast<T>(0);
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  g.grid_h = sampling_ratio > 0
                 ? sampling_ratio
                 : adaptive_grid(roi_h / static_cast<T>(pooled_h));
  g.grid_w = sampling_ratio > 0
                 ? sampling_ratio
                 : adaptive_grid(roi_w / static_cast<T>(pooled_w));
  return g;
}

// Coordinate of sample `sample` of bin `idx` along one axis: the samples sit
// at the centres of a `grid`-way split of the bin.
template <typename T>
RFCN_HOST_DEVICE T align_sample_pos(T roi_start, T bin_size, int idx,
                                    int sample, int grid) {
  return roi_start + idx * bin_size +
         (sample + static_cast<T>(0.5)) * bin_size / grid;
}

// One bilinear sample: the offsets of its four neighbours in an H x W plane
// and their weights.
template <typename T>
struct BilinearSample {
  int offset[4];
  T weight[4];
};

// Value of `plane` at a sample, accumulated in T.
template <typename T, typename scalar_t>
RFCN_HOST_DEVICE T interpolate(const scalar_t* plane,
                               const BilinearSample<T>& s) {
  return s.weight[0] * static_cast<T>(plane[s.offset[0]]) +
         s.weight[1] * static_cast<T>(plane[s.offset[1]]) +
         s.weight[2] * static_cast<T>(plane[s.offset[2]]) +
         s.weight[3] * static_cast<T>(plane[s.offset[3]]);
}

// Number of samples a bin averages over (all of them, including those
// outside the map), as T: grid_h * grid_w can exceed the int range.
template <typename T>
RFCN_HOST_DEVICE T align_sample_count(const AlignRoI<T>& g) {
  return static_cast<T>(g.grid_h) * static_cast<T>(g.grid_w);
}

// The samples [*lo, *hi) of bin `idx` along one axis whose coordinate lies
// in [-1, size], the only ones bilinear_weights() may accept. The sample
// position is monotone in the sample index (every operation in
// align_sample_pos is), so two binary searches over the very positions the
// loop computes find them exactly; a huge RoI thus costs in-map samples
// only, instead of ceil(roi / k)^2 per bin.
template <typename T>
RFCN_HOST_DEVICE void align_sample_range(T roi_start, T bin_size, int idx,
                                         int grid, int size, int* lo,
                                         int* hi) {
  int a = 0, b = grid;  // first sample with pos >= -1
  while (a < b) {
    const int m = a + (b - a) / 2;
    if (align_sample_pos(roi_start, bin_size, idx, m, grid) >=
        static_cast<T>(-1))
      b = m;
    else
      a = m + 1;
  }
  *lo = a;
  b = grid;  // first sample with pos > size (or NaN)
  while (a < b) {
    const int m = a + (b - a) / 2;
    if (align_sample_pos(roi_start, bin_size, idx, m, grid) <=
        static_cast<T>(size))
      a = m + 1;
    else
      b = m;
  }
  *hi = a;
}

// Calls fn(sample) for every sample of bin (i, j) of an RoI that touches the
// map; the forward gather and the backward scatter of both devices walk a
// bin through this one loop, so they visit the same samples in the same
// order with the same weights.
template <typename T, typename Fn>
RFCN_HOST_DEVICE void for_each_bin_sample(const AlignRoI<T>& g, int i, int j,
                                          int height, int width, Fn&& fn) {
  int iy0, iy1, ix0, ix1;
  align_sample_range(g.start_h, g.bin_h, i, g.grid_h, height, &iy0, &iy1);
  align_sample_range(g.start_w, g.bin_w, j, g.grid_w, width, &ix0, &ix1);
  for (int iy = iy0; iy < iy1; ++iy) {
    const T y = align_sample_pos(g.start_h, g.bin_h, i, iy, g.grid_h);
    for (int ix = ix0; ix < ix1; ++ix) {
      const T x = align_sample_pos(g.start_w, g.bin_w, j, ix, g.grid_w);
      BilinearSample<T> s;
      int xl, xh, yl, yh;
      if (!bilinear_weights<T>(height, width, y, x, &s.weight[0],
                               &s.weight[1], &s.weight[2], &s.weight[3], &xl,
                               &xh, &yl, &yh))
        continue;
      s.offset[0] = yl * width + xl;
      s.offset[1] = yl * width + xh;
      s.offset[2] = yh * width + xl;
      s.offset[3] = yh * width + xh;
      fn(s);
    }
  }
}

}  // namespace rfcn

#endif  // RFCN_PS_ROI_UTILS_H
