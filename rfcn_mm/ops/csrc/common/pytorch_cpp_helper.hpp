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
#endif  // RFCN_PYTORCH_CPP_HELPER
