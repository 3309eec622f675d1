// Fused plane-sweep matching cost for the CPU: for every pixel and depth hypothesis, sample
// the lookup features bilinearly at the swept position and average |lookup - current| over
// channels, without materialising the (B, C, D, h, w) warped volume that grid_sample needs;
// and its gradient with respect to the current features (training: the lookup features and
// the swept positions carry none). Built on first use by plane_sweep.py; same values as the
// PyTorch path (zeros outside the image, align_corners=True), which the GPU uses.
#include <torch/extension.h>

#include <cmath>

namespace {

void check_inputs(const torch::Tensor& current, const torch::Tensor& lookup,
                  const torch::Tensor& u, const torch::Tensor& v) {
  // current, lookup: (B, h, w, C) float32, contiguous (channels last, so that the channels of
  // one pixel are adjacent and the inner loops vectorise); u, v: (B, D, h*w) coordinates.
  TORCH_CHECK(current.dtype() == torch::kFloat32 && lookup.dtype() == torch::kFloat32 &&
              u.dtype() == torch::kFloat32 && v.dtype() == torch::kFloat32,
              "plane_sweep: float32 tensors expected");
  TORCH_CHECK(current.is_contiguous() && lookup.is_contiguous() && u.is_contiguous() &&
              v.is_contiguous(), "plane_sweep: contiguous tensors expected");
  TORCH_CHECK(lookup.sizes() == current.sizes() && u.size(0) == current.size(0) &&
              u.size(2) == current.size(1) * current.size(2) && v.sizes() == u.sizes(),
              "plane_sweep: mismatched shapes");
}

// The up to four neighbours of (x, y) inside the image and their bilinear weights; returns
// how many. Outside neighbours are left out, which is sampling zeros there.
inline int bilinear_corners(float x, float y, int64_t width, int64_t height,
                            const float* image, int64_t channels, const float* corners[4],
                            float weights[4]) {
  if (!std::isfinite(x) || !std::isfinite(y)) return 0;
  const float x0 = std::floor(x), y0 = std::floor(y), fx = x - x0, fy = y - y0;
  const float corner_weights[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
  int count = 0;
  for (int corner = 0; corner < 4; ++corner) {
    const int64_t xi = static_cast<int64_t>(x0) + (corner & 1);
    const int64_t yi = static_cast<int64_t>(y0) + (corner >> 1);
    if (xi >= 0 && xi < width && yi >= 0 && yi < height) {
      corners[count] = image + (yi * width + xi) * channels;
      weights[count++] = corner_weights[corner];
    }
  }
  return count;
}

inline float sample(const float* const corners[4], const float weights[4], int count,
                    int64_t c) {
  float sampled = 0.0f;
  for (int k = 0; k < count; ++k) sampled += weights[k] * corners[k][c];
  return sampled;
}

// The common case, all four neighbours inside: no loop over them, so that the loops over
// channels that call this vectorise.
inline float sample4(const float* const corners[4], const float weights[4], int64_t c) {
  return weights[0] * corners[0][c] + weights[1] * corners[1][c] + weights[2] * corners[2][c] +
         weights[3] * corners[3][c];
}

}  // namespace

torch::Tensor plane_sweep_cost(torch::Tensor current, torch::Tensor lookup, torch::Tensor u,
                               torch::Tensor v) {
  check_inputs(current, lookup, u, v);
  const int64_t batch = current.size(0), height = current.size(1), width = current.size(2);
  const int64_t channels = current.size(3), bins = u.size(1), pixels = height * width;
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
        const float* target = current_image + pixel * channels;
        const float* corners[4];
        float weights[4];
        const int count = bilinear_corners(u_data[plane * pixels + pixel],
                                           v_data[plane * pixels + pixel], width, height,
                                           lookup_image, channels, corners, weights);
        float sum = 0.0f;
        if (count == 4) {
#pragma omp simd reduction(+ : sum)
          for (int64_t c = 0; c < channels; ++c)
            sum += std::fabs(sample4(corners, weights, c) - target[c]);
        } else {
          for (int64_t c = 0; c < channels; ++c)
            sum += std::fabs(sample(corners, weights, count, c) - target[c]);
        }
        cost_data[plane * pixels + pixel] = sum * per_channel;
      }
    }
  });
  return cost;
}

torch::Tensor plane_sweep_cost_backward(torch::Tensor grad_cost, torch::Tensor current,
                                        torch::Tensor lookup, torch::Tensor u,
                                        torch::Tensor v) {
  // d cost[b, d, p] / d current[b, p, c] = -sign(sampled - current) / C, as autograd's abs;
  // summed over hypotheses. Each pixel's gradient is its own: parallel over pixels.
  check_inputs(current, lookup, u, v);
  TORCH_CHECK(grad_cost.dtype() == torch::kFloat32 && grad_cost.is_contiguous() &&
              grad_cost.sizes() == u.sizes(), "plane_sweep: gradient of the wrong shape");
  const int64_t batch = current.size(0), height = current.size(1), width = current.size(2);
  const int64_t channels = current.size(3), bins = u.size(1), pixels = height * width;
  auto grad_current = torch::zeros_like(current);
  const float* current_data = current.data_ptr<float>();
  const float* lookup_data = lookup.data_ptr<float>();
  const float* u_data = u.data_ptr<float>();
  const float* v_data = v.data_ptr<float>();
  const float* grad_data = grad_cost.data_ptr<float>();
  float* out_data = grad_current.data_ptr<float>();
  const float per_channel = 1.0f / static_cast<float>(channels);

  at::parallel_for(0, batch * pixels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t index = begin; index < end; ++index) {
      const int64_t image = index / pixels, pixel = index % pixels;
      const float* target = current_data + index * channels;
      const float* lookup_image = lookup_data + image * pixels * channels;
      float* out = out_data + index * channels;
      for (int64_t bin = 0; bin < bins; ++bin) {
        const int64_t at = (image * bins + bin) * pixels + pixel;
        const float g = grad_data[at] * per_channel;
        if (g == 0.0f) continue;  // masked hypotheses (outside the lookup image)
        const float* corners[4];
        float weights[4];
        const int count = bilinear_corners(u_data[at], v_data[at], width, height,
                                           lookup_image, channels, corners, weights);
        if (count == 4) {
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) {
            const float difference = target[c] - sample4(corners, weights, c);
            out[c] += g * static_cast<float>((difference > 0.0f) - (difference < 0.0f));
          }
        } else {
          for (int64_t c = 0; c < channels; ++c) {
            const float difference = target[c] - sample(corners, weights, count, c);
            out[c] += g * static_cast<float>((difference > 0.0f) - (difference < 0.0f));
          }
        }
      }
    }
  });
  return grad_current;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("plane_sweep_cost", &plane_sweep_cost, "fused plane-sweep matching cost (CPU)");
  m.def("plane_sweep_cost_backward", &plane_sweep_cost_backward,
        "its gradient with respect to the current features (CPU)");
}
