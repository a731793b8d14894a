// rfcn_mm._ext: importing it loads the library, whose static initialisers
// register the rfcn_mm:: operators (schemas and kernels in ps_roi_pool.cpp,
// ps_roi_align.cpp, deform_ps_roi_pool.cpp and sorted_nms.cpp); the Python
// module itself only says how it was built. The one file that needs pybind11,
// and it needs nothing of torch.
#include <pybind11/pybind11.h>

bool with_cuda() {
#ifdef RFCN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("with_cuda", &with_cuda, "whether the extension has CUDA kernels");
}
