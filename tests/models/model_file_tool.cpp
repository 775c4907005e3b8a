// Test helper for the model-file script tests: writes a copy of a model file with one element of
// one tensor set to a value (nan, inf, -inf or a number), through the library's own writer; and
// the cost of the load-time checks (README figures).
//   model_file_tool poison IN OUT TENSOR VALUE
//   model_file_tool time FILE N      mean load time over N loads, checks on and off
//   model_file_tool flip FILE N SEED  N copies of FILE with one random byte changed, each loaded
//       in this process: how many were refused (ModelError) or loaded with the same digest
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>

#include <lmt/models/model.h>

int main(int argc, char** argv) try {
  if (argc == 4 && std::string(argv[1]) == "time") {
    const int n = std::atoi(argv[3]);
    for (bool verify : {true, false, true, false}) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) lmt::models::load_model_file(argv[2], {verify, verify});
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      std::printf("checks %-3s: %.1f ms per load\n", verify ? "on" : "off", ms / n);
    }
    return 0;
  }
  if (argc == 5 && std::string(argv[1]) == "flip") {
    const std::string path = argv[2], copy = path + ".flip";
    const std::string digest =
        lmt::models::weights_digest(*lmt::models::load_model_file(path).model);
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::mt19937_64 rng(std::strtoull(argv[4], nullptr, 10));
    int refused = 0, same = 0, different = 0;
    for (int i = 0, n = std::atoi(argv[3]); i < n; ++i) {
      std::string mutated = bytes;
      const size_t at = rng() % mutated.size();
      mutated[at] = char(mutated[at] ^ int(1 + rng() % 255));
      std::ofstream(copy, std::ios::binary | std::ios::trunc) << mutated;
      try {
        auto loaded = lmt::models::load_model_file(copy);
        (lmt::models::weights_digest(*loaded.model) == digest ? same : different)++;
      } catch (const lmt::models::ModelError&) {
        ++refused;
      }
    }
    std::remove(copy.c_str());
    std::printf("refused %d, loaded unchanged %d, loaded changed %d\n", refused, same, different);
    return different == 0 ? 0 : 1;
  }
  if (argc != 6 || std::string(argv[1]) != "poison") {
    std::cerr << "usage: model_file_tool poison IN OUT TENSOR VALUE\n";
    return 2;
  }
  auto loaded = lmt::models::load_model_file(argv[2], {/*verify=*/true, /*finite=*/false});
  const std::string name = argv[4], text = argv[5];
  const double value = text == "nan" ? std::nan("") : std::strtod(text.c_str(), nullptr);
  at::NoGradGuard no_grad;
  auto params = loaded.model->named_parameters();
  auto buffers = loaded.model->named_buffers();
  at::Tensor* t = params.find(name) ? params.find(name) : buffers.find(name);
  if (!t) throw std::runtime_error("no tensor '" + name + "'");
  t->view(-1)[0].fill_(value);
  lmt::models::save_model_file(argv[3], *loaded.model, loaded.metadata);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "model_file_tool: " << e.what() << "\n";
  return 1;
}
