// compare_models: how far apart two lmt model files are (every parameter and buffer), and the
// training-mode Lipschitz bound each one gives, for the data-parallel equivalence tests.
//   compare_models A.pt B.pt [--rtol R] [--bitwise] [--bound-rtol R]
// Prints one line per check; per tensor the relative difference is max|a-b| / max|b| (0 when
// both are zero). Exit 0 when the files hold the same tensors (names, shapes, dtypes) within
// --rtol (default 1e-5; --bitwise: identical bytes) and, with --bound-rtol, bounds within it;
// 1 when a check fails; 2 on a usage or file error.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include <lmt/models/model.h>

namespace {

const char* const kRecorded = "train_lipschitz_bound_hex";

std::map<std::string, at::Tensor> named_tensors(lmt::models::Model& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : model.named_parameters(true)) out["param " + p.key()] = p.value();
  for (const auto& b : model.named_buffers(true)) out["buffer " + b.key()] = b.value();
  return out;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0.0;
  at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  const double diff = (x - y).abs().max().item<double>();
  const double scale = y.abs().max().item<double>();
  if (diff == 0) return 0.0;
  return scale > 0 ? diff / scale : INFINITY;
}

bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.contiguous(), y = b.contiguous();
  return x.nbytes() == y.nbytes() && std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

// The bound the trainer trains with (kTrain: the stored power-iteration vectors, no iteration).
double train_bound(lmt::models::Model& model) {
  if (!model.has_bound()) return NAN;
  c10::NoGradGuard no_grad;
  return model.lipschitz_bound(lmt::lipschitz::BoundMode::kTrain).item<double>();
}

int usage() {
  std::fprintf(stderr,
               "usage: compare_models A.pt B.pt [--rtol R] [--bitwise] [--bound-rtol R]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) return usage();
  double rtol = 1e-5, bound_rtol = -1;
  bool bitwise = false;
  for (int i = 3; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--bitwise") {
      bitwise = true;
    } else if ((flag == "--rtol" || flag == "--bound-rtol") && i + 1 < argc) {
      (flag == "--rtol" ? rtol : bound_rtol) = std::atof(argv[++i]);
    } else {
      return usage();
    }
  }
  auto a = lmt::models::load_model_file(argv[1]);
  auto b = lmt::models::load_model_file(argv[2]);
  auto ta = named_tensors(*a.model), tb = named_tensors(*b.model);
  bool ok = true;
  double worst = 0;
  std::string worst_name = "-";
  int64_t identical = 0;
  for (const auto& [name, x] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) {
      std::printf("FAIL %s only in %s\n", name.c_str(), argv[1]);
      ok = false;
      continue;
    }
    const at::Tensor& y = it->second;
    if (x.sizes() != y.sizes() || x.scalar_type() != y.scalar_type()) {
      std::printf("FAIL %s: shape/dtype differ (%s vs %s)\n", name.c_str(),
                  x.toString().c_str(), y.toString().c_str());
      ok = false;
      continue;
    }
    identical += bitwise_equal(x, y) ? 1 : 0;
    const double rel = relative_difference(x, y);
    if (!(rel <= worst)) {
      worst = rel;
      worst_name = name;
    }
  }
  for (const auto& [name, y] : tb)
    if (!ta.count(name)) {
      std::printf("FAIL %s only in %s\n", name.c_str(), argv[2]);
      ok = false;
    }
  const bool all_identical = ok && identical == int64_t(ta.size());
  std::printf("tensors %zu, bitwise identical %lld, max relative difference %.3e (%s)\n",
              ta.size(), (long long)identical, worst, worst_name.c_str());
  if (bitwise ? !all_identical : !(worst <= rtol)) {
    std::printf("FAIL tensors differ beyond %s\n",
                bitwise ? "bitwise equality" : std::to_string(rtol).c_str());
    ok = false;
  }
  const double la = train_bound(*a.model), lb = train_bound(*b.model);
  const double bound_rel = std::abs(la - lb) / std::abs(lb);
  std::printf("train bound %.9g vs %.9g, relative difference %.3e\n", la, lb,
              la == lb ? 0.0 : bound_rel);
  if (bound_rtol >= 0 && !(la == lb || bound_rel <= bound_rtol)) {
    std::printf("FAIL bounds differ beyond %g\n", bound_rtol);
    ok = false;
  }
  // The bound each rank trained with in its last step (trainer hook LMT_TEST_RANK_DIR).
  auto ra = a.metadata.find(kRecorded), rb = b.metadata.find(kRecorded);
  if (ra != a.metadata.end() && rb != b.metadata.end()) {
    const double x = std::strtod(ra->second.c_str(), nullptr);
    const double y = std::strtod(rb->second.c_str(), nullptr);
    std::printf("recorded last-step bound %s vs %s (%.9g vs %.9g), relative difference %.3e\n",
                ra->second.c_str(), rb->second.c_str(), x, y, x == y ? 0.0 : std::abs(x - y) / y);
    if (bitwise && ra->second != rb->second) {
      std::printf("FAIL recorded bounds not bitwise identical\n");
      ok = false;
    }
    if (bound_rtol >= 0 && !(x == y || std::abs(x - y) / std::abs(y) <= bound_rtol)) {
      std::printf("FAIL recorded bounds differ beyond %g\n", bound_rtol);
      ok = false;
    }
  }
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "compare_models: %s\n", e.what());
  return 2;
}
