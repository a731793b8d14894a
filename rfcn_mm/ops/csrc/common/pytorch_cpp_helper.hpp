// Argument checks shared by the rfcn_mm ops (mmcv's helper, plus messages
// that name the offending argument).
#ifndef RFCN_PYTORCH_CPP_HELPER
#define RFCN_PYTORCH_CPP_HELPER
#include <torch/extension.h>

#define CHECK_DEFINED(x) TORCH_CHECK((x).defined(), #x " must be a tensor")
#define CHECK_FLOATING(x)                                              \
  TORCH_CHECK(at::isFloatingType((x).scalar_type()),                   \
              #x " must be a floating point tensor, got ",             \
              (x).scalar_type())
#define CHECK_DIM(x, d)                                                \
  TORCH_CHECK((x).dim() == (d), #x " must be a ", d, "-D tensor, got ", \
              (x).dim(), "-D with shape ", (x).sizes())
#endif  // RFCN_PYTORCH_CPP_HELPER
