// What every rfcn_mm operator file needs from torch: at::Tensor (with its
// methods) and the TORCH_CHECK family. Nothing heavier: no
// torch/extension.h (the whole C++ frontend and pybind11) and no ATen.h
// (every operator's declaration); each file adds the few ATen pieces it
// uses (<torch/library.h> for registration, <ATen/ops/NAME.h> for the
// functions it calls), which keeps every translation unit's compile short.
#ifndef RFCN_PYTORCH_CPP_HELPER
#define RFCN_PYTORCH_CPP_HELPER
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

// The most samples per bin along each axis that ps_roi_align's
// sampling_ratio and deform_ps_roi_pool's sample_per_part accept (as
// MAX_SAMPLES in rfcn_mm/ops/_ext_loader.py).
constexpr int64_t kMaxSamples = 64;
#endif  // RFCN_PYTORCH_CPP_HELPER
