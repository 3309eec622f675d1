// Fused plane-sweep matching cost for the CPU: for every pixel and depth hypothesis, sample
// the lookup features bilinearly at the swept position and average |lookup - current| over
// channels, without materialising the (B, C, D, h, w) warped volume that grid_sample needs.
// Built on first use by plane_sweep.py; same values as the PyTorch path (zeros outside the
// image, align_corners=True), which autograd and the GPU use.
#include <torch/extension.h>

#include <cmath>

torch::Tensor plane_sweep_cost(torch::Tensor current, torch::Tensor lookup, torch::Tensor u,
                               torch::Tensor v) {
  // current, lookup: (B, h, w, C) float32, contiguous (channels last, so that the channels of
  // one pixel are adjacent and the inner loop vectorises); u, v: (B, D, h*w) pixel coordinates.
  TORCH_CHECK(current.dtype() == torch::kFloat32 && lookup.dtype() == torch::kFloat32 &&
              u.dtype() == torch::kFloat32 && v.dtype() == torch::kFloat32,
              "plane_sweep_cost: float32 tensors expected");
  TORCH_CHECK(current.is_contiguous() && lookup.is_contiguous() && u.is_contiguous() &&
              v.is_contiguous(), "plane_sweep_cost: contiguous tensors expected");
  const int64_t batch = current.size(0), height = current.size(1), width = current.size(2);
  const int64_t channels = current.size(3), bins = u.size(1), pixels = height * width;
  TORCH_CHECK(lookup.sizes() == current.sizes() && u.size(0) == batch && u.size(2) == pixels &&
              v.sizes() == u.sizes(), "plane_sweep_cost: mismatched shapes");
  auto cost = torch::empty({batch, bins, pixels}, current.options());
  const float* current_data = current.data_ptr<float>();
  const float* lookup_data = lookup.data_ptr<float>();
  const float* u_data = u.data_ptr<float>();
  const float* v_data = v.data_ptr<float>();
  float* cost_data = cost.data_ptr<float>();
  const float per_channel = 1.0f / static_cast<float>(channels);

  at::parallel_for(0, batch * bins, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* current_image = current_data + (plane / bins) * pixels * channels;
      const float* lookup_image = lookup_data + (plane / bins) * pixels * channels;
      for (int64_t pixel = 0; pixel < pixels; ++pixel) {
        const float x = u_data[plane * pixels + pixel], y = v_data[plane * pixels + pixel];
        const float* target = current_image + pixel * channels;
        // The up to four neighbours inside the image, with their bilinear weights.
        const float* corners[4];
        float weights[4];
        int count = 0;
        if (std::isfinite(x) && std::isfinite(y)) {
          const float x0 = std::floor(x), y0 = std::floor(y), fx = x - x0, fy = y - y0;
          const float corner_weights[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy,
                                           fx * fy};
          for (int corner = 0; corner < 4; ++corner) {
            const int64_t xi = static_cast<int64_t>(x0) + (corner & 1);
            const int64_t yi = static_cast<int64_t>(y0) + (corner >> 1);
            if (xi >= 0 && xi < width && yi >= 0 && yi < height) {
              corners[count] = lookup_image + (yi * width + xi) * channels;
              weights[count++] = corner_weights[corner];
            }
          }
        }
        float sum = 0.0f;
        if (count == 4) {  // the common case, kept branch-free so the compiler vectorises it
#pragma omp simd reduction(+ : sum)
          for (int64_t c = 0; c < channels; ++c) {
            const float sampled = weights[0] * corners[0][c] + weights[1] * corners[1][c] +
                                  weights[2] * corners[2][c] + weights[3] * corners[3][c];
            sum += std::fabs(sampled - target[c]);
          }
        } else {
          for (int64_t c = 0; c < channels; ++c) {
            float sampled = 0.0f;
            for (int k = 0; k < count; ++k) sampled += weights[k] * corners[k][c];
            sum += std::fabs(sampled - target[c]);
          }
        }
        cost_data[plane * pixels + pixel] = sum * per_channel;
      }
    }
  });
  return cost;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("plane_sweep_cost", &plane_sweep_cost, "fused plane-sweep matching cost (CPU)");
}
