// Python bindings of rfcn_mm._ext.
#include "pytorch_cpp_helper.hpp"

at::Tensor ps_roi_pool_forward(const at::Tensor& input, const at::Tensor& rois,
                               int64_t pooled_h, int64_t pooled_w,
                               double spatial_scale);
at::Tensor ps_roi_pool_backward(const at::Tensor& grad_output,
                                const at::Tensor& rois, int64_t batch,
                                int64_t channels, int64_t height,
                                int64_t width, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale);
at::Tensor ps_roi_align_forward(const at::Tensor& input,
                                const at::Tensor& rois, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale,
                                int64_t sampling_ratio, bool aligned);
at::Tensor ps_roi_align_backward(const at::Tensor& grad_output,
                                 const at::Tensor& rois, int64_t batch,
                                 int64_t channels, int64_t height,
                                 int64_t width, int64_t pooled_h,
                                 int64_t pooled_w, double spatial_scale,
                                 int64_t sampling_ratio, bool aligned);
at::Tensor sorted_nms(const at::Tensor& boxes, const at::Tensor& valid,
                      double iou_threshold, int64_t max_num);

bool with_cuda() {
#ifdef RFCN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ps_roi_pool_forward", &ps_roi_pool_forward,
        "position-sensitive RoI pooling forward", py::arg("input"),
        py::arg("rois"), py::arg("pooled_h"), py::arg("pooled_w"),
        py::arg("spatial_scale"));
  m.def("ps_roi_pool_backward", &ps_roi_pool_backward,
        "position-sensitive RoI pooling backward", py::arg("grad_output"),
        py::arg("rois"), py::arg("batch"), py::arg("channels"),
        py::arg("height"), py::arg("width"), py::arg("pooled_h"),
        py::arg("pooled_w"), py::arg("spatial_scale"));
  m.def("ps_roi_align_forward", &ps_roi_align_forward,
        "position-sensitive RoI Align forward", py::arg("input"),
        py::arg("rois"), py::arg("pooled_h"), py::arg("pooled_w"),
        py::arg("spatial_scale"), py::arg("sampling_ratio"),
        py::arg("aligned"));
  m.def("ps_roi_align_backward", &ps_roi_align_backward,
        "position-sensitive RoI Align backward", py::arg("grad_output"),
        py::arg("rois"), py::arg("batch"), py::arg("channels"),
        py::arg("height"), py::arg("width"), py::arg("pooled_h"),
        py::arg("pooled_w"), py::arg("spatial_scale"),
        py::arg("sampling_ratio"), py::arg("aligned"));
  m.def("sorted_nms", &sorted_nms,
        "greedy NMS of score-sorted boxes, at most max_num kept per image",
        py::arg("boxes"), py::arg("valid"), py::arg("iou_threshold"),
        py::arg("max_num"));
  m.def("with_cuda", &with_cuda, "whether the extension has CUDA kernels");
}
